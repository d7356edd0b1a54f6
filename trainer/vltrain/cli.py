"""`vltrain`: guarded ms-swift training from a `vlprep cache` folder."""

from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Train Qwen3-VL with ms-swift from a vlprep cache.")


@app.callback()
def _root() -> None:
    """Train Qwen3-VL with ms-swift from a vlprep cache."""


def main() -> None:
    app()
