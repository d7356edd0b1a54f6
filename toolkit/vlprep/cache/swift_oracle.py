"""ms-swift's own template (the model family's: vlprep.models) as an oracle, in a child process
(`python -m vlprep.cache.swift_oracle`).

A child process because ms-swift and qwen-vl-utils read the pixel limits (IMAGE_MAX_TOKEN_NUM, ...) from the environment
when they are imported: the only way to encode with a cache's limits, whatever this process imported before, is a fresh
interpreter with that environment. The child imports ms-swift and builds the template once, then forks `workers`
encoders, so a sample is encoded on several cores for the price of one start-up.

Protocol, one JSON document per line: the first line sent is `{"model_dir": ..., "workers": N, "trust_remote_code":
bool}` (the child refuses a folder that ships code before ms-swift, which always trusts it, can read it), then
`{"key": K, "record": {...}}` with a row as training reads it (a cached row: absolute image paths), optionally with
`"raw": {"text": LINE, "base_dir": DIR}`, an original input line. `{"batch": [{"key", "record", "text", "cached":
true}, ...], "base_dir": DIR}` sends cache rows as written, which the child reads back through the split's schema first
(vlprep.cache.writer.as_stored: this needs `datasets`, which the child imports anyway and the build process never does), with
their original lines from one input file, whose lines the loader reads together (one call instead of one per line: the loader's fixed cost, about 0.2 s, is most of a verified record's). The child answers each, in any order, with
`{"key": K, "input_ids", "labels", "length", "image_grid_thw"}` or `{"key": K, "error"}` for the row, plus, when a raw
line was sent, `"raw": {...}` of the same shape for what ms-swift makes of that line.

The raw line goes through ms-swift's own loader exactly as `swift sft --dataset FILE.jsonl` loads it
(`swift.dataset.load_dataset` on a file of that line, run from DIR so relative image paths resolve as vlprep resolved
them): its format detection, column mapping and preprocessing, then the template. That is what makes a normalization
that loses or changes anything visible (measured: about 250 ms per call, against about 225 ms through
`AutoPreprocessor` on an in-memory one-row Dataset, which also differs in how absent message keys come back). A batch
holds lines with the same keys at every level (vlprep.cache.verify.structure), so loading them together gives each line the
columns it has alone: no key is filled with null because another line has it.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from vlprep.cache.writer import as_stored
from vlprep.counting.settings import LEGACY_IMAGE_ENV, LEGACY_VIDEO_ENV
from vlprep.models.registry import family_for_model_dir

_IN_FLIGHT_PER_ENCODER = 64  # records queued per encoder: the build never waits on a sample, memory stays bounded


# The encoders allocate and free arrays of tens of MB per image (decode, resize, normalize, patchify). With glibc's
# defaults each such block is a fresh mmap whose pages the kernel faults in and zeroes again for every image: about a
# third of the encode time on the bench data. Serving them from a heap that is kept (no mmap, no trim) removes that.
_ENCODER_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "OMP_NUM_THREADS": "1",  # one core per encoder: the encoders are the parallelism
    "MALLOC_MMAP_THRESHOLD_": str(1 << 30),
    "MALLOC_TRIM_THRESHOLD_": str(1 << 32),
}


class OracleExited(RuntimeError):
    """The encoder process ended before answering: `cause` is ms-swift's last error line, `log` all it printed."""

    def __init__(self, code: int, log: str) -> None:
        self.code = code
        self.log = log
        self.cause = _last_error_line(log)
        super().__init__(f"the ms-swift encoder process exited with code {code}: {self.cause}")


