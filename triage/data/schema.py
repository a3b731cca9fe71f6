"""The one example schema every data source is read into."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Example:
    """A labelled text.

    `labels` holds only what the source knows: 1 = the category applies, 0 = it does not; a category
    missing from the mapping is *unknown* (the source says nothing about it), which is not negative.
    `severity` is None when the source says nothing about severity.
    """

    text: str
    labels: Mapping[str, int]
    severity: str | None
    source: str
    language: str = "en"
    weight: float = 1.0
    meta: Mapping[str, str] = field(default_factory=dict)


def label_matrix(examples: Sequence[Example], categories: Sequence[str]) -> np.ndarray:
    """Category labels as a float matrix of shape (n, C): 1.0, 0.0, or NaN where unknown."""
    y = np.full((len(examples), len(categories)), np.nan, dtype=np.float32)
    index = {c: j for j, c in enumerate(categories)}
    for i, ex in enumerate(examples):
        for name, value in ex.labels.items():
            j = index.get(name)
            if j is not None:
                y[i, j] = float(value)
    return y


def severity_vector(examples: Sequence[Example], levels: Sequence[str]) -> np.ndarray:
    """Severity as level indices of shape (n,), -1 where unknown."""
    index = {s: k for k, s in enumerate(levels)}
    return np.array([index.get(ex.severity, -1) if ex.severity else -1 for ex in examples], dtype=np.int64)
