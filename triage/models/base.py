"""What every classifier offers the rest of the product: calibrated probabilities for texts."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
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
