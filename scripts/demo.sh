#!/usr/bin/env bash
# `make demo`: lint → cache → fit on the bundled fixtures, offline, on the embedded defaults (a few CPU steps on a
# tiny random-weight Qwen3-VL). The fixtures plant two bad records, so lint and cache report problems (exit 1) and
# the demo goes on; any other failure stops it.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
OUT=demo-out
rm -rf "$OUT" && mkdir -p "$OUT"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
expect_0_or_1() { local code=$?; [ "$code" -le 1 ] || { echo "demo: step failed with exit $code" >&2; exit "$code"; }; }

step "1/4 vlprep lint fixtures/demo.jsonl --max-length 2048"
"$BIN/vlprep" lint fixtures/demo.jsonl --max-length 2048; expect_0_or_1

step "2/4 vlprep cache fixtures/demo.jsonl --out $OUT/cache --val-ratio 0.2"
"$BIN/vlprep" cache fixtures/demo.jsonl --out "$OUT/cache" --val-ratio 0.2 --max-length 2048; expect_0_or_1
echo "rejects:"; cut -c1-160 "$OUT/cache/rejects.jsonl"

step "3/4 vltrain make-model $OUT/tiny-model (random weights, ~10 M parameters, no download)"
"$BIN/vltrain" make-model "$OUT/tiny-model" || exit 1

step "4/4 vltrain fit --cached $OUT/cache --model $OUT/tiny-model (LoRA, 4 CPU steps)"
"$BIN/vltrain" fit --cached "$OUT/cache" --model "$OUT/tiny-model" --output-dir "$OUT/run" --max-steps 4 \
  --batch-size 2 --learning-rate 1e-3 --save-steps 4 --eval-steps 4 --logging-steps 1 || exit 1
echo
echo "demo done: cache in $OUT/cache, checkpoints in $OUT/run"
