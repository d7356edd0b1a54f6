"""A perceptual fingerprint of an image: a 64-bit DCT hash (pHash) computed from pixels the checks already decoded.

The picture is reduced to 32x32 grey levels, a 2-D DCT is taken, and each of the 8x8 lowest frequencies (DC excluded)
becomes one bit: above or below their median. Re-encoding, resizing and format conversion change the high frequencies
and leave these bits; a crop of a few percent moves a few of them. Two images are near-duplicates when their hashes
differ in at most `--near-distance` bits (docs/checks.md gives the measured rates). numpy only: imagehash would add
scipy and PyWavelets to compute the same thing.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

_SIDE = 32
_LOW = 8


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    matrix = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2 / n)
    matrix[0] /= np.sqrt(2)
    return matrix


_DCT_LOW = _dct_matrix(_SIDE)[:_LOW]  # only the 8 lowest frequencies are kept: compute only those


def phash(image: Image.Image) -> int:
    """The 64-bit pHash of a loaded image (the first frame; alpha is dropped, as training converts to RGB)."""
    grey = image.convert("L") if image.mode != "L" else image
    small = np.asarray(grey.resize((_SIDE, _SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0), dtype=np.float64)
    low = (_DCT_LOW @ small @ _DCT_LOW.T).ravel()
    # the median of the 63 terms after DC (which says how bright the picture is, not what it shows): the 32nd
    # smallest, as np.median gives it, at a fraction of its cost
    median = np.partition(low[1:], 31)[31]
    return int.from_bytes(np.packbits(low > median).tobytes(), "big")


def distance(a: int, b: int) -> int:
    """Hamming distance of two fingerprints."""
    return (a ^ b).bit_count()
