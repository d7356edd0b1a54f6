"""Whether the caches of a mixture were built compatibly: one ms-swift run reads them all with one processor, one
template and one set of pixel and video settings (its environment), so every cache must have been counted with the
same ones. A difference names the two caches and the setting."""

from __future__ import annotations

from typing import Any, Sequence

from vlprep.counting.settings import CountSettings
from vlprep.insight.mixture import Source


def _settings(manifest: dict[str, Any]) -> dict[str, str]:
    """What must agree across caches: model family and template, and ms-swift's pixel/video environment."""
    processor = manifest["processor"]
    return {"model family": str(processor.get("family")), "template": str(processor.get("template")),
            **CountSettings.from_manifest(manifest).environment(),
            "video reader version": str((manifest["counting"].get("video") or {}).get("reader_version"))}


def mixture_settings(sources: Sequence[Source], manifests: Sequence[dict[str, Any]],
                     processor_ok: Sequence[bool]) -> tuple[bool, str, str]:
    """(ok, detail, fix) of the mixture check: every cache against the first."""
    first, reference = sources[0], _settings(manifests[0])
    fingerprint = manifests[0]["processor"]["fingerprint"]
    for index, (source, manifest) in enumerate(zip(sources[1:], manifests[1:]), start=1):
        other = _settings(manifest)
        for name, value in reference.items():
            if other.get(name) != value:
                return (False, f"{first.spec} and {source.spec} were built with different {name}: {value} vs "
                               f"{other.get(name)}; one ms-swift run reads every cache with one setting",
                        f"rebuild {source.spec} with the settings of {first.spec} (or train them in separate runs)")
        theirs = manifest["processor"]["fingerprint"]
        if theirs != fingerprint and not (processor_ok[0] and processor_ok[index]):
            return (False, f"{first.spec} and {source.spec} were built with different processors ({fingerprint[:12]} "
                           f"vs {theirs[:12]}) and the processor check refuses one of them",
                    f"rebuild {source.spec} with the processor of {first.spec}")
    same = len({manifest["processor"]["fingerprint"] for manifest in manifests}) == 1
    return (True, f"{len(sources)} caches built with the same family, template, pixel and video settings and "
                  + ("the same processor" if same else "processors that give the model's tokens"), "")
