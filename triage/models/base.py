"""What every classifier offers the rest of the product: calibrated probabilities for texts."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

MANIFEST = "classifier.json"


@dataclass(frozen=True)
class Prediction:
    """Model output for n texts: category probabilities (n, C) and severity probabilities (n, L)."""

    categories: np.ndarray
    severity: np.ndarray
    # Which model of a cascade scored each row ('fast' or 'full'); None for a single model.
    paths: np.ndarray | None = None


@dataclass
class ModelCard:
    """What a saved classifier says about itself (written next to its weights as classifier.json)."""

    kind: str
    categories: list[str]
    severity_levels: list[str]
    policy_name: str
    policy_version: str
    policy_digest: str
    thresholds: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def write(self, directory: Path) -> None:
        """Write the card as JSON into `directory`."""
        (directory / MANIFEST).write_text(json.dumps(self.__dict__, indent=2, sort_keys=True))

    @classmethod
    def read(cls, directory: Path) -> ModelCard:
        """Read the card a classifier saved into `directory`."""
        return cls(**json.loads((directory / MANIFEST).read_text()))


@runtime_checkable
class Classifier(Protocol):
    """A trained model: `predict` returns calibrated probabilities in the order of `card`'s names."""

    card: ModelCard

    def predict(self, texts: Sequence[str]) -> Prediction:
        """Probabilities for each text; categories in card.categories order, severity in card.severity_levels."""
        ...

    def save(self, directory: Path) -> None:
        """Write weights and card into `directory` so `load_classifier` can restore it."""
        ...


@dataclass(frozen=True)
class LoadedModel:
    """A classifier restored from the registry, with where it came from."""

    classifier: Classifier
    name: str
    version: str
    alias: str
    run_id: str | None
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class WindowSpec:
    """How a model cuts long texts into word windows (see triage.text.windows); stored on the card."""

    size: int = 96
    stride: int = 64
    max_windows: int = 16

    def to_dict(self) -> dict[str, int]:
        """JSON-ready record for the card."""
        return {"size": self.size, "stride": self.stride, "max_windows": self.max_windows}

    @classmethod
    def from_card(cls, extra: Mapping[str, Any]) -> WindowSpec | None:
        """The card's window spec, or None for a model that reads each text whole."""
        raw = extra.get("windows")
        return cls(**raw) if raw else None


def most_severe_window(predict: Callable[[Sequence[str]], Prediction], texts: Sequence[str],
                       spec: WindowSpec) -> Prediction:
    """Score every window of every text and keep, per text, the highest probability per category and the severity
    distribution of its most severe window (highest expected severity rank).

    Texts of at most `spec.size` words are one window, so short tickets cost what they did before.
    """
    from triage.text import windows

    pieces: list[str] = []
    owner: list[int] = []
    for i, text in enumerate(texts):
        for piece in windows(text, spec.size, spec.stride, spec.max_windows):
            pieces.append(piece)
            owner.append(i)
    if len(pieces) == len(texts):
        return predict(pieces)
    raw = predict(pieces)
    idx = np.asarray(owner)
    n = len(texts)
    cats = np.full((n, raw.categories.shape[1]), -np.inf)
    np.maximum.at(cats, idx, raw.categories)
    rank = raw.severity @ np.arange(raw.severity.shape[1]) if raw.severity.size else np.zeros(len(pieces))
    best = np.full(n, -np.inf)
    np.maximum.at(best, idx, rank)
    # The first window of each text reaching its text's highest expected severity.
    chosen = np.zeros(n, dtype=np.int64)
    for k in range(len(pieces) - 1, -1, -1):
        if rank[k] == best[idx[k]]:
            chosen[idx[k]] = k
    return Prediction(categories=cats, severity=raw.severity[chosen])


def predict_in_batches(model: Classifier, texts: Sequence[str], batch: int = 256,
                       progress: Callable[[int, int], None] | None = None) -> Prediction:
    """One prediction for many texts, in calls of `batch` (bounded memory; paths kept when the model gives them);
    `progress(done, total)` after each call."""
    parts = []
    for i in range(0, len(texts), batch):
        parts.append(model.predict(texts[i:i + batch]))
        if progress is not None:
            progress(min(i + batch, len(texts)), len(texts))
    if not parts:
        return Prediction(np.zeros((0, len(model.card.categories))), np.zeros((0, len(model.card.severity_levels))))
    paths = [p.paths for p in parts]
    return Prediction(np.concatenate([p.categories for p in parts]), np.concatenate([p.severity for p in parts]),
                      paths=np.concatenate(paths) if all(p is not None for p in paths) else None)  # type: ignore[arg-type]
