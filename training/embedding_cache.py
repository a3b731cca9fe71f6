"""Sentence embeddings of training texts, cached on disk by encoder and text so a refit skips the encoder."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from triage.models.embedding import DIMENSIONS, SentenceEncoder

log = logging.getLogger(__name__)


_KEY_BYTES = 12


def _key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=_KEY_BYTES).digest()


def _stored_keys(keys: np.ndarray) -> list[bytes]:
    """Keys as written: rows of uint8 (numpy 'S' strings, an older format, drop a digest's trailing zero bytes)."""
    return [bytes(k) for k in keys] if keys.dtype.kind == "S" else [row.tobytes() for row in keys]


def _write(path: Path, cached: dict[bytes, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    stored_keys = [k for k in cached if len(k) == _KEY_BYTES]
    np.savez(tmp, keys=np.frombuffer(b"".join(stored_keys), dtype=np.uint8).reshape(-1, _KEY_BYTES),
             vectors=np.stack([cached[k] for k in stored_keys]).astype(np.float16))
    tmp.replace(path)


def embed_cached(encoder: SentenceEncoder, texts: Sequence[str], cache_dir: Path | None,
                 chunk: int = 4096) -> np.ndarray:
    """Embeddings (n, 384) of `texts`; those already in `cache_dir` (for this encoder) are read, not computed."""
    if cache_dir is None:
        return encoder.embed(texts)
    digest = hashlib.sha256(encoder.model_bytes).hexdigest()[:12]
    # Batched int8 embeddings differ slightly from single-text ones (batch-wide activation scales): kept apart.
    mode = "" if encoder.batch_size > 1 else "-single"
    path = cache_dir / f"embeddings-{digest}-{encoder.max_length}{mode}.npz"
    keys = [_key(t) for t in texts]
    cached: dict[bytes, np.ndarray] = {}
    if path.is_file():
        with np.load(path) as stored:
            cached = dict(zip(_stored_keys(stored["keys"]), stored["vectors"], strict=True))
    missing = sorted({k: i for i, k in enumerate(keys) if k not in cached}.values())
    started = time.perf_counter()
    # Written every `chunk` texts, so an interrupted fit keeps what it embedded.
    for begin in range(0, len(missing), chunk):
        part = missing[begin:begin + chunk]
        for i, vector in zip(part, encoder.embed([texts[i] for i in part]), strict=True):
            cached[keys[i]] = vector.astype(np.float16)
        _write(path, cached)
        log.info("embedded %d of %d new texts in %.0f s (%d from cache)", begin + len(part), len(missing),
                 time.perf_counter() - started, len(texts) - len(missing))
    out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
    for i, k in enumerate(keys):
        out[i] = cached[k]
    return out
