"""One process of a multi-process run, started by torchrun: `python -m vltrain.training.rank PLAN.json`.

Each process runs the model-folder guard itself before ms-swift (which loads with trust_remote_code=True) reads the
folder, then ms-swift's `sft_main` with the plan's arguments and environment. Global rank 0 writes the trainer's result
where the plan says, for the launching `vltrain fit` to summarize, and appends its progress events (vltrain.training.callback)
to the plan's JSON-lines file, which the launching process follows to draw the display.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from vlprep.counting.model_guard import ShippedCodeRefused, refuse_shipped_code

from vltrain.training.callback import Event
from vltrain.training.launch import TrainingFailed, run_in_process


def main(plan_path: str) -> int:
    plan = json.loads(Path(plan_path).read_text())
    args = plan["swift_args"]
    try:
        refuse_shipped_code(Path(args["model"]), plan["trust_remote_code"])
    except ShippedCodeRefused as refusal:
        print(f"vltrain rank {os.environ.get('RANK', '?')}: refused: {refusal}", file=sys.stderr)
        return 2
    events = Path(plan["events"])

    def sink(event: Event) -> None:
        with events.open("a") as stream:
            stream.write(json.dumps(event, default=str) + "\n")

    try:
        result = run_in_process(args, plan["environment"], sink)
    except TrainingFailed as failure:  # the traceback is already on stderr (train.log)
        print(f"vltrain rank {os.environ.get('RANK', '?')}: training failed: {failure}", file=sys.stderr)
        return 1
    if os.environ.get("RANK", "0") == "0":
        Path(plan["result"]).write_text(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
