"""Distillation: a cheap n-gram model whose scores follow a full model's (training.distill)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from training.baseline import BaselineParams
from training.distill import DistillParams, fit, teacher_targets
from triage.data.sources import load_examples
from triage.data.splits import split_examples
from triage.models.base import ModelCard, Prediction
from triage.models.io import load_classifier
from triage.taxonomy import Policy

LEVELS = ["none", "low", "medium", "high", "critical"]
MONEY = ("money", "paid", "pay", "payment", "account", "bank", "card", "prize", "free", "offer", "link", "click")


class KeywordTeacher:
    """A full model that calls a text fraud when it names money, and severe when it says 'kill' or 'hurt'."""

    def __init__(self) -> None:
        self.card = ModelCard("rules", ["fraud", "violence"], LEVELS, "default", "1", "x")

    def predict(self, texts: Sequence[str]) -> Prediction:
        lower = [t.lower() for t in texts]
        fraud = np.array([0.9 if any(w in t.split() for w in MONEY) else 0.05 for t in lower])
        violent = np.array([0.8 if ("kill" in t or "hurt" in t) else 0.02 for t in lower])
        calm, severe = np.array([0.8, 0.1, 0.05, 0.03, 0.02]), np.array([0.05, 0.05, 0.2, 0.5, 0.2])
        sev = np.where((violent > 0.5)[:, None], severe, calm)
        return Prediction(np.column_stack([fraud, violent]), sev)

    def save(self, directory: Path) -> None:
        self.card.write(directory)


def test_targets_are_the_logits_of_the_categories_then_of_severity_above_each_level() -> None:
    p = Prediction(np.array([[0.5, 1.0]]), np.array([[0.5, 0.2, 0.1, 0.1, 0.1]]))
    z = teacher_targets(p, clip=1e-3)
    above = np.array([0.5, 0.3, 0.2, 0.1])
    np.testing.assert_allclose(z[0], [0.0, np.log(0.999 / 0.001), *np.log(above / (1 - above))], atol=1e-9)


@pytest.fixture(scope="module")
def distilled(tmp_path_factory: pytest.TempPathFactory) -> tuple[KeywordTeacher, object, list[str]]:
    from triage.taxonomy import load_policy

    policy: Policy = load_policy()
    splits = split_examples(load_examples(policy))
    teacher = KeywordTeacher()
    params = DistillParams(alpha=0.3, features=BaselineParams(min_df=1, n_jobs=1))
    student = fit(teacher, splits["train"] + splits["test"], splits["validation"], policy, params)
    texts = [ex.text for ex in splits["validation"]]
    return teacher, student, texts


def test_the_student_ranks_texts_as_its_teacher_does_on_texts_it_never_saw(
        distilled: tuple[KeywordTeacher, object, list[str]]) -> None:
    teacher, student, texts = distilled
    want, got = teacher.predict(texts), student.predict(texts)  # type: ignore[attr-defined]
    assert student.card.categories == ["fraud", "violence"]  # type: ignore[attr-defined]
    assert student.card.extra["distilled_from"] == "rules"  # type: ignore[attr-defined]
    for j in range(2):
        assert roc_auc_score(want.categories[:, j] > 0.5, got.categories[:, j]) > 0.9
    severe = want.severity[:, 3:].sum(axis=1) > 0.5
    assert roc_auc_score(severe, got.severity[:, 3:].sum(axis=1)) > 0.9


def test_the_student_takes_the_fast_path_and_survives_a_save(
        distilled: tuple[KeywordTeacher, object, list[str]], tmp_path: Path) -> None:
    _, student, texts = distilled
    fast, reference = student.predict(texts), student.predict_reference(texts)  # type: ignore[attr-defined]
    np.testing.assert_allclose(fast.categories, reference.categories, atol=1e-6)
    np.testing.assert_allclose(fast.severity, reference.severity, atol=1e-6)
    student.save(tmp_path)  # type: ignore[attr-defined]
    again = load_classifier(tmp_path).predict(texts)
    np.testing.assert_allclose(again.categories, fast.categories, atol=1e-9)


def test_the_soft_logistic_student_also_follows_its_teacher() -> None:
    from triage.taxonomy import load_policy

    policy = load_policy()
    splits = split_examples(load_examples(policy))
    teacher = KeywordTeacher()
    params = DistillParams(loss="logistic", features=BaselineParams(min_df=1, n_jobs=2))
    student = fit(teacher, splits["train"], splits["validation"], policy, params)
    texts = [ex.text for ex in splits["test"]]
    want, got = teacher.predict(texts), student.predict(texts)
    for j in range(2):
        assert roc_auc_score(want.categories[:, j] > 0.5, got.categories[:, j]) > 0.9
    # Soft targets keep probabilities apart: texts the teacher scores 0.9 come out far above those it scores 0.05.
    fraud = want.categories[:, 0] > 0.5
    assert got.categories[fraud, 0].mean() > 3 * got.categories[~fraud, 0].mean()


def test_bad_parameters_are_refused() -> None:
    for bad in ({"alpha": 0.0}, {"clip": 0.5}, {"max_texts": -1}, {"loss": "hinge"}):
        with pytest.raises(ValueError):
            DistillParams(**bad)  # type: ignore[arg-type]
