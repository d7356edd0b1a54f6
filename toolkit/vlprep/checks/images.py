"""Check one image reference: resolve it safely, read its header, and (in full mode) decode it.

Full mode must find truncated files, so every byte of the stream is decoded; for JPEG, Pillow's draft mode decodes the DCT
at 1/8 scale, which still reads and entropy-decodes the whole stream (a truncated file still raises) at a fraction of
the cost. Header-only mode (--fast) still catches the common truncation, a file cut short, by looking for the format's
end marker (JPEG EOI, PNG IEND, GIF trailer, WebP RIFF size) in the file's last bytes; corruption inside the stream is
only found by decoding.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from vlprep.checks.fingerprint import phash
from vlprep.records.diagnostics import ImageInfo

Image.MAX_IMAGE_PIXELS = None  # vlprep enforces its own limit (I005) before any decode
_UNUSUAL_MODES = {"CMYK", "I;16", "I;16B", "I;16L", "I;16N", "I", "F", "1", "YCbCr", "LAB", "HSV"}
_EXIF_ORIENTATION = 0x0112
MIN_SIDE = 32

Problem = tuple[str, str]


@dataclass(frozen=True)
class ImageLimits:
    max_pixels: int = 89_478_485  # Pillow's own decompression-bomb threshold
    max_ratio: float = 200.0
    full_decode: bool = True


@dataclass(frozen=True)
class ImageCheck:
    info: ImageInfo | None
    problems: tuple[Problem, ...]


def resolve_path(ref: str, base_dir: Path, image_root: Path | None) -> tuple[Path | None, Problem | None]:
    """Resolve a local reference to an absolute path; refuse one that escapes `image_root` once symlinks are followed."""
    if ref.startswith("file://"):
        ref = ref[len("file://"):]
    path = Path(ref)
    if not path.is_absolute():
        path = (image_root or base_dir) / path
    if image_root is not None:
        real = Path(os.path.realpath(path))
        root = Path(os.path.realpath(image_root))
        if real != root and root not in real.parents:
            return None, ("I002", f"{ref} resolves to {real}, outside --image-root {root}")
    return Path(os.path.abspath(path)), None


def check_image(ref: str, base_dir: Path, image_root: Path | None, limits: ImageLimits) -> ImageCheck:
    if ref.startswith(("http://", "https://")):
        return ImageCheck(None, (("I011", f"remote image {ref[:120]} is not fetched (vlprep runs offline)"),))
    if ref.startswith("data:"):
        return _check_data_uri(ref, limits)
    if "\x00" in ref:
        return ImageCheck(None, (("I013", f"image path {ref[:120]!r} contains a NUL character"),))
    path, escape = resolve_path(ref, base_dir, image_root)
    if escape:
        return ImageCheck(None, (escape,))
    assert path is not None
    try:
        if not path.exists():
            return ImageCheck(None, (("I001", f"image not found: {path}"),))
        handle = open(path, "rb")
    except (OSError, ValueError) as error:
        return ImageCheck(None, (("I013", f"cannot read {path}: {getattr(error, 'strerror', None) or error}"),))
    with handle:
        try:
            # a pipe or FIFO reads once; the checks seek (the tail marker, the file digest): read it into memory
            stream = handle if handle.seekable() else io.BytesIO(handle.read())
            checked = inspect_image(stream, str(path), limits)
            if checked.info is None:
                return checked
            return ImageCheck(dataclasses.replace(checked.info, digest=_file_digest(stream)), checked.problems)
        except Exception as error:  # noqa: BLE001 - a decoder bug on a hostile file is a bad image, never a crash
            return ImageCheck(None, (("I004", f"{path}: unreadable: {type(error).__name__}: {error}"),))


def _check_data_uri(ref: str, limits: ImageLimits) -> ImageCheck:
    header, _, payload = ref.partition(",")
    if not header.startswith("data:image/") or not header.endswith(";base64"):
        return ImageCheck(None, (("I012", f"data URI header {header[:60]!r} is not data:image/...;base64"),))
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as error:
        return ImageCheck(None, (("I012", f"data URI payload is not valid base64: {error}"),))
    try:
        return inspect_image(io.BytesIO(data), "", limits)
    except Exception as error:  # noqa: BLE001 - as for files
        return ImageCheck(None, (("I004", f"data URI image unreadable: {type(error).__name__}: {error}"),))


def inspect_image(stream: io.BufferedIOBase, path: str, limits: ImageLimits) -> ImageCheck:
    name = path or "data URI"
    try:
        image = Image.open(stream)
    except UnidentifiedImageError:
        size = _stream_size(stream)
        what = "an empty file" if size == 0 else "not an image Pillow can read"
        return ImageCheck(None, (("I003", f"{name} is {what}"),))
    except (OSError, ValueError, SyntaxError) as error:
        return ImageCheck(None, (("I004", f"{name}: cannot read header: {error}"),))
    with image:
        width, height = image.size
        info = ImageInfo(width, height, image.format or "", image.mode, path)
        problems: list[Problem] = []
        if width <= 0 or height <= 0:
            return ImageCheck(None, (("I004", f"{name}: declares size {width}x{height}"),))
        if width * height > limits.max_pixels:
            problems.append(("I005", f"{name}: {width}x{height} = {width * height:,} pixels is over "
                                     f"{limits.max_pixels:,} (--max-image-pixels); not decoded. If the image is "
                                     f"genuine, pass --max-image-pixels {width * height} or more"))
            return ImageCheck(info, tuple(problems))
        ratio = max(width, height) / min(width, height)
        if ratio > limits.max_ratio:
            problems.append(("I006", f"{name}: {width}x{height} has aspect ratio {ratio:.0f} > {limits.max_ratio:g}"))
        if min(width, height) < MIN_SIDE:
            problems.append(("I007", f"{name}: {width}x{height} has a side under {MIN_SIDE} px"))
        # decode before the header warnings, which may load frames or EXIF and would swallow a decoding error;
        # the tail check after them, as it moves the stream the lazy image reads from
        integrity_problem = _decode(image, name) if limits.full_decode else None
        fingerprint = _fingerprint(image, decoded=limits.full_decode and integrity_problem is None)
        problems.extend(_header_warnings(image, name))
        if not limits.full_decode:
            integrity_problem = _tail_problem(stream, image.format, name)
        if integrity_problem:
            problems.append(integrity_problem)
        return ImageCheck(dataclasses.replace(info, phash=fingerprint), tuple(problems))


def _header_warnings(image: Image.Image, name: str) -> list[Problem]:
    problems: list[Problem] = []
    orientation = None
    # PNG's getexif() decodes the whole image when no eXIf chunk came before the pixel data: skip it then
    if not (image.format == "PNG" and "exif" not in image.info):
        try:
            orientation = image.getexif().get(_EXIF_ORIENTATION)
        except Exception:  # noqa: BLE001 - a malformed EXIF block is not worth failing the image for
            orientation = None
    if orientation not in (None, 1):
        problems.append(("I008", f"{name}: EXIF orientation {orientation}; training uses the unrotated pixels"))
    transparent_palette = image.mode in ("P", "PA") and "transparency" in image.info
    if image.mode in _UNUSUAL_MODES or transparent_palette:
        mode = f"{image.mode} with transparency" if transparent_palette else image.mode
        problems.append(("I009", f"{name}: mode {mode}; converted to RGB for training"))
    try:
        frames = getattr(image, "n_frames", 1)
    except Exception as error:  # noqa: BLE001 - Pillow's frame scan fails on a damaged animation
        problems.append(("I004", f"{name}: cannot read its frames: {type(error).__name__}: {error}"))
        return problems
    if frames > 1:
        problems.append(("I010", f"{name}: animated ({frames} frames); only the first frame is used"))
    return problems


def _decode(image: Image.Image, name: str) -> Problem | None:
    try:
        if image.format == "JPEG":
            image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
        image.load()
    except Exception as error:  # noqa: BLE001 - any decoder failure is a corrupt image, reported, never raised
        return ("I004", f"{name}: decoding failed: {error}")
    return None


def _fingerprint(image: Image.Image, decoded: bool) -> int | None:
    """The perceptual hash from the pixels the full check decoded; with --fast, from a draft decode (JPEG at 1/8 scale,
    other formats in full: docs/checks.md gives the cost). None when the pixels do not decode."""
    try:
        if not decoded:
            if image.format == "JPEG":
                image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
            image.load()
        return phash(image)
    except Exception:  # noqa: BLE001 - an undecodable image has no fingerprint; full mode reports it as I004
        return None


def _file_digest(handle: io.BufferedIOBase) -> int:
    """64-bit BLAKE2b of the file's bytes: byte-identical files under different paths are named by D003."""
    digest = hashlib.blake2b(digest_size=8)
    handle.seek(0)
    while block := handle.read(1 << 20):
        digest.update(block)
    return int.from_bytes(digest.digest(), "big")


_END_MARKERS = {"JPEG": b"\xff\xd9", "PNG": b"IEND", "GIF": b";"}
_TAIL_BYTES = 4096


def _tail_problem(stream: io.BufferedIOBase, image_format: str | None, name: str) -> Problem | None:
    """Header-only mode's cheap truncation check: the format's end marker must be near the end of the file."""
    size = _stream_size(stream)
    if image_format == "WEBP":
        stream.seek(4)
        declared = int.from_bytes(stream.read(4), "little") + 8
        return None if size >= declared else ("I004", f"{name}: RIFF declares {declared} bytes, the file has {size}: "
                                                      "truncated")
    marker = _END_MARKERS.get(image_format or "")
    if marker is None or size < 0:
        return None
    stream.seek(max(0, size - _TAIL_BYTES))
    if marker in stream.read(_TAIL_BYTES):
        return None
    return ("I004", f"{name}: no {image_format} end marker near the end of the file: truncated")


def _stream_size(stream: io.BufferedIOBase) -> int:
    try:
        return stream.seek(0, io.SEEK_END)
    except (OSError, ValueError):
        return -1
