"""Near-duplicate pictures across records: D002 (a near-duplicate of an earlier picture), D003 (the same bytes under
another path), D004 (a record whose text and pictures repeat an earlier record's), and the picture groups that
`vlprep cache --val-ratio` keeps on one side of the split.

Every record is an element of a union-find (one int64 each, in input order); a record is joined to the records whose
pictures are within `threshold` bits of its own, so grouping is transitive across records with several pictures. The
root of a group is its earliest record. Near neighbours are found by multi-index hashing: the 64-bit fingerprint is cut
into five bands of 13 or 12 bits, and two fingerprints within `threshold` bits agree within `threshold // 5` bits on at
least one band (pigeonhole), so probing each band's table at that radius (70 probes at the default 8) finds every
neighbour, exactly, without a scan.
Memory: a few hundred bytes per distinct picture and 8 bytes per record (docs/benchmarks.md has the measured figure).
"""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from vlprep.checks.fingerprint import distance

DEFAULT_NEAR_DISTANCE = 8
MAX_NEAR_DISTANCE = 15  # four bands at radius 3: past that the probes cost more than they save
_WIDTHS = (13, 13, 13, 13, 12)
_BANDS = tuple((sum(_WIDTHS[:band]), (1 << width) - 1) for band, width in enumerate(_WIDTHS))  # (shift, mask)


def _flip_masks(radius: int) -> list[int]:
    return [sum(1 << bit for bit in bits) for r in range(radius + 1) for bits in combinations(range(max(_WIDTHS)), r)]


@dataclass
class PictureIndex:
    threshold: int = DEFAULT_NEAR_DISTANCE
    parent: array = field(default_factory=lambda: array("q"))  # union-find over records, in input order
    has_picture: bytearray = field(default_factory=bytearray)
    # fingerprint -> (first record, its position, the first file's byte digest)
    first: dict[int, tuple[int, str, int | None]] = field(default_factory=dict)
    bands: list[dict[int, list[int]]] = field(default_factory=lambda: [{} for _ in _BANDS])
    files: dict[int, tuple[str, str]] = field(default_factory=dict)  # byte digest -> (first path, its position)
    texts: dict[int, tuple[str, tuple[int, ...]]] = field(default_factory=dict)  # text hash -> (position, pictures)
    _masks: list[int] = field(default_factory=list)

    def find(self, element: int) -> int:
        parent = self.parent
        while parent[element] != element:
            parent[element] = parent[parent[element]]  # path halving
            element = parent[element]
        return element

    def _union(self, a: int, b: int) -> None:
        a, b = self.find(a), self.find(b)
        if a != b:  # the earlier record stays the root, so a group's root never depends on the join order
            self.parent[max(a, b)] = min(a, b)

    def observe(self, element: int, where: str, images: list[Any], text_hash: int | None,
                exact_duplicate: bool) -> list[tuple[str, str]]:
        """Join record `element` to its pictures' groups; returns (code, message) for D002, D003, D004."""
        assert element == len(self.parent), "records are observed in order, once"
        self.parent.append(element)
        self.has_picture.append(1 if any(info.phash is not None for info in images) else 0)
        problems: list[tuple[str, str]] = []
        for position, info in enumerate(images):
            new_file = info.digest is None or info.digest not in self.files
            if info.digest is not None and info.path:
                first_path, first_where = self.files.setdefault(info.digest, (info.path, where))
                if first_path != info.path and not exact_duplicate:
                    problems.append(("D003", f"images[{position}]: {info.path} has the same bytes as {first_path} "
                                             f"(first used at {first_where})"))
            if info.phash is not None:
                near = self._join(element, f"{where} images[{position}] ({info.path or 'data URI'})", info.phash,
                                  info.digest)
                if near is not None and new_file and not exact_duplicate:
                    gap, near_where = near
                    problems.append(("D002", f"images[{position}]: {info.path or 'data URI'} is a near-duplicate of "
                                             f"{near_where} (distance {gap} <= --near-distance "
                                             f"{self.threshold})"))
        problems += self._repeated_record(where, images, text_hash, exact_duplicate)
        return problems

    def _join(self, element: int, where: str, fingerprint: int, digest: int | None) -> tuple[int, str] | None:
        """Union with every earlier picture within the threshold; the closest one's (distance, position), unless it
        is the same file."""
        hit = self.first.get(fingerprint)
        if hit is not None:  # that picture was joined to its neighbours when it came: joining it is enough
            self._union(element, hit[0])
            return None if hit[2] == digest else (0, hit[1])
        closest: tuple[int, str] | None = None
        for other in self._neighbours(fingerprint):
            holder, other_where, _ = self.first[other]
            self._union(element, holder)
            gap = distance(fingerprint, other)
            if closest is None or gap < closest[0]:
                closest = (gap, other_where)
        self.first[fingerprint] = (element, where, digest)
        for (shift, mask), table in zip(_BANDS, self.bands):
            table.setdefault(fingerprint >> shift & mask, []).append(fingerprint)
        return closest

    def _neighbours(self, fingerprint: int) -> set[int]:
        if not self._masks:
            self._masks = _flip_masks(self.threshold // len(_BANDS))
        found: set[int] = set()
        threshold = self.threshold
        for (shift, band_mask), table in zip(_BANDS, self.bands):
            key = fingerprint >> shift & band_mask
            for flip in self._masks:
                for other in table.get(key ^ flip, ()):
                    if (fingerprint ^ other).bit_count() <= threshold:  # inline: the hot loop of a large run
                        found.add(other)
        return found

    def _repeated_record(self, where: str, images: list[Any], text_hash: int | None,
                         exact_duplicate: bool) -> list[tuple[str, str]]:
        pictures = tuple(info.phash for info in images)
        if text_hash is None or not pictures or None in pictures:
            return []
        earlier = self.texts.setdefault(text_hash, (where, pictures))
        if earlier[1] is pictures or exact_duplicate or len(earlier[1]) != len(pictures):
            return []
        gaps = [distance(a, b) for a, b in zip(pictures, earlier[1])]
        if max(gaps) > self.threshold:
            return []
        return [("D004", f"same text as {earlier[0]} and near-duplicate pictures (distance {max(gaps)} <= "
                         f"--near-distance {self.threshold})")]

    def summary(self, top: int = 5) -> dict[str, Any]:
        """Distinct pictures, picture groups (of records joined by near-duplicate pictures), the largest ones."""
        sizes = Counter(self.find(element) for element in range(len(self.parent)) if self.has_picture[element])
        largest = [(root, size) for root, size in sizes.most_common(top) if size > 1]
        # a group's root is its earliest record, which brought a new picture: the first holder of a fingerprint
        roots = dict(largest)
        where = {holder: at.partition(" images[")[0] for holder, at, _ in self.first.values() if holder in roots}
        return {"distinct_pictures": len(self.first), "groups": len(sizes),
                "grouped_records": sum(size for size in sizes.values() if size > 1),
                "largest": [{"first": where.get(root, ""), "records": size} for root, size in largest],
                "near_distance": self.threshold}
