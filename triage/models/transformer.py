"""Fine-tuned MiniLM classifier: shared encoder, multi-label category head, ordinal severity head.

Serving runs the int8 ONNX export through onnxruntime (torch is never imported on that path, which keeps
the server small); the fp32 PyTorch weights are kept beside it as a fallback and as the parity reference.
Both backends produce raw logits; calibration (triage.calibration) is applied here, in numpy, so the two
backends share one post-processing.

Severity head: a cumulative-logit (proportional-odds) model. One linear score s(x) and K-1 ordered
cut-points c_0 < ... < c_{K-2} give logit P(severity > k) = s(x) - c_k. Ordering is guaranteed by
parameterising the cut-points as c_0 + cumsum(softplus(d)), so the level probabilities are always valid
and ordinal by construction (the CORAL idea with rank consistency enforced rather than hoped for).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from triage.calibration import SigmoidCalibration, apply_sigmoid_calibration, ordinal_probabilities
from triage.models.base import ModelCard, Prediction, WindowSpec, most_severe_window
from triage.text import normalize_all

logger = logging.getLogger(__name__)

KIND = "transformer"
TOKENIZER_FILE = "tokenizer.json"
ENCODER_DIR = "encoder"
HEADS_FILE = "heads.safetensors"
ONNX_INT8_FILE = "model.int8.onnx"
CALIBRATION_FILE = "calibration.json"
ONNX_INPUTS = ("input_ids", "attention_mask")
ONNX_OUTPUTS = ("category_logits", "severity_logits")

Backend = Literal["onnx", "torch"]
# onnxruntime's SkipLayerNormalization kernel is slower than Add + LayerNormalization on short texts (see
# training.onnx_export.export_int8_onnx), so the session does not fuse them back.
DISABLED_OPTIMIZERS = ["SkipLayerNormFusion"]


def default_windows(max_length: int) -> WindowSpec:
    """Word windows that fit the token limit (about 1.4 WordPiece tokens per word), overlapping by a third."""
    size = max(8, int(max_length / 1.4))
    return WindowSpec(size=size, stride=max(1, 2 * size // 3), max_windows=16)


def load_tokenizer(path: str | Path, max_length: int) -> Any:
    """A fast WordPiece tokenizer that truncates to `max_length` and pads to the longest text in a batch."""
    return tokenizer_from_str(Path(path).read_text(encoding="utf-8"), max_length)


def tokenizer_from_str(serialised: str, max_length: int) -> Any:
    """`load_tokenizer` from the tokenizer's JSON text."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(serialised)
    tok.enable_truncation(max_length=max_length)
    pad_id = tok.token_to_id("[PAD]")
    tok.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")
    return tok


