"""Deterministic train/validation/test splits by a stable hash of the normalised text."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Literal

from triage.data.schema import Example

Split = Literal["train", "validation", "test"]
SPLITS: tuple[Split, ...] = ("train", "validation", "test")
# Sources that only evaluate (synthetic or counterfactual sets; see docs/datasets.md): never in train or validation.
EVALUATION_ONLY_SOURCES: frozenset[str] = frozenset({"jigsaw_identity_templates"})
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Case-folded, NFKC, whitespace-collapsed text: exact duplicates up to case and spacing become equal."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


def text_key(text: str) -> str:
    """Stable identity of a text across runs, machines and Python versions."""
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()


def split_of(text: str, validation: float = 0.1, test: float = 0.1) -> Split:
    """The split a text belongs to; the same normalised text always lands in the same split."""
    bucket = int(text_key(text)[:8], 16) / 0xFFFFFFFF
    if bucket < test:
        return "test"
    if bucket < test + validation:
        return "validation"
    return "train"


def split_examples(examples: Iterable[Example]) -> dict[Split, list[Example]]:
    """Partition examples into the three splits by `split_of`.

    Examples of an evaluation-only source go to test whatever their hash, and so does any other example with the
    same normalised text, so a text that evaluates is never trained on.
    """
    items = list(examples)
    held_out = {text_key(ex.text) for ex in items if ex.source in EVALUATION_ONLY_SOURCES}
    out: dict[Split, list[Example]] = {s: [] for s in SPLITS}
    for ex in items:
        if held_out and (ex.source in EVALUATION_ONLY_SOURCES or text_key(ex.text) in held_out):
            out["test"].append(ex)
        else:
            out[split_of(ex.text)].append(ex)
    return out


def data_hash(examples: Sequence[Example]) -> str:
    """Hash of a training set's texts and labels, recorded with every run for reproducibility."""
    h = hashlib.sha256()
    for ex in examples:
        h.update(text_key(ex.text).encode())
        h.update(repr(sorted(ex.labels.items())).encode())
        h.update((ex.severity or "?").encode())
        h.update(f"{ex.weight:.4f}".encode())
    return h.hexdigest()[:16]
