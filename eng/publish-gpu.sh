#!/usr/bin/env bash
# Packs the .NET side for the GPU machine (no .NET, no network, PyTorch's libtorch): self-contained linux-x64 Release
# publishes of the Inference and Native test executables and the flexprefill CLI, built with -p:TorchBackend=external,
# in ONE archive, .carry/dotnet.tar.xz (a folder per app, named after its project), which eng/gpu-run.sh unpacks and runs.
#   eng/publish-gpu.sh   (about 2.5 min on 2 cores, most of it xz; the archive must stay under 36 MiB: it travels with
#                         the repository, which the device tool copies under a 64 MiB limit)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
stage=.cache/publish-gpu
archive=.carry/dotnet.tar.xz
limit=$((36 * 1024 * 1024))
projects=(tests/FlexPrefill.Native.Tests tests/FlexPrefill.Inference.Tests src/FlexPrefill.Cli)

rm -rf "$stage/apps"
mkdir -p "$stage" .carry
for proj in "${projects[@]}"; do
  name=$(basename "$proj")
  echo "publishing $name"
  # --artifacts-path: own obj/ and bin/, so this external-backend restore never rewrites the obj/project.assets.json
  # that ordinary (TorchSharp-cpu) builds of the same projects use. No pdb, docs or satellite folders: size.
  # Globalization stays on (ICU): the tokenizers' Unicode normalizers need it; gpu-run.sh falls back without libicu.
  dotnet publish "$proj" -c Release -r linux-x64 --self-contained -nologo -clp:ErrorsOnly \
    --artifacts-path "$stage/artifacts" -o "$stage/apps/$name" \
    -p:TorchBackend=external -p:DebugType=none -p:DebugSymbols=false -p:SatelliteResourceLanguages=en \
    -p:PublishDocumentationFile=false -p:PublishReferencesDocumentationFiles=false -p:GenerateDocumentationFile=false
done

# The model and fixture folders travel with the checkout anyway (the archive shares its 64 MiB): gpu-run.sh links the
# checkout's models/ and tests/fixtures/ back beside the executables, where the CLI and the tests look for them.
rm -rf "$stage/apps/FlexPrefill.Cli/models" "$stage/apps/FlexPrefill.Inference.Tests/fixtures"

# The apps cannot share one folder: the CLI brings SkiaSharp 3.119 (ScottPlot) where TorchSharp's tests run on 2.88.6.
# So each stays a whole self-contained folder, and files that two apps ship byte-identical (the .NET runtime, TorchSharp)
# become hard links, which tar stores once: one runtime copy in the archive, no app running another's dependency.
first=$stage/apps/$(basename "${projects[0]}")
for app in "$stage"/apps/*/; do
  [ "${app%/}" = "$first" ] && continue
  while IFS= read -r -d '' file; do
    twin=$first/${file#"$app"}
    if [ -f "$twin" ] && cmp -s "$file" "$twin"; then ln -f "$twin" "$file"; fi
  done < <(find "$app" -type f -print0)
done

# The external backend must not ship libtorch (PyTorch's torch/lib provides it), and the GLIBCXX_3.4.32 requirement of
# libLibTorchSharp.so must be weak (eng/TorchSharpLoad.targets) or it will not load on GCC 12 libstdc++.
for app in "$stage"/apps/*/; do
  if ls "$app"libtorch*.so* "$app"libc10*.so* >/dev/null 2>&1; then echo "$app: libtorch was shipped"; exit 1; fi
  [[ $(readelf -V "${app}libLibTorchSharp.so") == *"Name: GLIBCXX_3.4.32  Flags: WEAK"* ]] ||
    { echo "${app}libLibTorchSharp.so: GLIBCXX_3.4.32 is not weak"; exit 1; }
done

rm -f "$archive"
# --x86: the BCJ filter makes native and ReadyToRun code compress about 2% better; plain `tar -xJf` unpacks it.
tar -C "$stage/apps" --sort=name --owner=0 --group=0 -cf - . | xz --x86 --lzma2=preset=9e >"$archive"
size=$(stat -c %s "$archive")
echo "$archive: $((size / 1024)) KiB ($(du -sm "$stage/apps" | cut -f1) MiB unpacked), limit $((limit / 1024)) KiB"
[ "$size" -le "$limit" ] || { echo "archive over the limit"; exit 1; }
