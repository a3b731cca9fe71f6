"""The embedding cache: a second call reads what the first computed, whatever the text's digest looks like."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from training.embedding_cache import _key, embed_cached
from triage.models.embedding import DIMENSIONS


class CountingEncoder:
    """A deterministic fake encoder (a vector from the text's characters) that counts the texts it embeds."""

    def __init__(self, model_bytes: bytes = b"fake-model", max_length: int = 128, batch_size: int = 32) -> None:
        self.model_bytes = model_bytes
        self.max_length = max_length
        self.batch_size = batch_size
        self.embedded: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded.extend(texts)
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        for i, t in enumerate(texts):
            rng = np.random.default_rng(sum(map(ord, t)) + len(t))
            v = rng.normal(size=DIMENSIONS)
            out[i] = v / np.linalg.norm(v)
        return out


def _cached(encoder: CountingEncoder, texts: Sequence[str], cache: Path | None) -> np.ndarray:
    return embed_cached(cast(Any, encoder), texts, cache)


# A text whose 12-byte digest ends in a zero byte (numpy 'S' strings would drop it on reading back).
ZERO_TAIL = next(f"text {i}" for i in range(10_000) if _key(f"text {i}").endswith(b"\x00"))


def test_second_call_reads_from_the_cache_with_equal_results(tmp_path: Path) -> None:
    texts = ["hello", "I will hurt you", ZERO_TAIL, "hello", "ünïcödé \ud800 text"]
    first_encoder = CountingEncoder()
    first = _cached(first_encoder, texts, tmp_path)
    assert sorted(first_encoder.embedded) == sorted(set(texts))  # duplicates embedded once
    again = CountingEncoder()
    second = _cached(again, texts, tmp_path)
    assert again.embedded == []  # every text, the zero-tailed digest included, came from the cache
    np.testing.assert_array_equal(first, second)
    # Stored as float16: equal to the encoder's output to float16 precision.
    np.testing.assert_allclose(first, CountingEncoder().embed(texts), atol=1e-3)


def test_only_new_texts_are_embedded(tmp_path: Path) -> None:
    _cached(CountingEncoder(), ["a", "b"], tmp_path)
    encoder = CountingEncoder()
    got = _cached(encoder, ["b", "c", "a"], tmp_path)
    assert encoder.embedded == ["c"]
    assert got.shape == (3, DIMENSIONS)
    fresh = _cached(CountingEncoder(), ["b", "c", "a"], None)
    np.testing.assert_allclose(got, fresh, atol=1e-3)


def test_another_encoder_or_length_does_not_share_the_cache(tmp_path: Path) -> None:
    _cached(CountingEncoder(), ["a"], tmp_path)
    other = CountingEncoder(model_bytes=b"another model")
    _cached(other, ["a"], tmp_path)
    shorter = CountingEncoder(max_length=64)
    _cached(shorter, ["a"], tmp_path)
    assert other.embedded == ["a"] and shorter.embedded == ["a"]
    assert len(list(tmp_path.glob("embeddings-*.npz"))) == 3


def test_without_a_cache_directory_every_call_embeds(tmp_path: Path) -> None:
    encoder = CountingEncoder()
    _cached(encoder, ["a", "a"], None)
    _cached(encoder, ["a"], None)
    assert encoder.embedded == ["a", "a", "a"]
    assert list(tmp_path.iterdir()) == []


def test_an_older_cache_with_string_keys_is_still_read(tmp_path: Path) -> None:
    encoder = CountingEncoder()
    _cached(encoder, ["x", "y"], tmp_path)
    path = next(tmp_path.glob("embeddings-*.npz"))
    with np.load(path) as stored:
        keys, vectors = stored["keys"], stored["vectors"]
    np.savez(path, keys=np.array([row.tobytes() for row in keys], dtype="S12"), vectors=vectors)
    again = CountingEncoder()
    _cached(again, ["x", "y"], tmp_path)
    assert again.embedded == []


def test_single_text_and_batched_embeddings_are_cached_apart(tmp_path: Path) -> None:
    bulk, single = CountingEncoder(batch_size=32), CountingEncoder(batch_size=1)
    embed_cached(bulk, ["a text", "another"], tmp_path)
    embed_cached(single, ["a text", "another"], tmp_path)
    assert single.embedded == ["a text", "another"]  # batched vectors are not served for single-text use
