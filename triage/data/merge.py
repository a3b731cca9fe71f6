"""Combine base datasets with expert labels: an expert label overrides a source label for the same text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from triage.data.schema import Example
from triage.data.splits import text_key


def merge_expert_labels(base: Sequence[Example], expert: Sequence[Example], expert_weight: float = 2.0
                        ) -> list[Example]:
    """Base examples whose text an expert labelled are replaced by the expert's example (weighted).

    Matching is by normalised text, so a re-posted duplicate is overridden too; expert examples for texts
    the base data does not have are added.
    """
    if expert_weight <= 0:
        raise ValueError(f"expert_weight must be positive, got {expert_weight}")
    by_key = {text_key(ex.text): replace(ex, weight=ex.weight * expert_weight, source=ex.source or "expert")
              for ex in expert}
    kept = [ex for ex in base if text_key(ex.text) not in by_key]
    return [*kept, *by_key.values()]
