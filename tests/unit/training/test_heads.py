"""Heads-only retraining: which labels a light head learns from, and which categories are not ready yet."""

from __future__ import annotations

import pytest

from tests.seeded import COUNTER, NEW, SEEDS, UNRELATED, HashEncoder, seeded_policy_dict
from training.heads import fit_heads, head_training_set
from triage.data.schema import Example
from triage.taxonomy import parse_policy


def _policy(min_labels: int = 30):  # type: ignore[no-untyped-def]
    raw = seeded_policy_dict()
    raw["new_categories"] = {"min_labels_for_head": min_labels, "min_positives_for_head": 5}
    return parse_policy(raw)


def _labels(n_neg: int, positives: tuple[str, ...] = ()) -> list[Example]:
    negatives = [Example(f"{UNRELATED[i % 3]} number {i}", {NEW: 0, "spam": 0}, None, "expert") for i in range(n_neg)]
    return [*negatives, *(Example(t, {NEW: 1}, None, "expert") for t in positives)]


def test_training_set_is_seeds_counter_examples_and_expert_labels_which_win() -> None:
    expert = [*_labels(3), Example(SEEDS[0], {NEW: 0}, None, "expert"), Example("no opinion", {"spam": 1}, None, "x")]
    texts, y, n_expert = head_training_set(_policy(), NEW, expert)
    assert n_expert == 4  # the spam-only label says nothing about the new category
    assert len(texts) == len(SEEDS) + len(COUNTER) + 3
    assert y[texts.index(SEEDS[0])] == 0  # an expert overrules a seed
    assert y[texts.index(SEEDS[1])] == 1 and y[texts.index(COUNTER[0])] == 0


def test_a_category_waits_for_its_labels_and_says_how_many_it_has() -> None:
    heads, skipped = fit_heads(_policy(30), [NEW], _labels(12), HashEncoder())
    assert heads == [] and skipped == {NEW: "12 of 30 expert labels"}


def test_enough_labels_fit_a_head() -> None:
    heads, skipped = fit_heads(_policy(20), [NEW], _labels(22, ("fake designer bag copies, brand logo",)),
                               HashEncoder())
    assert skipped == {} and len(heads) == 1
    head = heads[0]
    assert (head.name, head.n_labels, head.n_positives) == (NEW, len(SEEDS) + 1 + 23, len(SEEDS) + 1)
    assert head.target_precision == pytest.approx(0.9)