def _last_error_line(log: str) -> str:
    """The line a Python traceback ends with (`SomeError: message`), else the last line printed, else a placeholder."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Refused|Exit)\b.*:", line)]
    return (errors or lines or ["(it printed nothing)"])[-1]


class SwiftOracle:
    """A long-lived child process encoding records with ms-swift's template under the given pixel-limit environment.

    `submit` queues a record under a key and returns at once (blocking only while too many are in flight); `take`
    returns the next finished (key, answer). Answers are read by a thread, so the child never blocks on a full pipe.
    """

    def __init__(self, model_dir: str, env: dict[str, str], workers: int = 1, trust_remote_code: bool = False) -> None:
        child_env = {**os.environ, **_ENCODER_ENV, **env}
        for legacy in (*LEGACY_IMAGE_ENV, *LEGACY_VIDEO_ENV):  # token counts rule
            child_env.pop(legacy, None)
        self.workers = max(1, workers)
        # the child's one-record files and ms-swift's loader caches; removed here, even when the child is killed
        self._scratch = tempfile.mkdtemp(prefix="vlprep-oracle-")
        child_env["VLPREP_ORACLE_SCRATCH"] = self._scratch
        self._log = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a chatty child can never block on it
        self._child = subprocess.Popen([sys.executable, "-m", "vlprep.cache.swift_oracle"], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, stderr=self._log, text=True, env=child_env)
        self._answers: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read_answers, daemon=True)
        self._reader.start()
        self.in_flight = 0
        self._send({"model_dir": model_dir, "workers": self.workers, "trust_remote_code": trust_remote_code})

    def _read_answers(self) -> None:
        assert self._child.stdout is not None
        for line in self._child.stdout:
            self._answers.put(json.loads(line))
        self._answers.put(None)  # the child closed its output

    def _send(self, message: dict[str, Any]) -> None:
        assert self._child.stdin is not None
        try:
            self._child.stdin.write(json.dumps(message) + "\n")
            self._child.stdin.flush()
        except BrokenPipeError:
            raise self._exited() from None

    def _exited(self) -> OracleExited:
        code = self._child.wait()
        self._log.seek(0)
        return OracleExited(code, self._log.read())

    def submit(self, key: int, record: dict[str, Any], raw: dict[str, str] | None = None
               ) -> list[tuple[int, dict[str, Any]]]:
        """Queue a row (and, with `raw` = {text, base_dir}, an original input line to load the way ms-swift's loader
        does); returns the answers that had to be taken first to keep the number in flight bounded."""
        taken = []
        while self.in_flight >= self.workers * _IN_FLIGHT_PER_ENCODER:
            taken.append(self.take())
        self._send({"key": key, "record": record, **({"raw": raw} if raw is not None else {})})
        self.in_flight += 1
        return taken

    def submit_batch(self, items: list[tuple[int, dict[str, Any], str]], base_dir: str
                     ) -> list[tuple[int, dict[str, Any]]]:
        """Queue cache rows as written, each with its original input line (key, row, line): lines of one input file,
        loaded by ms-swift's loader together. Answered per key, like `submit` with `raw` and `cached`."""
        taken = []
        while self.in_flight and self.in_flight + len(items) > self.workers * _IN_FLIGHT_PER_ENCODER:
            taken.append(self.take())
        self._send({"batch": [{"key": key, "record": row, "text": text, "cached": True} for key, row, text in items],
                    "base_dir": base_dir})
        self.in_flight += len(items)
        return taken

    def take(self, block: bool = True) -> tuple[int, dict[str, Any]]:
        """The next finished (key, answer); with block=False, raises queue.Empty when none is ready."""
        answer = self._answers.get(block=block)
        if answer is None:
            raise self._exited()
        self.in_flight -= 1
        return answer.pop("key"), answer

    def encode(self, record: dict[str, Any], raw: dict[str, str] | None = None) -> dict[str, Any]:
        """Encode one row (and raw line) and wait for it (nothing else may be in flight)."""
        assert self.in_flight == 0, "encode() waits for its own answer only"
        self.submit(0, record, raw)
        return self.take()[1]

    def close(self, abandon: bool = False) -> None:
        """Let the child finish and exit; with abandon=True (the build failed), stop it without waiting."""
        if abandon:
            self._child.kill()
        if self._child.stdin:
            try:
                self._child.stdin.close()
            except BrokenPipeError:
                pass
        try:
            self._child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._child.kill()
            self._child.wait()
        self._reader.join(timeout=5)
        self._log.close()
        shutil.rmtree(self._scratch, ignore_errors=True)

    def __enter__(self) -> "SwiftOracle":
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        self.close(abandon=kind is not None)


# ---- the child --------------------------------------------------------------------------------------------------

_template: Any = None  # built once before the encoders fork; each inherits it
_scratch: str = ""  # the child's private folder for one-record files and ms-swift's loader caches


def _encode_row(row: dict[str, Any]) -> dict[str, Any]:
    try:
        encoded = _template.encode(row, return_length=True)
    except Exception as error:  # noqa: BLE001 - reported back per record
        return {"error": f"{type(error).__name__}: {error}"}
    grid = encoded.get("image_grid_thw")
    video_grid = encoded.get("video_grid_thw")
    return {
        "input_ids": list(map(int, encoded["input_ids"])),
        "labels": list(map(int, encoded["labels"])),
        "length": int(encoded["length"]),
        "image_grid_thw": grid.tolist() if grid is not None else [],
        "video_grid_thw": video_grid.tolist() if video_grid is not None else [],
    }


