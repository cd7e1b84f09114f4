#!/usr/bin/env bash
# One call on the GPU machine (device tool): build native/ for sm_90a + sm_80, run ctest, the stage validator, a
# compute-sanitizer pass on a small case, and the benchmark (ctest's emulated-kernel test is left to CI); logs and tables go to $OUT (at most 8 files).
#   eng/gpu-run.sh [all|validate|bench]   (default all)
# Hook for the .NET GPU tests: if .carry/dotnet/ exists (self-contained published test folders, each with an
# executable named like the folder), each is run with LD_LIBRARY_PATH at PyTorch's libtorch and FLEXPREFILL_NATIVE at
# the library built here; their output goes to $OUT/dotnet.log.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
what=${1:-all}
OUT=${OUT:-$root/.cache/gpu-out}
mkdir -p "$OUT"
build=native/build-gpu
summary=$OUT/summary.txt
: >"$summary"
note() { echo "== $*" | tee -a "$summary"; }

nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv,noheader | tee -a "$summary"
nvcc --version | tail -1 | tee -a "$summary"

start=$(date +%s)
if ! { cmake -S native -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_FLAGS="-Xptxas -v" &&
       cmake --build "$build"; } >"$OUT/build.log" 2>&1; then
  tail -40 "$OUT/build.log"
  note "build FAILED"
  exit 1
fi
note "build ok in $(( $(date +%s) - start )) s"
grep -A2 "sparse_attention_kernel\|probe_kernel" "$OUT/build.log" | grep -E "registers|spill" | sort | uniq -c | head -20 >>"$summary"
cuobjdump --dump-sass "$build/libflexprefill.so" 2>/dev/null | grep -cE "HMMA" | sed 's/^/HMMA instructions in the library: /' | tee -a "$summary"

status=0
if [ "$what" = all ] || [ "$what" = validate ]; then
  (cd "$build" && ctest --output-on-failure -E emulated) >"$OUT/ctest.log" 2>&1 && note "ctest ok" || { note "ctest FAILED"; status=1; }
  tail -5 "$OUT/ctest.log"
  timeout 300 "$build/fp_validate" 2>&1 | tee "$OUT/validate.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] && note "validate ok" || { note "validate FAILED"; status=1; }
  timeout 180 compute-sanitizer --tool memcheck --leak-check no "$build/fp_validate" --quick >"$OUT/sanitizer.log" 2>&1
  rc=$?
  tail -3 "$OUT/sanitizer.log" | tee -a "$summary"
  [ $rc -eq 0 ] && note "compute-sanitizer memcheck clean" || { note "compute-sanitizer rc=$rc"; status=1; }
fi
if [ "$what" = all ] || [ "$what" = bench ]; then
  PYTHONUNBUFFERED=1 timeout 400 python3 native/dev/bench.py --lib "$build/libflexprefill.so" 2>&1 | tee "$OUT/bench.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] && note "bench ok" || { note "bench FAILED"; status=1; }
fi
if [ -d .carry/dotnet ]; then
  torchlib=$(python3 -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"lib"))')
  for dir in .carry/dotnet/*/; do
    exe=$dir$(basename "$dir")
    [ -x "$exe" ] || continue
    LD_LIBRARY_PATH=$torchlib FLEXPREFILL_NATIVE=$root/$build/libflexprefill.so "$exe" -noColor 2>&1 | tee -a "$OUT/dotnet.log"
  done
fi
note "done in $(( $(date +%s) - start )) s, status $status"
exit $status
