"""The baseline's matrix-product request path gives scikit-learn's numbers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from triage.data.sources import load_examples
from triage.models import fast_linear
from triage.models.baseline import BaselineClassifier
from triage.models.fast_linear import NEVER, FastLinearHeads

TEXTS = [
    "I will find where you live and hurt you",
    "great stream today, thanks everyone!!",
    "Buy cheap followers now http://spam.example",
    "ÉCRIVEZ-MOI — naïve café 🙂 ünïcödé",
    "x",
    "??? !!! ...",  # no word token: only character n-grams
    "a" * 3000,
]


@pytest.fixture(scope="module")
def baseline(tiny_classifier: BaselineClassifier) -> BaselineClassifier:
    assert isinstance(tiny_classifier, BaselineClassifier)
    return tiny_classifier


def test_fast_path_equals_scikit_learn_to_1e_6(baseline: BaselineClassifier) -> None:
    texts = TEXTS + [ex.text for ex in load_examples()[:120]]
    fast, ref = baseline.predict(texts), baseline.predict_reference(texts)
    assert fast.categories.shape == ref.categories.shape == (len(texts), len(baseline.card.categories))
    assert fast.severity.shape == ref.severity.shape == (len(texts), len(baseline.card.severity_levels))
    np.testing.assert_allclose(fast.categories, ref.categories, rtol=0, atol=1e-6)
    np.testing.assert_allclose(fast.severity, ref.severity, rtol=0, atol=1e-6)


def test_one_text_alone_scores_as_in_a_batch(baseline: BaselineClassifier) -> None:
    batch = baseline.predict(TEXTS)
    for i, text in enumerate(TEXTS):
        alone = baseline.predict([text])
        np.testing.assert_allclose(alone.categories[0], batch.categories[i], rtol=0, atol=1e-12)
        np.testing.assert_allclose(alone.severity[0], batch.severity[i], rtol=0, atol=1e-12)


def test_features_equal_the_feature_union(baseline: BaselineClassifier) -> None:
    ours = baseline.fast.features(TEXTS)
    theirs = baseline.features.transform(TEXTS)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours.toarray(), theirs.toarray(), rtol=0, atol=1e-6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(alphabet=st.sampled_from(list("abcdeghilnorstuyv ΣσςΟΔé\t\n\u00a0\u3000.!1")), max_size=40),
                min_size=1, max_size=4))
def test_features_equal_the_feature_union_for_any_text(baseline: BaselineClassifier, texts: list[str]) -> None:
    ours = baseline.fast.features(texts)
    theirs = baseline.features.transform(texts)
    np.testing.assert_allclose(ours.toarray(), theirs.toarray(), rtol=0, atol=1e-6)


def test_remembered_words_give_the_same_features_and_the_memory_is_bounded(
        baseline: BaselineClassifier, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fast_linear, "WORD_CACHE_SIZE", 5)
    heads = FastLinearHeads(baseline.features, baseline.category_models, baseline.severity_models,
                            baseline.calibrations, baseline.severity_temperature)
    first = heads.features(TEXTS).toarray()  # every word new
    again = heads.features(TEXTS).toarray()  # the last ones remembered
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first, baseline.features.transform(TEXTS).toarray(), rtol=0, atol=1e-6)
    assert all(len(b.cache) <= 5 for b in heads._blocks)
    assert any(b.cache for b in heads._blocks)  # the character block remembers words


def test_text_with_no_known_ngram_gets_the_intercepts(baseline: BaselineClassifier) -> None:
    z = baseline.fast.logits(["\u4e00\u4e01"])  # CJK characters the English examples never contain
    np.testing.assert_allclose(z[0], baseline.fast.bias)


def test_missing_severity_cut_point_is_never_passed(baseline: BaselineClassifier) -> None:
    heads = FastLinearHeads(baseline.features, baseline.category_models, [*baseline.severity_models[:-1], None],
                            baseline.calibrations, baseline.severity_temperature)
    z = heads.logits(TEXTS)
    assert np.all(z[:, -1] == NEVER)
    _, sev = heads.probabilities(TEXTS)
    assert np.all(sev[:, -1] < 1e-12)  # the top level is unreachable without its cut-point
    np.testing.assert_allclose(sev.sum(axis=1), 1.0)


def test_empty_batch(baseline: BaselineClassifier) -> None:
    cats, sev = baseline.fast.probabilities([])
    assert cats.shape == (0, len(baseline.card.categories))
    assert sev.shape == (0, len(baseline.card.severity_levels))


def test_fast_path_normalises_and_windows_like_the_reference(baseline: BaselineClassifier) -> None:
    """A card with normalisation and windows: the fast path scores the same normalised windows as scikit-learn."""
    import copy

    windowed = copy.copy(baseline)
    windowed.card = copy.deepcopy(baseline.card)
    windowed.card.extra = {**baseline.card.extra, "normalize": True,
                           "windows": {"size": 8, "stride": 4, "max_windows": 16}}
    long = " ".join(["thanks for the lovely stream today"] * 6 + ["I will find where you live and hurt you"])
    texts = [*TEXTS, long, "ＦＲＥＥ　ｍｏｎｅｙ ｃｌｉｃｋ ｎｏｗ", "k\u200bi\u200bl\u200bl you"]
    fast, ref = windowed.predict(texts), windowed.predict_reference(texts)
    np.testing.assert_allclose(fast.categories, ref.categories, rtol=0, atol=1e-6)
    np.testing.assert_allclose(fast.severity, ref.severity, rtol=0, atol=1e-6)
    # The windows matter here: the long text scored whole gives other numbers.
    whole = baseline.predict([long])
    assert not np.allclose(whole.categories[0], fast.categories[len(TEXTS)], atol=1e-6)
