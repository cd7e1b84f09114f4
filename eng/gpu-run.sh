#!/usr/bin/env bash
# One call on the GPU machine (device tool): builds native/ for sm_90a + sm_80, then runs the chosen stages.
#   eng/gpu-run.sh [validate] [ncu] [bench] [floor] [qk] [dotnet] [e2e]   (no stage named: all of them, about 10 minutes)
#   validate  ctest (the emulated-kernel tests are left to CI), the stage validator, the norm and silu·mul
#             validators, the decode validator and its timing table (decode attention vs T, GB/s), compute-sanitizer
#             on small cases of the stage and decode validators
#   ncu       Nsight Compute on one launch of the default sparse kernel (dense mode, structured input, N = 16K):
#             throughput, warp stall reasons, pipe utilisation (a Firecracker machine reads the counters; gVisor not)
#   bench     native/dev/bench.py: our kernels against dense SDPA, Llama-3.1-8B attention shapes, synthetic inputs
#   floor     tools/bench/llama_prefill_floor.py: one Llama-3.1-8B layer in plain PyTorch, op by op, 8K-128K: the TTFT
#             floor that e2e's numbers are compared against
#   qk        real Q/K/V of the default model at 64K (tools/default-model/dump_qk.py), bench.py --qk on them, and the
#             model's needle accuracy at 32K and 64K (evaluate.py); needs .carry/data.tar.xz (.cache/data's texts and
#             tokenizers: eng/fetch-data.sh, then tar cJf .carry/data.tar.xz -C .cache/data text tokenizers)
#   dotnet    the .NET test executables of .carry/dotnet.tar.xz (eng/publish-gpu.sh) on CUDA with the native kernels;
#             runs beside qk when both are asked for (neither is timed against the other)
#   e2e       flexprefill bench: a Llama-3.1-8B-shaped model with random weights, dense vs FlexPrefill, 8K-128K, once
#             per kind of weights (E2E_WEIGHTS, default "gaussian structured"; E2E_SECONDS each)
# Env: BENCH_SIZES, BENCH_SECONDS, E2E_SECONDS, E2E_WEIGHTS, DOTNET_SECONDS.
# $OUT gets summary.txt (every stage's verdict) and logs.tar.gz (every log and table; e2e-*.json: `flexprefill bench
# --from-json` renders its table and PNG where fonts are).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
stages=" ${*:-validate ncu bench floor qk dotnet e2e} "
want() { [[ $stages == *" $1 "* ]]; }
OUT=${OUT:-$root/.cache/gpu-out}
logs=/tmp/gpu-run-logs
rm -rf "$logs" && mkdir -p "$OUT" "$logs"
build=native/build-gpu
summary=$OUT/summary.txt
: >"$summary"
note() { echo "== $(date +%T) $*" | tee -a "$summary"; }
finish() {
  tar czf "$OUT/logs.tar.gz" -C "$logs" .
  note "done in $(( $(date +%s) - start )) s, status $status"
  exit $status
}
export PYTHONUNBUFFERED=1
start=$(date +%s)
status=0

nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv,noheader | tee -a "$summary"
nvcc --version | tail -1 | tee -a "$summary"
if ! { cmake -S native -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_FLAGS="-Xptxas -v" &&
       cmake --build "$build"; } >"$logs/build.log" 2>&1; then
  tail -40 "$logs/build.log"
  note "build FAILED"
  status=1 && finish
fi
note "build ok"
grep -A2 "sparse_attention_kernel\|probe_kernel" "$logs/build.log" | grep -E "registers|spill" | sort | uniq -c | head -20 >>"$summary"
grep -iE "warning.*wgmma|C75[0-9][0-9]" "$logs/build.log" | sort | uniq -c | head -5 >>"$summary"
grep -A3 "sm90.*sparse_attention_kernel" "$logs/build.log" | grep -E "registers|stack|spill" | head -4 | sed 's/^/sm_90a attention: /' >>"$summary"
sass=$(cuobjdump --dump-sass "$build/libflexprefill.so" 2>/dev/null)
echo "tensor-core instructions in the library: $(grep -cE 'HMMA' <<<"$sass") HMMA (mma.sync), $(grep -cE 'HGMMA' <<<"$sass") HGMMA (wgmma)" | tee -a "$summary"
lib=$root/$build/libflexprefill.so

