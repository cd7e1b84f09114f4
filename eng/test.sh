#!/usr/bin/env bash
# The test command: builds the solution, runs every test project (xUnit v3 executables), then native/'s ctest.
# GPU tests skip on a machine without CUDA and say why. Prints one closing line: "N passed, N failed, N skipped".
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
config=${CONFIGURATION:-Release}
export FLEXPREFILL_DATA=${FLEXPREFILL_DATA:-$root/.cache/data}
bash eng/fetch-data.sh "$FLEXPREFILL_DATA" >/dev/null || { echo "fetching test data failed"; exit 1; }

dotnet build FlexPrefill.SemanticKernel.sln -c "$config" -nologo -clp:ErrorsOnly || { echo "build failed"; exit 1; }

passed=0 failed=0 skipped=0 status=0
if [ -f native/CMakeLists.txt ]; then
  # Built before the .NET tests: FlexPrefill.Native.Tests load native/build-test/libflexprefill.so; ctest runs last.
  cmake -S native -B native/build-test -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build native/build-test -j2 >/dev/null || status=1
fi
for proj in tests/*/*.Tests.csproj; do
  name=$(basename "$proj" .csproj)
  exe=$(dirname "$proj")/bin/$config/net10.0/$name
  log=$(mktemp)
  "$exe" -noColor 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  summary=$(grep -E "^ *$name +Total: [0-9]+" "$log" | tail -1)
  if [ -z "$summary" ]; then echo "$name printed no summary"; status=1; continue; fi
  field() { grep -oE "$1: [0-9]+" <<<"$summary" | grep -oE '[0-9]+' || echo 0; }
  total=$(field Total) f=$(field Failed) e=$(field Errors) s=$(field Skipped)
  passed=$((passed + total - f - e - s)); failed=$((failed + f + e)); skipped=$((skipped + s))
  [ "$rc" -eq 0 ] || status=1
  rm -f "$log"
done

if [ -d native/build-test ]; then
  # native/ was built above (host-only without nvcc: references, C API validation, emulated kernels).
  (cd native/build-test && ctest --output-on-failure) || status=1
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] || status=1
exit $status
