#!/usr/bin/env bash
# `make demo`: lint → cache → fit on the bundled fixtures, offline, on the embedded defaults.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV_BIN=.venv/bin
OUT=demo-out
rm -rf "$OUT" && mkdir -p "$OUT"

echo "== 1. vlprep lint fixtures/demo.jsonl (problems are expected: two planted bad records)"
"$VENV_BIN/vlprep" lint fixtures/demo.jsonl
status=$?
[ "$status" -le 1 ] || exit "$status"
