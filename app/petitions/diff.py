"""Word-level differences between text versions, as segments a template can mark up safely."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from difflib import SequenceMatcher

from app.models.petitions import PetitionVersion

FIELDS = (("title", "Title"), ("ask", "What we ask for"), ("background", "Why"), ("decision_maker", "Decision-maker"))


@dataclass(frozen=True)
class Segment:
    kind: str  # "same", "added" or "removed"
    text: str


@dataclass(frozen=True)
class FieldDiff:
    label: str
    segments: list[Segment]


def words_diff(before: str, after: str) -> list[Segment]:
    """Segments turning `before` into `after`, by word (whitespace kept with the word before it)."""
    old, new = re.findall(r"\S+\s*", before), re.findall(r"\S+\s*", after)
    segments: list[Segment] = []
    for op, i1, i2, j1, j2 in SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if op == "equal":
            segments.append(Segment("same", "".join(old[i1:i2])))
            continue
        if i2 > i1:
            segments.append(Segment("removed", "".join(old[i1:i2])))
        if j2 > j1:
            segments.append(Segment("added", "".join(new[j1:j2])))
    return segments


def version_diffs(history: list[PetitionVersion]) -> dict[int, list[FieldDiff]]:
    """For each version after the first, what changed from the one before (unchanged fields left out)."""
    diffs: dict[int, list[FieldDiff]] = {}
    for previous, current in itertools.pairwise(history):
        changed = []
        for name, label in FIELDS:
            before, after = getattr(previous, name) or "", getattr(current, name) or ""
            if before != after:
                changed.append(FieldDiff(label=label, segments=words_diff(before, after)))
        diffs[current.number] = changed
    return diffs
