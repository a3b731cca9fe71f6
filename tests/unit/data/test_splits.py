"""Splits over the whole loaded corpus: deterministic, and no normalised text in two splits."""

from __future__ import annotations

from pathlib import Path

import pytest

from triage.data.sources import TRAINING_SOURCES, load_all, load_examples
from triage.data.splits import SPLITS, normalise, split_examples, split_of


@pytest.fixture(scope="module")
def corpus(shared_datasets: Path) -> list:
    return load_all(shared_datasets)


def test_load_all_reads_every_source_without_empty_texts(corpus: list) -> None:
    assert len(corpus) > 120_000
    assert all(e.text.strip() for e in corpus)
    assert {e.source for e in corpus} == set(TRAINING_SOURCES)


def test_no_normalised_text_occurs_in_two_splits(corpus: list) -> None:
    parts = split_examples(corpus)
    seen: dict[str, str] = {}
    for split, examples in parts.items():
        for ex in examples:
            key = normalise(ex.text)
            assert seen.setdefault(key, split) == split, f"{key[:60]!r} in {seen[key]} and {split}"
    sizes = {s: len(parts[s]) / len(corpus) for s in SPLITS}
    assert 0.07 < sizes["test"] < 0.13 and 0.07 < sizes["validation"] < 0.13


def test_splits_are_deterministic_and_case_and_space_insensitive(corpus: list) -> None:
    sample = corpus[::97]
    first = {s: [e.text for e in xs] for s, xs in split_examples(sample).items()}
    second = {s: [e.text for e in xs] for s, xs in split_examples(list(sample)).items()}
    assert first == second
    for ex in [e for e in sample if e.text.isascii()][:200]:
        assert split_of(ex.text) == split_of("  " + ex.text.upper().replace(" ", "   ") + "\n")


def test_example_tickets_split_without_overlap() -> None:
    examples = load_examples()
    parts = split_examples(examples)
    keys = [{normalise(e.text) for e in parts[s]} for s in SPLITS]
    assert not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2])
    assert sum(len(k) for k in keys) == len({normalise(e.text) for e in examples})