def _load_lines(texts: list[str], base_dir: str, tag: str) -> list[dict[str, Any]] | str:
    """ms-swift's loader on a file of these lines, run from `base_dir` (relative image paths resolve as vlprep
    resolved them): the rows as training reads them, or the loader's error."""
    from swift.dataset import load_dataset

    folder = os.path.join(_scratch, f"{os.getpid()}-{tag}")  # the file and every cache the loader writes for it
    os.makedirs(folder)
    path = os.path.join(folder, "records.jsonl")
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(text.rstrip("\r\n") + "\n" for text in texts)
    os.environ["MODELSCOPE_CACHE"] = folder  # read at each call by ms-swift's loader
    try:
        os.chdir(base_dir)
        dataset, _ = load_dataset([path], split_dataset_ratio=0.0, num_proc=1)
        return [dataset[index] for index in range(len(dataset))]  # decoded as training reads rows
    except Exception as error:  # noqa: BLE001 - reported back per record
        return f"ms-swift's loader failed on the line: {type(error).__name__}: {error}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _encode_raw(text: str, base_dir: str, key: int) -> dict[str, Any]:
    """What `swift sft --dataset` makes of one input line, encoded: ms-swift's loader on a one-record file."""
    rows = _load_lines([text], base_dir, str(key))
    if isinstance(rows, str):
        return {"error": rows}
    if len(rows) != 1:
        return {"error": "ms-swift's loader drops this line (its preprocessing rejected the record)"}
    return _encode_row(rows[0])


def _raw_batch(texts: list[str], base_dir: str, keys: list[int]) -> list[dict[str, Any]]:
    """The raw encodes of lines of one input file, loaded together: one loader call for the batch, as `swift sft
    --dataset FILE` loads the lines of its file together. When the loader does not give back one row per line (it
    dropped one, or could not read them together), each line is loaded alone, so every answer names its own line."""
    if len(texts) == 1:  # a batch of one is that line alone: loaded once, not again after a failure
        return [_encode_raw(texts[0], base_dir, keys[0])]
    rows = _load_lines(texts, base_dir, f"batch-{keys[0]}")
    if isinstance(rows, list) and len(rows) == len(texts):  # the loader keeps the order of the file's lines
        return [_encode_row(row) for row in rows]
    return [_encode_raw(text, base_dir, key) for text, key in zip(texts, keys)]


def _as_read(message: dict[str, Any]) -> dict[str, Any]:
    record = message["record"]
    if message.get("cached"):
        return as_stored(record)
    return record


def _encode(line: str) -> str:
    message = json.loads(line)
    if "batch" in message:
        items = message["batch"]
        raws = _raw_batch([item["text"] for item in items], message["base_dir"], [item["key"] for item in items])
        return "\n".join(json.dumps({"key": item["key"], **_encode_row(_as_read(item)), "raw": raw})
                         for item, raw in zip(items, raws))
    answer = {"key": message["key"], **_encode_row(_as_read(message))}
    if "raw" in message:
        answer["raw"] = _encode_raw(message["raw"]["text"], message["raw"]["base_dir"], message["key"])
    return json.dumps(answer)


def _serve() -> None:
    global _template, _scratch
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # the parent's to handle: it stops this child itself
        signal.signal(number, signal.SIG_IGN)
    answers = sys.stdout
    sys.stdout = sys.stderr  # ms-swift logs to stdout; keep the real stdout for answers
    _scratch = os.environ["VLPREP_ORACLE_SCRATCH"]
    os.environ["MODELSCOPE_CACHE"] = _scratch  # ms-swift's loader caches go here, never to ~/.cache
    settings = json.loads(sys.stdin.readline())
    from vlprep.counting.model_guard import ShippedCodeRefused, refuse_shipped_code

    try:  # before ms-swift, which loads with trust_remote_code=True, is even imported
        refuse_shipped_code(Path(settings["model_dir"]), bool(settings.get("trust_remote_code")))
    except ShippedCodeRefused as refusal:
        print(f"ShippedCodeRefused: {refusal.problem}", file=sys.stderr)
        raise SystemExit(2) from None
    from datasets import disable_progress_bars
    from swift import get_model_processor, get_template
    from swift.dataset import load_dataset  # noqa: F401 - imported once, before the encoders fork

    disable_progress_bars()  # a bar per one-record load would only fill the log

    family = family_for_model_dir(Path(settings["model_dir"]))
    _, processor = get_model_processor(settings["model_dir"], model_type=family.model_type, load_model=False)
    _template = get_template(processor, template_type=family.template)
    _template.set_mode("train")
    workers = int(settings.get("workers", 1))
    pool = None
    if workers == 1:
        results = map(_encode, sys.stdin)
    else:  # forked after the imports and the template are ready: no encoder pays for them again
        pool = multiprocessing.get_context("fork").Pool(workers)
        results = pool.imap_unordered(_encode, sys.stdin)
    for answer in results:
        answers.write(answer + "\n")
        answers.flush()
    # Every answer is written and the parent has closed our input: nothing is left to finish. Tearing down the
    # interpreter with torch, transformers and ms-swift loaded took 2.2-2.5 s here, which every build waited for.
    if pool is not None:
        pool.terminate()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    _serve()
