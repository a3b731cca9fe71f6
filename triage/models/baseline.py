"""The baseline classifier: TF-IDF word and character n-grams with linear models per head."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.pipeline import FeatureUnion

from triage.calibration import SigmoidCalibration, apply_sigmoid_calibration, ordinal_probabilities
from triage.models.base import ModelCard, Prediction, WindowSpec, most_severe_window
from triage.models.fast_linear import NEVER, FastLinearHeads
from triage.text import normalize_all

WEIGHTS = "baseline.joblib"


def category_logits(models: Sequence[Any], x: Any) -> np.ndarray:
    """Raw decision values (n, C) of the per-category linear models."""
    if not models:
        return np.zeros((x.shape[0], 0))
    return np.column_stack([m.decision_function(x) for m in models])


def cumulative_logits(models: Sequence[Any | None], x: Any) -> np.ndarray:
    """Logits (n, L-1) of P(severity > k), one binary model per cut-point (Frank & Hall ordinal scheme)."""
    cols = [m.decision_function(x) if m is not None else np.full(x.shape[0], NEVER) for m in models]
    return np.column_stack(cols) if cols else np.zeros((x.shape[0], 0))


@dataclass(frozen=True)
class LinearHead:
    """A fitted linear head outside scikit-learn (e.g. regressed on a teacher's logits): `coef_` (1, F) and
    `intercept_` (1,), scored like a logistic regression's decision function."""

    coef_: np.ndarray
    intercept_: np.ndarray

    def decision_function(self, x: Any) -> np.ndarray:
        """Logits (n,) for features (n, F)."""
        return np.asarray(x @ self.coef_.ravel() + float(self.intercept_[0]), dtype=np.float64).ravel()


class BaselineClassifier:
    """Calibrated per-category logistic regressions and an ordinal severity model over shared TF-IDF features."""

    def __init__(
        self,
        features: FeatureUnion,
        category_models: list[Any],
        calibrations: list[SigmoidCalibration],
        severity_models: list[Any | None],
        severity_temperature: float,
        card: ModelCard,
    ) -> None:
        self.features = features
        self.category_models = category_models
        self.calibrations = calibrations
        self.severity_models = severity_models
        self.severity_temperature = severity_temperature
        self.card = card
        # The request path: every head stacked into one matrix product (same numbers as predict_reference).
        self.fast = FastLinearHeads(features, category_models, severity_models, calibrations, severity_temperature)

    def predict(self, texts: Sequence[str]) -> Prediction:
        """Calibrated probabilities (n, C) for card.categories and (n, L) for card.severity_levels.

        A model trained on normalised text (card.extra["normalize"]) sees normalised text here too; with a window
        spec on its card, long texts are scored by their most severe window. Each text (or window) goes through the
        fast path: every head stacked into one matrix product.
        """
        return self._windowed(self._fast_text, texts)

    def predict_reference(self, texts: Sequence[str]) -> Prediction:
        """The same probabilities through scikit-learn's estimators, one call per head (slow; for checks), with the
        same normalisation and windows as `predict`."""
        return self._windowed(self._reference_text, texts)

    def _windowed(self, score: Callable[[Sequence[str]], Prediction], texts: Sequence[str]) -> Prediction:
        if self.card.extra.get("normalize"):
            texts = normalize_all(texts)
        spec = WindowSpec.from_card(self.card.extra)
        if spec is not None:
            return most_severe_window(score, texts, spec)
        return score(texts)

    def _fast_text(self, texts: Sequence[str]) -> Prediction:
        cats, sev = self.fast.probabilities(texts)
        return Prediction(categories=cats, severity=sev)

    def _reference_text(self, texts: Sequence[str]) -> Prediction:
        x = self.features.transform(list(texts))
        cats = apply_sigmoid_calibration(category_logits(self.category_models, x), self.calibrations)
        sev = ordinal_probabilities(cumulative_logits(self.severity_models, x), self.severity_temperature)
        return Prediction(categories=cats, severity=sev)

    def save(self, directory: Path) -> None:
        """Write the fitted models and the card into `directory`."""
        directory.mkdir(parents=True, exist_ok=True)
        joblib.dump(
            {"features": self.features, "categories": self.category_models, "calibrations": self.calibrations,
             "severity": self.severity_models, "severity_temperature": self.severity_temperature},
            directory / WEIGHTS,
            compress=3,
        )
        self.card.write(directory)

    @classmethod
    def load(cls, directory: Path) -> BaselineClassifier:
        """Restore a classifier written by `save`."""
        p = joblib.load(directory / WEIGHTS)
        return cls(p["features"], p["categories"], p["calibrations"], p["severity"], p["severity_temperature"],
                   ModelCard.read(directory))
