#!/usr/bin/env bash
# One device call (GPU machine, about 9.5 minutes): trains the default model, measures it with transformers and writes
# the engine's fixtures. While the model trains, the idle CPU cores build and validate native/ (eng/gpu-run.sh
# validate: the GPU only briefly) and write the Hugging Face parity fixtures (tools/fixtures/make_hf_models.py).
# Needs .cache/data/text (eng/fetch-data.sh + bible.txt, see README.md) carried. Everything lands in
# $OUT/results.tar.gz (split in 15 MiB parts when larger) and $OUT/log.txt.
#   TRAIN_MINUTES=6.25 EVAL_SECONDS=120 bash tools/default-model/gpu-train.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-.cache/gpu-out}
work=/tmp/gpu-train
rm -rf "$work" && mkdir -p "$work" "$OUT"
log=$OUT/log.txt
export PYTHONUNBUFFERED=1
say() { echo "== $(date +%T) $*" | tee -a "$log"; }

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee -a "$log"
python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)' | tee -a "$log"

(OMP_NUM_THREADS=2 timeout 300 python3 tools/fixtures/make_hf_models.py tests/fixtures/hf >"$work/hf-fixtures.log" 2>&1
 echo "hf fixtures rc $?" >>"$work/hf-fixtures.log") &
(OUT=$work/native timeout 420 bash eng/gpu-run.sh validate >"$work/native.log" 2>&1; echo "native rc $?" >>"$work/native.log") &

say "training ${TRAIN_MINUTES:-6.25} min"
python3 tools/default-model/train.py --text-dir .cache/data/text --tokenizer models/default --out models/default \
  --minutes "${TRAIN_MINUTES:-6.25}" --log "$work/train.log" --save-every-minutes 3 | grep -E "^params|step +[0-9]*0 |done" |
  awk 'NR % 20 == 1 || /done|params/' | tee -a "$log"
say "evaluating (transformers, bf16)"
timeout "${EVAL_SECONDS:-120}" python3 tools/default-model/evaluate.py --model models/default --text-dir .cache/data/text \
  --out "$work/eval.json" 2>&1 | tee "$work/eval.log" | tee -a "$log"
say "fixtures"
timeout 60 python3 tools/default-model/fixtures.py --model models/default --text-dir .cache/data/text \
  --out tests/fixtures/default-model/reference.json >"$work/fixtures.log" 2>&1
tail -3 "$work/fixtures.log" | tee -a "$log"
wait
tail -n 2 "$work/hf-fixtures.log" "$work/native.log" | tee -a "$log"
cat "$work/native/summary.txt" 2>/dev/null | tee -a "$log"

tar czf /tmp/results.tar.gz models/default tests/fixtures/hf tests/fixtures/default-model -C /tmp gpu-train
size=$(stat -c %s /tmp/results.tar.gz)
if [ "$size" -gt $((15 * 1024 * 1024)) ]; then split -b 15M -d /tmp/results.tar.gz "$OUT/results.tar.gz."
else cp /tmp/results.tar.gz "$OUT/"; fi
say "done: results $((size / 1024)) KiB"