if want validate; then
  (cd "$build" && ctest --output-on-failure -E emulated) >"$logs/ctest.log" 2>&1 && note "ctest ok" || { note "ctest FAILED"; status=1; }
  "$build/fp_wgmma_check" 2>&1 | tee -a "$summary" >"$logs/wgmma.log"
  "$build/fp_validate_norm" >"$logs/validate-norm.log" 2>&1 && note "validate norm ok" || { note "validate norm FAILED"; status=1; }
  "$build/fp_validate_silu" >"$logs/validate-silu.log" 2>&1 && note "validate silu ok" || { note "validate silu FAILED"; status=1; }
  grep -E "every bf16 gate|FAIL" "$logs/validate-silu.log" | head -5 >>"$summary"
  timeout 300 "$build/fp_validate" >"$logs/validate.log" 2>&1 && note "validate ok" || { note "validate FAILED"; status=1; }
  grep -E "FAIL|kernels:" "$logs/validate.log" | head -30 >>"$summary"
  timeout 180 compute-sanitizer --tool memcheck --leak-check no "$build/fp_validate" --quick >"$logs/sanitizer.log" 2>&1
  rc=$?
  tail -2 "$logs/sanitizer.log" >>"$summary"
  [ $rc -eq 0 ] && note "compute-sanitizer memcheck clean" || { note "compute-sanitizer rc=$rc"; status=1; }
  timeout 300 "$build/fp_validate_decode" >"$logs/validate-decode.log" 2>&1 && note "validate decode ok" ||
    { note "validate decode FAILED"; status=1; }
  grep -E "FAIL" "$logs/validate-decode.log" | head -20 >>"$summary"
  sed -n '/^decode attention, /,$p' "$logs/validate-decode.log" >>"$summary"
  timeout 120 compute-sanitizer --tool memcheck --leak-check no "$build/fp_validate_decode" --quick >"$logs/sanitizer-decode.log" 2>&1
  rc=$?
  tail -2 "$logs/sanitizer-decode.log" >>"$summary"
  [ $rc -eq 0 ] && note "compute-sanitizer memcheck clean (decode)" || { note "compute-sanitizer rc=$rc (decode)"; status=1; }
fi

if want ncu; then
  timeout 180 ncu --clock-control none --kernel-name regex:sparse_attention_tma --launch-count 1 \
    --section SpeedOfLight --section WarpStateStats --section SchedulerStats --section ComputeWorkloadAnalysis \
    --section MemoryWorkloadAnalysis --section Occupancy \
    python3 native/dev/bench.py --lib "$lib" --sizes 16384 --gammas 0.95 --inputs structured --check "" --reps 1 \
    >"$logs/ncu.log" 2>&1 && note "ncu ok" || { note "ncu FAILED (ncu.log)"; status=1; }
  sed -n '/sparse_attention_tma/,$p' "$logs/ncu.log" | grep -E "sparse_attention_tma|Section:|^    [A-Z][A-Za-z .()/-]+ {2,}" |
    grep -vE "^ +(OPT|INF|WRN) " | head -120 >>"$summary"
fi

if want bench; then
  timeout "${BENCH_SECONDS:-240}" python3 native/dev/bench.py --lib "$lib" --reps 3 --profile 131072 \
    --sizes "${BENCH_SIZES:-4096,8192,16384,32768,65536,131072}" >"$logs/bench.log" 2>&1 &&
    note "bench ok" || { note "bench FAILED or cut (rows so far in bench.log)"; status=1; }
  sed -n '/^per-kernel CUDA time/,/^$/p; /^| N\|^| input/,$p' "$logs/bench.log" >>"$summary"
fi

if want floor; then
  timeout 90 python3 tools/bench/llama_prefill_floor.py --json "$logs/floor.json" >"$logs/floor.log" 2>&1 &&
    note "floor ok" || { note "floor FAILED or cut"; status=1; }
  cat "$logs/floor.log" >>"$summary"
fi

