"""Pieces of the combined model's fit: encoder row sampling, the per-head stacker, cross-fitting, parameters."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit

from training.combined import CombinedParams, cross_fitted, encoder_rows, fit_stacker


def _labels(n: int, rates: list[float], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((n, len(rates))) < np.array(rates)).astype(np.float64)


# ------------------------------------------------------------------------------------------------- encoder_rows


def test_all_rows_when_under_the_limit() -> None:
    y = _labels(50, [0.5, 0.1])
    assert encoder_rows(y, limit=100, keep_positives=10, seed=1).tolist() == list(range(50))


def test_rare_positives_are_kept_and_the_limit_respected() -> None:
    # Column 0 is common (about 3,000 positives), column 1 rare (about 60): every rare positive stays.
    y = _labels(6000, [0.5, 0.01])
    y[:10, 0] = np.nan  # unknown labels are neither positive nor negative
    rows = encoder_rows(y, limit=1000, keep_positives=500, seed=7)
    assert len(rows) == 1000
    assert len(set(rows.tolist())) == 1000 and rows.tolist() == sorted(rows.tolist())
    rare = np.flatnonzero(y[:, 1] == 1)
    assert set(rare.tolist()) <= set(rows.tolist())
    # Seeded: the same rows every time, other rows with another seed.
    assert np.array_equal(rows, encoder_rows(y, 1000, 500, seed=7))
    assert not np.array_equal(rows, encoder_rows(y, 1000, 500, seed=8))


def test_more_rare_positives_than_the_limit_are_all_kept() -> None:
    y = _labels(3000, [0.2, 0.2])
    rows = encoder_rows(y, limit=200, keep_positives=10_000, seed=0)
    assert set(rows.tolist()) == set(np.flatnonzero((y == 1).any(axis=1)).tolist())


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 400), st.integers(1, 300), st.integers(0, 50), st.integers(0, 5))
def test_encoder_rows_properties(n: int, limit: int, keep: int, seed: int) -> None:
    y = _labels(n, [0.3, 0.05, 0.01], seed=seed)
    rows = encoder_rows(y, limit, keep, seed)
    positives = np.nansum(y, axis=0)
    rare = np.flatnonzero((y[:, positives < keep] == 1).any(axis=1)) if n > limit else np.arange(0)
    assert len(rows) <= max(limit, len(rare))
    assert set(rare.tolist()) <= set(rows.tolist())
    assert len(np.unique(rows)) == len(rows) and np.all((rows >= 0) & (rows < n))


# --------------------------------------------------------------------------------------------------- the stacker


def _views(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two heads; the encoder view informative on head 0, the n-gram view on head 1; the other view is noise."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 2)) < 0.4).astype(np.float64)
    signal = 2 * (y - 0.5)
    noise = rng.normal(0, 1, (n, 2))
    zt = np.column_stack([noise[:, 0], signal[:, 1] + rng.normal(0, 1, n)])
    ze = np.column_stack([signal[:, 0] + rng.normal(0, 1, n), noise[:, 1]])
    return zt, ze, y


def test_stacker_weights_the_view_that_knows() -> None:
    zt, ze, y = _views(600)
    stacker = fit_stacker(zt, ze, y, minimum=10)
    assert stacker.b[0] > 4 * abs(stacker.a[0])  # head 0: the encoder
    assert stacker.a[1] > 4 * abs(stacker.b[1])  # head 1: the n-grams
    p = expit(stacker(zt, ze))
    assert np.mean((p > 0.5) == (y == 1)) > 0.75


def test_stacker_falls_back_to_the_mean_with_few_labels() -> None:
    zt, ze, y = _views(200)
    y[:, 0] = np.nan
    y[:5, 0] = [1, 1, 0, 0, 0]  # 2 positives, 3 negatives known: fewer than the minimum
    y[:, 1] = 0.0  # no positive at all
    stacker = fit_stacker(zt, ze, y, minimum=10)
    assert (stacker.a.tolist(), stacker.b.tolist(), stacker.c.tolist()) == ([0.5, 0.5], [0.5, 0.5], [0.0, 0.0])
    # A minimum of 0 must not try to fit a single class.
    single = fit_stacker(zt, ze, np.zeros_like(y), minimum=0)
    assert single.a.tolist() == [0.5, 0.5]


def test_a_head_without_an_encoder_model_keeps_the_ngram_logit() -> None:
    zt, ze, y = _views(300)
    ze[:, 1] = 0.0  # LinearHeads.from_models(never=0.0): no encoder model for this head
    stacker = fit_stacker(zt, ze, y, minimum=10)
    assert (stacker.a[1], stacker.b[1], stacker.c[1]) == (1.0, 0.0, 0.0)
    np.testing.assert_allclose(stacker(zt, ze)[:, 1], zt[:, 1])


def test_cross_fitted_scores_every_row_out_of_fold() -> None:
    zt, ze, y = _views(400)
    oof = cross_fitted(zt, ze, y, minimum=10, folds=3, seed=5)
    assert oof.shape == (400, 2)
    assert np.all((oof > 0) & (oof < 1))
    np.testing.assert_array_equal(oof, cross_fitted(zt, ze, y, minimum=10, folds=3, seed=5))
    # Out of fold, yet close to the in-sample stack on this much data.
    full = expit(fit_stacker(zt, ze, y, 10)(zt, ze))
    assert np.mean(np.abs(oof - full)) < 0.05
    assert not np.allclose(oof, full)


# ---------------------------------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"encoder_C": 0.0}, "encoder_C"),
        ({"encoder_severity_C": -1.0}, "encoder_C and encoder_severity_C"),
        ({"encoder_max_length": 8}, "encoder_max_length"),
        ({"encoder_max_length": 1024}, "encoder_max_length"),
        ({"window_size": 10, "window_stride": 11}, "window_stride"),
        ({"window_stride": 0}, "window_stride"),
        ({"max_windows": 0}, "max_windows"),
        ({"encoder_max_train": 99}, "encoder_max_train"),
        ({"stack_folds": 1}, "stack_folds"),
        ({"C": 0.0}, "C and severity_C"),  # the n-gram view's checks still run
    ],
)
def test_bad_parameters_are_refused_with_their_name(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CombinedParams(**kwargs)  # type: ignore[arg-type]


def test_defaults_are_valid_and_logged_whole() -> None:
    params = CombinedParams()
    logged = params.as_dict()
    assert logged["window_size"] == 96 and logged["encoder_max_train"] == 40_000 and logged["C"] == 4.0
