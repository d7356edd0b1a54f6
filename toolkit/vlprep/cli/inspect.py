"""`vlprep inspect`: is a cache intact (manifest, checksums, image files), and what does it hold."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from vlprep.cache.image_staleness import ImagesMode, check_cached_images
from vlprep.cache.manifest import load_manifest
from vlprep.cli.formats import DocumentFormat
from vlprep.counting.settings import IMAGE_ENV


def inspect(
    cache_dir: Annotated[Path, typer.Argument(help="A folder made by `vlprep cache`.")],
    verify_images: Annotated[ImagesMode, typer.Option(
        "--verify-images", help="Image files checked against the cache: a sample of 64, all, or none (also off); one "
                                "whose size/mtime moved is compared by content (the same check as `vltrain fit`).")
                             ] = ImagesMode.sample,
    output_format: Annotated[DocumentFormat, typer.Option("--format", help="text or json (the manifest, with an "
                                                                           "`inspection` entry).")
                             ] = DocumentFormat.text,
) -> None:
    """Verify a cache (manifest, checksums of its files, its image files) and summarize it; exit 1 if it was modified
    or its images are missing or changed.

    Example: [bold]vlprep inspect arrow/[/]
    """
    manifest = load_manifest(cache_dir)
    images = check_cached_images(cache_dir, manifest, "none" if verify_images is ImagesMode.off else verify_images.value)
    if output_format is DocumentFormat.json:
        inspection = {"checksums": "verified", "images": images.to_json()}
        sys.stdout.write(json.dumps({**manifest, "inspection": inspection}, indent=2) + "\n")
        raise typer.Exit(0 if images.ok else 1)
    counts, counting = manifest["counts"], manifest["counting"]
    console = Console(soft_wrap=True)
    console.print(f"[bold]{cache_dir}[/]: vlprep cache built {manifest['created']} by vlprep {manifest['tool']['vlprep']}"
                  f"; checksums of {len(manifest['data_files'])} file(s) verified")
    console.print(f"  {counts['train']:,} train, {counts['val']:,} val, {counts['rejected']:,} rejected = "
                  f"{counts['input_lines']:,} input lines")
    limits = ", ".join(f"{env}={counting[key]}" for key, env in IMAGE_ENV.items())
    console.print(f"  processor {manifest['processor']['model']} ({manifest['processor']['fingerprint'][:12]}), "
                  f"{limits}, max_length {manifest['max_length']}")
    mark = "[green]images:[/]" if images.ok else "[red]images:[/]"
    console.print(f"  {mark} {escape(images.describe())}", highlight=False)
    if not images.ok:
        console.print(f"  fix: {escape(images.fix())}", highlight=False)
        raise typer.Exit(1)