dotnet_dir=/tmp/dotnet-gpu
if { want dotnet || want e2e; } && [ -f .carry/dotnet.tar.xz ]; then
  rm -rf "$dotnet_dir" && mkdir -p "$dotnet_dir" && tar -xJf .carry/dotnet.tar.xz -C "$dotnet_dir" ||
    { note "unpacking .carry/dotnet.tar.xz FAILED"; status=1; }
  # The archive leaves out what the checkout already carries: the CLI's embedded model and the HF parity fixtures.
  ln -sfn "$root/models" "$dotnet_dir/FlexPrefill.Cli/models"
  ln -sfn "$root/tests/fixtures" "$dotnet_dir/FlexPrefill.Inference.Tests/fixtures"
  torchlib=$(python3 -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"lib"))')
  # FLEXPREFILL_REPO / _DATA: the tests run away from the checkout and find models/, fixtures and texts through them.
  dotnet_env=(LD_LIBRARY_PATH=$torchlib FLEXPREFILL_NATIVE=$lib FLEXPREFILL_REPO=$root FLEXPREFILL_DATA=$root/.cache/data)
  # Without libicu .NET refuses to start; invariant mode runs, and tokenizers with Unicode normalizers say why they fail.
  [[ $(ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null) == *libicuuc* ]] || dotnet_env+=(DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1)
elif want dotnet || want e2e; then
  note "no .carry/dotnet.tar.xz (eng/publish-gpu.sh): .NET stages skipped"
fi
if [ -f .carry/data.tar.xz ]; then mkdir -p .cache/data && tar -xJf .carry/data.tar.xz -C .cache/data; fi

# e2e before the untimed stages: its timings need the GPU to itself.
if want e2e && [ -n "${dotnet_env+x}" ]; then
  for weights in ${E2E_WEIGHTS:-gaussian structured}; do
    timeout "${E2E_SECONDS:-180}" env "${dotnet_env[@]}" "$dotnet_dir/FlexPrefill.Cli/flexprefill" bench --config llama-3.1-8b \
      --weights "$weights" --device cuda --json "$logs/e2e-$weights.json" >"$logs/e2e-$weights.log" 2>&1 &&
      note "e2e ($weights weights) ok" || { note "e2e ($weights weights) FAILED or cut"; status=1; }
    grep -A20 "^flexprefill bench:" "$logs/e2e-$weights.log" >>"$summary"
  done
fi

run_dotnet() {
  for dir in "$dotnet_dir"/*.Tests/; do
    name=$(basename "$dir")
    timeout "${DOTNET_SECONDS:-110}" env "${dotnet_env[@]}" "$dir$name" -noColor >"$logs/$name.log" 2>&1
    rc=$?
    line=$(grep -E "^ *$name +Total: [0-9]+" "$logs/$name.log" | tail -1)
    field() { grep -oE "$1: [0-9]+" <<<"$line" | grep -oE '[0-9]+' || echo 0; }
    if [ -n "$line" ]; then
      t=$(field Total) f=$(( $(field Failed) + $(field Errors) )) s=$(field Skipped)
      note "$name: $((t - f - s)) passed, $f failed, $s skipped (rc $rc)"
    else
      note "$name printed no summary (rc $rc)"
    fi
    grep -E "\[FAIL\]" "$logs/$name.log" | head -10 >>"$summary"
    [ $rc -eq 0 ] || failed=1
  done
  return ${failed:-0}
}
run_qk() {
  timeout 90 python3 tools/default-model/dump_qk.py --model models/default --text-dir .cache/data/text --tokens 65600 \
    --layers 1,4 --out /tmp/qk >"$logs/dump_qk.log" 2>&1 || return 1
  timeout 60 python3 native/dev/bench.py --lib "$lib" --qk /tmp/qk --sizes 8192,16384,32768 --check 16384,32768 \
    --reps 3 >"$logs/bench-qk.log" 2>&1 || return 1
  timeout 70 python3 tools/default-model/evaluate.py --model models/default --text-dir .cache/data/text \
    --lengths 32768,65536 --out "$logs/eval-long.json" >"$logs/eval-long.log" 2>&1
}
if want dotnet && [ -n "${dotnet_env+x}" ]; then run_dotnet >"$logs/dotnet-stage.log" 2>&1 & dotnet_pid=$!; fi
if want qk; then
  run_qk && note "qk ok" || { note "qk FAILED or cut"; status=1; }
  tail -1 "$logs/dump_qk.log" >>"$summary"
  sed -n '/^| input/,$p' "$logs/bench-qk.log" >>"$summary"
  grep -E "tokens:" "$logs/eval-long.log" >>"$summary"
fi
if [ -n "${dotnet_pid-}" ]; then
  wait "$dotnet_pid" || status=1
fi
finish
