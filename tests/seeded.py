"""Test helpers for categories that start from seed examples: a seeded policy and a tiny deterministic encoder."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from triage.taxonomy import default_policy_path

NEW = "counterfeit_goods"
SEEDS = (
    "selling replica designer handbags, look exactly like the real brand, half price",
    "fake luxury watches for sale, indistinguishable from the original brand",
    "knockoff branded sneakers, copies of the famous brand, cheap",
    "counterfeit perfume bottles with the designer brand logo, wholesale",
    "replica brand sunglasses that pass as genuine, bulk discount",
    "unauthorised copies of branded headphones sold as original",
    "imitation designer wallets with fake brand tags for resale",
    "bootleg branded football shirts, look identical to official ones",
    "counterfeit brand-name phone chargers sold as genuine accessories",
    "mirror-quality replica of a luxury brand bag, comes with fake receipt",
)
COUNTER = ("authentic designer handbag, receipt and certificate from the official store",)
PARAPHRASE = "cheap replica designer handbags that look exactly like the real brand"
UNRELATED = (
    "thanks for your help with my order yesterday",
    "the weather is lovely today, going for a walk",
    "can you tell me when the library opens on sunday",
)


def seeded_policy_dict(examples: Sequence[str] = SEEDS, counter: Sequence[str] = COUNTER) -> dict[str, Any]:
    """The default policy plus one new category that lists seed examples."""
    raw = yaml.safe_load(default_policy_path().read_text())
    raw["categories"].append({
        "name": NEW, "title": "Counterfeit goods", "definition": "Offers of fake branded goods sold as genuine.",
        "examples": list(examples), "counter_examples": list(counter),
    })
    return raw


def write_seeded_policy(directory: Path, **kwargs: Any) -> Path:
    """Write the seeded policy as YAML into `directory`; returns its path."""
    path = directory / "seeded-policy.yaml"
    path.write_text(yaml.safe_dump(seeded_policy_dict(**kwargs), sort_keys=False))
    return path


STOPWORDS = frozenset({"a", "an", "the", "for", "with", "of", "to", "and", "as", "my", "your", "on", "in", "at",
                       "is", "are", "that", "this", "when", "do", "i", "you", "me", "it"})


class HashEncoder:
    """Bag of hashed content words, unit length: texts sharing words are similar, a (very) small sentence encoder."""

    def __init__(self, dim: int = 4096) -> None:
        self.dim = dim
        self.calls = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in set(re.findall(r"[a-z]+", text.lower())) - STOPWORDS:
                out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-9)
