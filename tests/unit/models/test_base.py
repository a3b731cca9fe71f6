"""Most-severe-window scoring of long texts, with a fake model whose answers depend on the words it reads."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triage.models.base import Prediction, WindowSpec, most_severe_window

LEVELS = 5  # none, low, medium, high, critical


class FakeModel:
    """Category 0 = violence ('hurt'), category 1 = spam ('prize'); severity from the worst word seen.

    Records every batch it is called with, so tests can count windows and calls.
    """

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: Sequence[str]) -> Prediction:
        self.calls.append(list(texts))
        cats = np.array([[0.9 if "hurt" in t.split() else 0.05, 0.8 if "prize" in t.split() else 0.1] for t in texts])
        sev = np.zeros((len(texts), LEVELS))
        for i, t in enumerate(texts):
            words = t.split()
            level = 4 if "hurt" in words else 1 if "prize" in words else 0
            sev[i, level] = 0.7
            sev[i, 0 if level else 1] += 0.3
        return Prediction(categories=cats.reshape(len(texts), 2), severity=sev)


def _benign(n: int) -> str:
    return " ".join(f"word{i}" for i in range(n))


def test_a_threat_at_the_end_of_a_long_benign_text_is_found() -> None:
    model = FakeModel()
    text = _benign(500) + " and then I will hurt you"
    got = most_severe_window(model, [text], WindowSpec(size=32, stride=16, max_windows=8))
    assert got.categories.shape == (1, 2) and got.severity.shape == (1, LEVELS)
    assert got.categories[0, 0] == pytest.approx(0.9)
    assert int(np.argmax(got.severity[0])) == 4  # critical, from the window holding the threat
    # Read whole, the same text would be truncated before the threat by a model that reads 32 words.
    assert model([" ".join(text.split()[:32])]).categories[0, 0] == pytest.approx(0.05)


def test_per_category_maximum_over_windows_and_severity_of_the_most_severe_window() -> None:
    # 'prize' early (spam, low severity), 'hurt' late (violence, critical): each category keeps its own maximum,
    # the severity distribution is the critical window's, not an average.
    text = "prize " + _benign(200) + " hurt"
    got = most_severe_window(FakeModel(), [text], WindowSpec(size=20, stride=10, max_windows=32))
    assert got.categories[0].tolist() == pytest.approx([0.9, 0.8])
    assert got.severity[0].tolist() == pytest.approx([0.3, 0.0, 0.0, 0.0, 0.7])


def test_short_texts_cost_one_call_with_the_texts_as_they_are() -> None:
    model = FakeModel()
    texts = ["I will hurt you", "claim your prize", "hello"]
    got = most_severe_window(model, texts, WindowSpec(size=10, stride=5, max_windows=4))
    assert model.calls == [texts]
    expected = FakeModel()(texts)
    np.testing.assert_array_equal(got.categories, expected.categories)
    np.testing.assert_array_equal(got.severity, expected.severity)


def test_a_batch_of_long_and_short_texts_is_one_call_and_keeps_its_order() -> None:
    model = FakeModel()
    texts = ["hurt", _benign(100) + " hurt", _benign(100), "prize"]
    got = most_severe_window(model, texts, WindowSpec(size=16, stride=8, max_windows=5))
    assert len(model.calls) == 1
    assert len(model.calls[0]) == 1 + 5 + 5 + 1  # the long texts are capped at max_windows each
    assert got.categories[:, 0].tolist() == pytest.approx([0.9, 0.9, 0.05, 0.05])
    assert got.categories[:, 1].tolist() == pytest.approx([0.1, 0.1, 0.1, 0.8])
    assert np.argmax(got.severity, axis=1).tolist() == [4, 4, 0, 1]
    np.testing.assert_allclose(got.severity.sum(axis=1), 1.0)


def test_window_spec_round_trips_through_the_card() -> None:
    spec = WindowSpec(size=64, stride=32, max_windows=4)
    assert WindowSpec.from_card({"windows": spec.to_dict()}) == spec
    assert WindowSpec.from_card({}) is None
    assert WindowSpec.from_card({"windows": None}) is None
    assert WindowSpec() == WindowSpec(96, 64, 16)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 120), st.one_of(st.none(), st.integers(0, 119))), min_size=1, max_size=6),
    st.integers(1, 24),
    st.data(),
)
def test_windowed_scores_are_the_maximum_over_the_windows_a_model_reads(
    docs: list[tuple[int, int | None]], size: int, data: st.DataObject
) -> None:
    """Each text's category score is the max over its windows; the threat is found whenever a window holds it."""
    stride = data.draw(st.integers(1, size))
    max_windows = data.draw(st.integers(1, 10))
    spec = WindowSpec(size, stride, max_windows)
    texts = []
    for n, at in docs:
        words = _benign(n).split()
        if at is not None:
            words.insert(min(at, len(words)), "hurt")
        texts.append(" ".join(words))
    model = FakeModel()
    got = most_severe_window(model, texts, spec)
    assert got.categories.shape == (len(texts), 2)
    assert len(model.calls) == 1
    assert len(model.calls[0]) <= len(texts) * max_windows
    from triage.text import windows

    for i, text in enumerate(texts):
        pieces = windows(text, size, stride, max_windows)
        seen = any("hurt" in p.split() for p in pieces)
        assert got.categories[i, 0] == pytest.approx(0.9 if seen else 0.05)
        assert int(np.argmax(got.severity[i])) == (4 if seen else 0)
        # A threat in the last `size` words is always read, however long the text.
        if "hurt" in text.split()[-size:]:
            assert seen
