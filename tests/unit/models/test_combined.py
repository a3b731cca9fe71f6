"""The combined model: its linear heads and severity levels, and (slow) a real fit with the MiniLM encoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.linear_model import LogisticRegression

from triage.data.sources import load_examples
from triage.models.base import WindowSpec
from triage.models.combined import CombinedClassifier, LinearHeads, cumulative_to_levels
from triage.taxonomy import Policy
from triage.text import normalize, windows

# --------------------------------------------------------------------------------------------------- LinearHeads


@pytest.mark.parametrize("sparse", [False, True])
def test_linear_heads_equal_sklearn_decision_function(sparse: bool) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 30)).astype(np.float32)
    x[x < 0.5] = 0.0
    ys = [(x[:, k] + rng.normal(0, 0.3, 200) > 0.4).astype(int) for k in range(3)]
    models = [LogisticRegression(C=1.0, max_iter=500).fit(x, y) for y in ys]
    heads = LinearHeads.from_models([models[0], None, models[1], models[2]], n_features=30)
    features = sp.csr_matrix(x) if sparse else x
    got = heads(features)
    assert got.shape == (200, 4) and got.dtype == np.float64
    for col, m in zip([0, 2, 3], models, strict=True):
        np.testing.assert_allclose(got[:, col], m.decision_function(x), rtol=1e-4, atol=1e-4)
    # A head no row reached says 'never': logit -30 for every text.
    np.testing.assert_array_equal(got[:, 1], -30.0)
    assert np.all(LinearHeads.from_models([None], 30, never=0.0)(x) == 0.0)


# ---------------------------------------------------------------------------------------- cumulative_to_levels


def test_cumulative_to_levels_worked_examples() -> None:
    got = cumulative_to_levels(np.array([[0.8, 0.5, 0.2, 0.1], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]))
    np.testing.assert_allclose(got[0], [0.2, 0.3, 0.3, 0.1, 0.1])
    np.testing.assert_allclose(got[1], [1, 0, 0, 0, 0])
    np.testing.assert_allclose(got[2], [0, 0, 0, 0, 1])
    # A cut-point above the one before it is capped: P(> 1) can not exceed P(> 0).
    np.testing.assert_allclose(cumulative_to_levels(np.array([[0.3, 0.6]])), [[0.7, 0.0, 0.3]])


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 8), st.integers(1, 6)), elements=st.floats(-0.5, 1.5)))
def test_cumulative_to_levels_gives_distributions(cumulative: np.ndarray) -> None:
    levels = cumulative_to_levels(cumulative)
    assert levels.shape == (cumulative.shape[0], cumulative.shape[1] + 1)
    assert np.all(levels >= 0)
    np.testing.assert_allclose(levels.sum(axis=1), 1.0)
    # Where the input is already a valid non-increasing P(severity > k), it is recovered exactly.
    s = np.minimum.accumulate(np.clip(cumulative, 0, 1), axis=1)
    np.testing.assert_allclose(1 - np.cumsum(levels, axis=1)[:, :-1], s, atol=1e-9)


# ---------------------------------------------------------------------------------- slow: a real combined model


@pytest.fixture(scope="module")
def combined_model(policy: Policy, tmp_path_factory: pytest.TempPathFactory) -> CombinedClassifier:
    """The combined model fitted on the shipped example tickets with the real int8 MiniLM encoder (~20 s)."""
    from training.combined import CombinedParams, fit
    from triage.data.splits import split_examples

    splits = split_examples(load_examples())
    params = CombinedParams(second_view="encoder", min_df=1, n_jobs=1, encoder_max_train=100, encoder_keep_positives=5,
                            window_size=24, window_stride=16, max_windows=4,
                            embedding_cache=str(tmp_path_factory.mktemp("embeddings")))
    return fit(splits["train"], splits["validation"], policy, params)


TEXTS = [
    "I know where you live and I will hurt you",
    "Thanks for the quick delivery, the parcel arrived on time.",
    "CLAIM YOUR FREE PRIZE NOW!!! click http://win.example.com",
    "I w1ll k i l l y0u",
    " ".join(["The meeting notes are attached and the schedule is unchanged."] * 12) + " I will kill you tonight.",
    "こんにちは、荷物は届きましたか？",
]


@pytest.mark.slow
def test_combined_model_predicts_probabilities_and_severity_distributions(combined_model: CombinedClassifier,
                                                                           policy: Policy) -> None:
    pred = combined_model.predict(TEXTS)
    card = combined_model.card
    assert pred.categories.shape == (len(TEXTS), len(card.categories))
    assert pred.severity.shape == (len(TEXTS), len(policy.severity_names))
    assert np.all((pred.categories >= 0) & (pred.categories <= 1))
    assert np.all(pred.severity >= 0)
    np.testing.assert_allclose(pred.severity.sum(axis=1), 1.0, atol=1e-6)
    # The obfuscated threat is read as the plain one (normalised before both views; scored alone, see below).
    obfuscated, plain = combined_model.predict(["I w1ll k i l l y0u"]), combined_model.predict(["I will kill you"])
    np.testing.assert_array_equal(obfuscated.categories, plain.categories)
    # The long text is scored by its windows (the last one holding the threat): per category, their maximum.
    pieces = windows(normalize(TEXTS[4]), 24, 16, 4)
    assert len(pieces) == 4 and pieces[-1].endswith("i will kill you tonight.")
    by_window = combined_model._predict_normalised(pieces)
    np.testing.assert_array_equal(combined_model.predict(TEXTS[4:5]).categories[0], by_window.categories.max(axis=0))


@pytest.mark.slow
def test_combined_card_carries_both_guarantees_and_the_windows(combined_model: CombinedClassifier,
                                                               policy: Policy) -> None:
    extra = combined_model.card.extra
    assert combined_model.card.kind == "combined"
    assert extra["windows"] == {"size": 24, "stride": 16, "max_windows": 4}
    assert set(extra["operating_points"]) == set(combined_model.card.categories)
    assert set(extra["clear_points"]) == set(combined_model.card.categories)
    for name, point in extra["clear_points"].items():
        assert point["max_miss"] == policy.category(name).max_auto_clear_miss
        assert 0.0 <= point["threshold"] <= 1.0
    assert extra["severity_guard"]["category"] == "severity>=high"
    assert extra["normalize"] is True


@pytest.mark.slow
def test_combined_model_save_load_round_trip(combined_model: CombinedClassifier, tmp_path: Path,
                                             policy: Policy) -> None:
    from triage.conformal import clear_points_from_card
    from triage.models.io import load_classifier
    from triage.scorer import Scorer
    from triage.tickets import Ticket

    combined_model.save(tmp_path / "model")
    restored = CombinedClassifier.load(tmp_path / "model")
    before, after = combined_model.predict(TEXTS), restored.predict(TEXTS)
    np.testing.assert_array_equal(before.categories, after.categories)
    np.testing.assert_array_equal(before.severity, after.severity)
    assert restored.card == combined_model.card
    assert restored.windows == combined_model.windows == WindowSpec(24, 16, 4)
    # The generic loader knows the kind, and the scorer routes with the card's clear points.
    generic = load_classifier(tmp_path / "model")
    np.testing.assert_array_equal(generic.predict(TEXTS).categories, before.categories)
    assert clear_points_from_card(restored.card.extra)
    scored = Scorer(restored, policy).score([Ticket(id=str(i), text=t) for i, t in enumerate(TEXTS)])
    assert all(s.decision.route in ("auto", "review") for s in scored)
    restored.card.kind = "baseline"
    restored.card.write(tmp_path / "model")
    with pytest.raises(ValueError, match="not 'combined'"):
        CombinedClassifier.load(tmp_path / "model")


@pytest.mark.slow
def test_a_tickets_scores_do_not_depend_on_its_batch(combined_model: CombinedClassifier) -> None:
    alone = combined_model.predict(TEXTS[:1]).categories[0]
    batched = combined_model.predict(TEXTS).categories[0]
    np.testing.assert_allclose(alone, batched, atol=1e-4)


# ------------------------------------------------------------------- slow: the fine-tuned transformer as second view

TINY_TRANSFORMER = {"max_length": 24, "batch_size": 8, "epochs": 1, "max_steps": 3, "max_train_examples": None,
                    "max_eval_examples": 16, "min_category_positives": 2, "calibration_min_positives": 3,
                    "min_true_positives": 1, "parity_examples": 8, "eval_batch_size": 16, "seed": 3}


@pytest.fixture(scope="module")
def stacked_on_transformer(policy: Policy) -> CombinedClassifier:
    """A combined model whose second view is a transformer fine-tuned (a few steps) inside the same fit."""
    from training.combined import CombinedParams, fit
    from triage.data.splits import split_examples

    splits = split_examples(load_examples())
    params = CombinedParams(min_df=1, n_jobs=1, window_size=24, window_stride=16, max_windows=4,
                            transformer=TINY_TRANSFORMER)
    return fit(splits["train"], splits["validation"], policy, params)


@pytest.mark.slow
def test_transformer_view_stacks_and_round_trips(stacked_on_transformer: CombinedClassifier, tmp_path: Path,
                                                 policy: Policy) -> None:
    from triage.models.combined import TransformerView
    from triage.models.io import load_classifier

    model = stacked_on_transformer
    assert isinstance(model.view, TransformerView) and model.card.extra["second_view"] == "transformer"
    assert set(model.card.extra["stacker"]) == {"ngrams", "transformer"}
    # The view's logits are the transformer's own calibrated probabilities, in the combined model's head order.
    texts = [normalize(t) for t in TEXTS]
    z = model.view.logits(texts)
    own = model.view.model.predict(texts)
    for k, name in enumerate(model.card.categories):
        if name in model.view.model.card.categories:
            j = model.view.model.card.categories.index(name)
            np.testing.assert_allclose(1 / (1 + np.exp(-z[:, k])), np.clip(own.categories[:, j], 1e-6, 1 - 1e-6),
                                       rtol=1e-6)
        else:
            assert np.all(z[:, k] == 0.0)  # no transformer head: the stacker leans on n-grams alone
    above_none = 1 / (1 + np.exp(-z[:, len(model.card.categories)]))
    np.testing.assert_allclose(above_none, np.clip(1 - own.severity[:, 0], 1e-6, 1 - 1e-6), rtol=1e-6)
    pred = model.predict(TEXTS)
    assert pred.categories.shape == (len(TEXTS), len(model.card.categories))
    np.testing.assert_allclose(pred.severity.sum(axis=1), 1.0, atol=1e-6)
    model.save(tmp_path / "model")
    restored = load_classifier(tmp_path / "model")
    assert isinstance(restored, CombinedClassifier) and isinstance(restored.view, TransformerView)
    after = restored.predict(TEXTS)
    np.testing.assert_allclose(after.categories, pred.categories, atol=1e-6)
    np.testing.assert_allclose(after.severity, pred.severity, atol=1e-6)


def test_combined_params_name_a_known_second_view() -> None:
    from training.combined import CombinedParams

    with pytest.raises(ValueError, match="second_view"):
        CombinedParams(second_view="bert")
    with pytest.raises(ValueError, match="transformer_dir"):
        CombinedParams(second_view="encoder", transformer_dir="/models/transformer")