def encode(tokenizer: Any, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and attention mask (int64, padded to the longest text) for a batch of texts."""
    encodings = tokenizer.encode_batch(list(texts))
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    return ids, mask


def token_lengths(tokenizer: Any, texts: Sequence[str]) -> np.ndarray:
    """Number of real tokens per text after truncation (to sort batches and size max_length)."""
    return np.array([sum(e.attention_mask) for e in tokenizer.encode_batch(list(texts))], dtype=np.int64)


@cache
def network_class() -> type:
    """The torch module class (built on first use, so importing this module does not import torch)."""
    import torch
    from torch import nn

    class TriageNetwork(nn.Module):
        """Mean-pooled encoder with a sigmoid category head and a cumulative-logit severity head."""

        def __init__(self, encoder: nn.Module, n_categories: int, n_levels: int, dropout: float = 0.1):
            super().__init__()
            config: Any = encoder.config
            hidden = int(config.hidden_size)
            self.encoder = encoder
            self.dropout = nn.Dropout(dropout)
            self.category_head = nn.Linear(hidden, n_categories)
            self.severity_score = nn.Linear(hidden, 1, bias=False)
            self.cut_first = nn.Parameter(torch.zeros(1))
            self.cut_gaps = nn.Parameter(torch.zeros(max(n_levels - 2, 0)))

        def cutpoints(self) -> torch.Tensor:
            """Strictly increasing cut-points c_0 < c_1 < ... (length K-1)."""
            gaps = nn.functional.softplus(self.cut_gaps) + 1e-3
            return torch.cat([self.cut_first, self.cut_first + torch.cumsum(gaps, dim=0)])

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor]:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            pooled = self.dropout(pooled)
            return self.category_head(pooled), self.severity_score(pooled) - self.cutpoints()

    return TriageNetwork


def build_network(
    encoder_dir: str | Path, n_categories: int, n_levels: int, dropout: float = 0.1, layers: int | None = None
) -> Any:
    """A network around the encoder saved in `encoder_dir` (HF format), heads freshly initialised.

    `layers` keeps only the bottom k transformer layers (the encoder's cost is linear in its depth).
    """
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(str(encoder_dir))
    depth = int(encoder.config.num_hidden_layers)
    if layers is not None:
        if not 1 <= layers <= depth:
            raise ValueError(f"layers must be between 1 and {depth} for {encoder_dir}, got {layers}")
        encoder.encoder.layer = encoder.encoder.layer[:layers]
        encoder.config.num_hidden_layers = layers
    return network_class()(encoder, n_categories, n_levels, dropout)


class _TorchRuntime:
    """Raw logits from the fp32 PyTorch network."""

    name = "torch"
    max_batch: int | None = None

    def __init__(self, net: Any, threads: int | None = None) -> None:
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.net = net.eval()

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        with torch.inference_mode():
            cat, sev = self.net(torch.from_numpy(ids), torch.from_numpy(mask))
        return cat.float().numpy(), sev.float().numpy()


class _OnnxRuntime:
    """Raw logits from an ONNX model (the int8 export) through onnxruntime."""

    name = "onnx"
    # Dynamic quantization scales each activation tensor by its range over the whole call, padding included, so
    # a text batched with others can score differently from the same text alone. One text per call keeps a
    # ticket's score independent of whatever the micro-batcher grouped it with.
    max_batch: int | None = 1

    def __init__(self, model: str | Path | bytes, threads: int = 1) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        source = model if isinstance(model, bytes) else str(model)
        self.session = ort.InferenceSession(
            source, sess_options=opts, providers=["CPUExecutionProvider"], disabled_optimizers=DISABLED_OPTIMIZERS
        )

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cat, sev = self.session.run(list(ONNX_OUTPUTS), {"input_ids": ids, "attention_mask": mask})
        return np.asarray(cat), np.asarray(sev)


def batched_logits(
    runtime: Any, tokenizer: Any, texts: Sequence[str], batch_size: int, widths: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Raw logits of `texts` in their order, run in length-sorted batches (capped by the runtime's max_batch)."""
    n = len(texts)
    cat = np.zeros((n, widths[0]), dtype=np.float32)
    sev = np.zeros((n, widths[1]), dtype=np.float32)
    size = min(batch_size, runtime.max_batch or batch_size)
    # Batches of similar length waste little on padding; results go back to the caller's order. One text per
    # call has no padding, so sorting (a second tokenisation of every text) would buy nothing.
    sort = size > 1 and n > size
    order = np.argsort(token_lengths(tokenizer, texts), kind="stable") if sort else np.arange(n)
    for start in range(0, n, size):
        rows = order[start : start + size]
        cat[rows], sev[rows] = runtime(*encode(tokenizer, [texts[i] for i in rows]))
    return cat, sev


@dataclass
class TransformerCalibration:
    """Per-category sigmoid calibration and the severity temperature, fitted on validation data."""

    categories: list[SigmoidCalibration]
    severity_temperature: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters."""
        return {
            "categories": [c.to_dict() for c in self.categories],
            "severity_temperature": self.severity_temperature,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TransformerCalibration:
        """Inverse of to_dict."""
        return cls(
            categories=[SigmoidCalibration(**c) for c in raw["categories"]],
            severity_temperature=float(raw["severity_temperature"]),
        )

    @classmethod
    def identity(cls, n_categories: int) -> TransformerCalibration:
        """No calibration: raw sigmoid and ordinal probabilities."""
        return cls(categories=[SigmoidCalibration() for _ in range(n_categories)])


@dataclass
class TransformerClassifier:
    """The fine-tuned transformer behind the Classifier protocol; `predict` returns calibrated probabilities."""

    card: ModelCard
    tokenizer: Any
    runtime: Any
    calibration: TransformerCalibration
    net: Any = None
    onnx_int8: bytes | None = None
    # Texts are sorted by length and run 8 at a time (the torch backend; int8 runs one per call, see
    # _OnnxRuntime.max_batch): 32 mixed-length texts padded to the longest ran 2.2x slower than sorted 8s.
    batch_size: int = 8
    source_dir: Path | None = field(default=None, repr=False)

    @property
    def backend(self) -> str:
        """Which runtime computes the logits ("onnx" or "torch")."""
        return str(self.runtime.name)

    @property
    def max_length(self) -> int:
        """Token limit texts are truncated to."""
        return int(self.card.extra["max_length"])

    def predict_logits(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Raw category logits (n, C) and cumulative severity logits (n, L-1), before calibration."""
        return batched_logits(
            self.runtime, self.tokenizer, texts, self.batch_size,
            (len(self.card.categories), len(self.card.severity_levels) - 1),
        )

    def calibrate(self, category_logits: np.ndarray, severity_logits: np.ndarray) -> Prediction:
        """Calibrated probabilities from raw logits."""
        return Prediction(
            categories=apply_sigmoid_calibration(category_logits, self.calibration.categories),
            severity=ordinal_probabilities(severity_logits, self.calibration.severity_temperature),
        )

    def predict(self, texts: Sequence[str]) -> Prediction:
        """Calibrated category (n, C) and severity (n, L) probabilities in the card's order.

        Texts longer than the token limit are scored by their most severe window (a model whose card names no
        window spec gets one sized to its limit); a model trained on normalised text sees normalised text.
        """
        if self.card.extra.get("normalize"):
            texts = normalize_all(texts)
        return self.predict_prepared(texts)

    def predict_prepared(self, texts: Sequence[str]) -> Prediction:
        """`predict` for texts already in the form the model reads (normalised when it was trained so), as a caller
        that normalised them itself passes them: the same windows and calibration, no second normalisation."""
        spec = WindowSpec.from_card(self.card.extra) or default_windows(self.max_length)
        return most_severe_window(lambda chunk: self.calibrate(*self.predict_logits(chunk)), texts, spec)

    def save(self, directory: Path) -> None:
        """Write card, tokenizer, int8 ONNX model, fp32 weights and calibration into `directory`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / TOKENIZER_FILE).write_text(self.tokenizer.to_str(), encoding="utf-8")
        (directory / CALIBRATION_FILE).write_text(json.dumps(self.calibration.to_dict(), indent=2))
        if self.net is not None:
            from safetensors.torch import save_file

            self.net.encoder.save_pretrained(str(directory / ENCODER_DIR))
            heads = {k: v.detach().contiguous() for k, v in self.net.state_dict().items()}
            save_file({k: v for k, v in heads.items() if not k.startswith("encoder.")}, directory / HEADS_FILE)
        elif self.source_dir is not None and self.source_dir.resolve() != directory.resolve():
            shutil.copytree(self.source_dir / ENCODER_DIR, directory / ENCODER_DIR, dirs_exist_ok=True)
            shutil.copy2(self.source_dir / HEADS_FILE, directory / HEADS_FILE)
        if self.onnx_int8 is not None:
            (directory / ONNX_INT8_FILE).write_bytes(self.onnx_int8)
        elif self.source_dir is not None and self.source_dir.resolve() != directory.resolve():
            shutil.copy2(self.source_dir / ONNX_INT8_FILE, directory / ONNX_INT8_FILE)
        self.card.write(directory)

    @classmethod
    def load(cls, directory: str | Path, backend: Backend = "onnx", threads: int = 1) -> TransformerClassifier:
        """Restore a saved model: onnxruntime int8 by default, PyTorch fp32 if asked or if onnxruntime is missing."""
        path = Path(directory)
        card = ModelCard.read(path)
        if card.kind != KIND:
            raise ValueError(f"{path} holds a {card.kind!r} classifier, not {KIND!r}")
        if backend not in ("onnx", "torch"):
            raise ValueError(f"backend must be 'onnx' or 'torch', got {backend!r}")
        tokenizer = load_tokenizer(path / TOKENIZER_FILE, int(card.extra["max_length"]))
        calibration = TransformerCalibration.from_dict(json.loads((path / CALIBRATION_FILE).read_text()))
        if backend == "onnx" and not (path / ONNX_INT8_FILE).is_file():
            logger.warning("%s has no %s: falling back to the PyTorch backend", path, ONNX_INT8_FILE)
            backend = "torch"
        if backend == "onnx":
            try:
                runtime: Any = _OnnxRuntime(path / ONNX_INT8_FILE, threads=threads)
            except ImportError:
                logger.warning("onnxruntime is not installed: falling back to the PyTorch backend")
                backend = "torch"
        net = None
        if backend == "torch":
            net = load_network(path, len(card.categories), len(card.severity_levels))
            runtime = _TorchRuntime(net, threads=threads)
        return cls(card=card, tokenizer=tokenizer, runtime=runtime, calibration=calibration, net=net, source_dir=path)


def load_network(directory: Path, n_categories: int, n_levels: int) -> Any:
    """The fp32 torch network saved in `directory` (encoder in HF format plus the heads)."""
    from safetensors.torch import load_file

    net = build_network(directory / ENCODER_DIR, n_categories, n_levels)
    missing, unexpected = net.load_state_dict(load_file(directory / HEADS_FILE), strict=False)
    missing = [k for k in missing if not k.startswith("encoder.")]
    if missing or unexpected:
        raise ValueError(f"{directory / HEADS_FILE} does not match the network: missing {missing}, extra {unexpected}")
    return net.eval()
