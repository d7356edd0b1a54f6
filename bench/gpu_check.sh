#!/usr/bin/env bash
# The prepared GPU check (one H100/H200, no network, under 8 minutes): a random-weight model of the real
# Qwen3-VL-2B shape, a generated dataset cached by `vlprep cache`, then `vltrain fit` for one whole epoch with packing
# + flash attention and the same epoch without packing; prints tokens/s, padding waste and peak memory of both.
# Carry the wheels made by bench/gpu_wheels.sh (.whl). A number is printed only if it was measured; when no
# flash-attention build can be imported, the packed run is reported as not run, with the reason.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
WORK=${WORK:-/tmp/vlprep-gpu}
RESULTS=${OUT:-$WORK}/gpu_check.json
rm -rf "$WORK" && mkdir -p "$WORK" "$(dirname "$RESULTS")"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || { echo "gpu_check: installing the carried wheels failed"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD/toolkit:$PWD/trainer VLPREP_CACHE_DIR=$WORK/vlprep-cache
python3 -c "import torch; print('device:', torch.cuda.get_device_name(0), '| torch', torch.__version__)" || exit 1

echo "== data: 600 records, 1-2 images (320-1280 px sides), 1-3 rounds"
python3 - "$WORK" <<'PY' || exit 1
import json, random, sys
from pathlib import Path
from PIL import Image
work = Path(sys.argv[1]); images = work / "images"; images.mkdir()
rng = random.Random(0)
for i in range(60):
    w, h = rng.randrange(320, 1281, 32), rng.randrange(320, 1281, 32)
    Image.effect_noise((w, h), rng.uniform(10, 80)).convert("RGB").save(images / f"{i}.jpg", quality=85)
words = "the a cat dog chart shows value rises falls left right top bottom image region colour".split()
text = lambda n: " ".join(rng.choice(words) for _ in range(n))
with open(work / "data.jsonl", "w") as out:
    for i in range(600):
        k = rng.randint(1, 2)
        turns = [{"role": "user", "content": "<image>" * k + f"#{i} " + text(rng.randint(5, 60))},
                 {"role": "assistant", "content": text(rng.randint(10, 300))}]
        for _ in range(rng.randint(0, 2)):
            turns += [{"role": "user", "content": text(rng.randint(5, 40))},
                      {"role": "assistant", "content": text(rng.randint(10, 200))}]
        out.write(json.dumps({"messages": turns, "images": [str(images / f"{rng.randrange(60)}.jpg") for _ in range(k)]}) + "\n")
PY

echo "== vlprep cache (image tokens capped at 1024 per image, max_length 8192)"
python3 -m vlprep cache "$WORK/data.jsonl" --out "$WORK/cache" --image-max-tokens 1024 --max-length 8192 --verify 16 \
  -q || { echo "gpu_check: vlprep cache failed"; exit 1; }
python3 -m vltrain make-model "$WORK/model-2b" --shape 2b --dtype bfloat16 || exit 1

run_fit() {  # name, extra args...
  local name=$1; shift
  python3 -m vltrain fit --cached "$WORK/cache" --model "$WORK/model-2b" --output-dir "$WORK/run-$name" --epochs 1 \
    --learning-rate 1e-4 --save-steps 100000 --eval-steps 100000 --logging-steps 10 --format json "$@" \
    > "$WORK/$name.json" 2> "$WORK/$name.log"
  local code=$?
  [ $code -eq 0 ] || { echo "gpu_check: $name run failed (exit $code); last lines:"; tail -n 15 "$WORK/$name.log"; }
}
if python3 -c "import flash_attn" 2>/dev/null; then
  echo "== vltrain fit --packing (flash attention)"; run_fit packed --packing --batch-size 1 --grad-accum 1
  PACKED_NOTE=""
else
  PACKED_NOTE="not run: no flash-attention build importable on this machine (flash_attn missing)"
  echo "== packed run skipped: $PACKED_NOTE"
fi
echo "== vltrain fit --no-packing (sdpa, batch 8)"; run_fit unpacked --no-packing --batch-size 8 --grad-accum 1

cp "$WORK"/*.json "$WORK"/*.log "$(dirname "$RESULTS")/" 2>/dev/null  # the fit reports and logs come back too
python3 - "$WORK" "$RESULTS" "$PACKED_NOTE" <<'PY'
import json, sys
from pathlib import Path
work, results, note = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
rows = {}
for name in ("packed", "unpacked"):
    path = work / f"{name}.json"
    try:
        rows[name] = json.loads(path.read_text())
    except (OSError, ValueError):
        rows[name] = {"note": note if name == "packed" and note else "failed: see the log above"}
Path(results).write_text(json.dumps(rows, indent=2))
print(f"{'run':10} {'attn':8} {'packed':7} {'dtype':9} {'steps':>5} {'tok/s':>8} {'real tok/s':>10} {'padding':>8} {'peak mem':>12} {'loss first->last':>18} {'train s':>8}")
for name, row in rows.items():
    if "steps" not in row:
        failed = [c["name"] + ": " + c["detail"] for c in row.get("checks", []) if not c.get("ok")]
        print(f"{name:10} {row.get('note') or row.get('error') or '; '.join(failed) or 'failed'}")
        continue
    padding = row.get("padding_fraction")
    mem = row.get("peak_memory_bytes")
    mem = f"{mem / 2**30:.1f} GiB" if mem else "n/a"
    print(f"{name:10} {row['attn_impl']:8} {str(row['packing']):7} {row['torch_dtype']:9} {row['steps']:>5} "
          f"{row.get('measured_tokens_per_s') or 'n/a':>8} {row.get('measured_real_tokens_per_s') or 'n/a':>10} "
          f"{'n/a' if padding is None else f'{padding:.1%}':>8} {mem:>12} "
          f"{row.get('train_loss_first', float('nan')):.3f}->{row.get('train_loss_last', float('nan')):.3f}   "
          f"{row.get('wall_s', {}).get('train', 'n/a'):>8}  ({row.get('peak_memory_kind')})")
print("results:", results)
PY
