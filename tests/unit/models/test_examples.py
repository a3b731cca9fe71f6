"""Categories without a trained head: examples heads at load, light heads from labels, review of their tickets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.seeded import COUNTER, NEW, PARAPHRASE, SEEDS, UNRELATED, HashEncoder, seeded_policy_dict
from triage.models.base import Classifier
from triage.models.examples import (
    HeadsClassifier,
    LightHead,
    fit_examples_head,
    fit_light_head,
    head_status,
    seed_similarity,
    with_example_heads,
)
from triage.models.io import load_classifier
from triage.scorer import Scorer
from triage.taxonomy import Policy, parse_policy
from triage.tickets import Ticket


@pytest.fixture(scope="module")
def seeded() -> Policy:
    return parse_policy(seeded_policy_dict())


def test_a_counter_example_pulls_a_near_text_down() -> None:
    enc = HashEncoder()
    pos, neg = enc.encode(SEEDS), enc.encode(COUNTER)
    text = enc.encode(["authentic designer handbag with receipt from the official store"])
    assert seed_similarity(text, pos, neg)[0] < seed_similarity(text, pos)[0]


def test_examples_head_ranks_a_paraphrase_above_unrelated_texts_and_stays_conservative() -> None:
    enc = HashEncoder()
    head = fit_examples_head(NEW, enc.encode(SEEDS), enc.encode(COUNTER), enc.encode(UNRELATED))
    p_para, *p_unrelated = head.predict_proba(enc.encode([PARAPHRASE, *UNRELATED]))
    assert p_para >= head.threshold > max(p_unrelated)
    assert head.predict_proba(enc.encode(SEEDS)).max() <= 0.9  # never more sure than the cap, even on a seed


def test_with_example_heads_adds_a_column_for_each_seeded_category(tiny_classifier: Classifier,
                                                                   seeded: Policy, policy: Policy) -> None:
    enc = HashEncoder()
    extended = with_example_heads(tiny_classifier, seeded, enc)
    assert extended.card.categories == [*tiny_classifier.card.categories, NEW]
    assert head_status(extended.card)[NEW]["runs_on"] == "examples"
    assert head_status(extended.card)[NEW]["always_review"] is True
    pred = extended.predict([PARAPHRASE, UNRELATED[0]])
    base = tiny_classifier.predict([PARAPHRASE, UNRELATED[0]])
    np.testing.assert_allclose(pred.categories[:, :-1], base.categories)  # the trained heads are untouched
    assert pred.categories[0, -1] > pred.categories[1, -1]
    assert with_example_heads(tiny_classifier, policy, enc) is tiny_classifier  # no seeded category: as it was


def test_a_seeded_category_is_scored_and_its_positives_are_reviewed(tiny_classifier: Classifier,
                                                                   seeded: Policy) -> None:
    scorer = Scorer(with_example_heads(tiny_classifier, seeded, HashEncoder()), seeded)
    para, other = scorer.score([Ticket("a", PARAPHRASE), Ticket("b", UNRELATED[0])])
    assert para.scores.categories[NEW] > other.scores.categories[NEW]
    assert para.decision.route == "review"
    assert any(r.startswith(f"{NEW} runs on seed examples only") for r in para.decision.reasons)
    assert not any("runs on seed examples" in r for r in other.decision.reasons)


def test_light_head_fits_saves_and_loads_with_its_base(tiny_classifier: Classifier, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    enc = HashEncoder()
    texts = [*SEEDS, *UNRELATED, "my parcel arrived late", "how do I reset my password", "great service",
             "the app crashes on start", "please cancel my subscription", "where is my refund"]
    y = np.array([1] * len(SEEDS) + [0] * (len(texts) - len(SEEDS)))
    head = fit_light_head(NEW, enc.encode(texts), y, target_precision=0.99)
    assert head.n_labels == len(texts) and head.n_positives == len(SEEDS) and head.precision is not None
    model = HeadsClassifier(tiny_classifier, [head], enc)
    model.save(tmp_path / "m")
    monkeypatch.setattr("triage.encoder.get_encoder", lambda: enc)
    loaded = load_classifier(tmp_path / "m")
    assert isinstance(loaded, HeadsClassifier) and isinstance(loaded.heads[0], LightHead)
    assert loaded.card.categories == [*tiny_classifier.card.categories, NEW]
    assert head_status(loaded.card)[NEW]["runs_on"] == "light_head"
    np.testing.assert_allclose(loaded.predict([PARAPHRASE]).categories, model.predict([PARAPHRASE]).categories)
    assert loaded.predict([PARAPHRASE]).categories[0, -1] > loaded.predict([UNRELATED[1]]).categories[0, -1]


def test_light_head_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="needs positive and negative labels, got 3 of 3"):
        fit_light_head(NEW, np.eye(3), np.ones(3))


def test_light_head_takes_background_texts_as_weak_negatives() -> None:
    # positives at (1, 0), labelled negatives at (-1, 0); an ordinary text at (1, 3), on the positive side of x,
    # is called positive by the labels alone, and no longer once background texts like it join as negatives.
    x = np.array([[1.0, 0.0]] * 5 + [[-1.0, 0.0]] * 5)
    y = np.array([1] * 5 + [0] * 5)
    ordinary = np.array([[1.0, 3.0]])
    alone = fit_light_head(NEW, x, y, folds=0)
    background = np.tile(ordinary, (40, 1))
    with_bg = fit_light_head(NEW, x, y, folds=0, background=background, background_weight=0.5)
    assert alone.predict_proba(ordinary)[0] > 0.5 > with_bg.predict_proba(ordinary)[0]
    assert with_bg.n_labels == 10 and with_bg.n_positives == 5  # the background is not counted as labels
    assert with_bg.predict_proba(x[:1])[0] > with_bg.predict_proba(x[5:6])[0]
    np.testing.assert_allclose(fit_light_head(NEW, x, y, folds=0, background=background, background_weight=0.0).coef,
                               alone.coef)
    with pytest.raises(ValueError, match="background_weight"):
        fit_light_head(NEW, x, y, background=background, background_weight=2.0)
