"""Restore any saved classifier from its directory, by the kind its card names."""

from __future__ import annotations

from pathlib import Path

from triage.errors import ModelNotFoundError
from triage.models.base import MANIFEST, Classifier, ModelCard


def load_classifier(directory: str | Path, threads: int = 1) -> Classifier:
    """Load the classifier saved in `directory` (baseline, transformer or combined); `threads` = intra-op threads."""
    path = Path(directory)
    if not (path / MANIFEST).is_file():
        raise ModelNotFoundError(f"{path} holds no {MANIFEST}: not a saved triage classifier")
    card = ModelCard.read(path)
    if card.kind == "baseline":
        from triage.models.baseline import BaselineClassifier

        return BaselineClassifier.load(path)
    if card.kind == "transformer":
        from triage.models.transformer import TransformerClassifier

        return TransformerClassifier.load(path, threads=threads)
    if card.kind == "combined":
        from triage.models.combined import CombinedClassifier

        return CombinedClassifier.load(path, threads=threads)
    if card.kind == "heads":
        from triage.models.examples import HeadsClassifier

        return HeadsClassifier.load(path, threads=threads)
    if card.kind == "cascade":
        from triage.cascade import FAST, FULL, CascadeClassifier

        fast, full = load_classifier(path / FAST, threads), load_classifier(path / FULL, threads)
        return CascadeClassifier.load(path, fast, full)
    raise ModelNotFoundError(f"{path}: unknown classifier kind {card.kind!r}")
