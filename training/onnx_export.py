"""Export the fine-tuned network to a fused, dynamically quantized int8 ONNX model that keeps fp32's decisions."""

from __future__ import annotations

import copy
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from triage.models.transformer import ONNX_INPUTS, ONNX_OUTPUTS

logger = logging.getLogger(__name__)

# Module attribute of the fp32 side path; its MatMul nodes are named ".../fp32_side/MatMul" in the ONNX graph.
SIDE = "fp32_side"


def _split_linear_class() -> type:
    """The torch module class (built on first use, so importing this module does not import torch)."""
    import torch
    from torch import nn

    class OutlierSplitLinear(nn.Module):
        """A Linear whose outlier input channels are multiplied apart, in fp32, from the rest (LLM.int8() style).

        Dynamic quantization scales each activation tensor by its largest value: one channel at 10-15x the others
        leaves the rest a few int8 steps. Gathering the outlier channels into a separate MatMul that is not
        quantized gives the int8 MatMul a range set by ordinary channels; the sum is the same fp32 function.
        """

        keep: torch.Tensor
        outlier_idx: torch.Tensor

        def __init__(self, linear: nn.Linear, outliers: Sequence[int]) -> None:
            super().__init__()
            chosen = torch.tensor(sorted(set(outliers)), dtype=torch.long)
            keep = torch.ones(linear.in_features)
            keep[chosen] = 0.0
            # Zeroing the outlier channels is an elementwise Mul; gathering the others cost 0.2 ms per layer.
            self.register_buffer("keep", keep)
            self.register_buffer("outlier_idx", chosen)
            self.main = nn.Linear(linear.in_features, linear.out_features, bias=linear.bias is not None)
            setattr(self, SIDE, nn.Linear(len(chosen), linear.out_features, bias=False))
            with torch.no_grad():
                self.main.weight.copy_(linear.weight * keep)
                if linear.bias is not None:
                    self.main.bias.copy_(linear.bias)
                getattr(self, SIDE).weight.copy_(linear.weight[:, chosen])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.main(x * self.keep) + getattr(self, SIDE)(x.index_select(-1, self.outlier_idx))

    return OutlierSplitLinear


def _feed_forward_linears(net: Any) -> dict[str, Any]:
    """Each encoder layer's two feed-forward Linears (their inputs carry the activation outliers), by name."""
    found: dict[str, Any] = {}
    for k, layer in enumerate(net.encoder.encoder.layer):
        found[f"layer.{k}.intermediate.dense"] = layer.intermediate
        found[f"layer.{k}.output.dense"] = layer.output
    return found


def outlier_channels(net: Any, batches: Sequence[tuple[np.ndarray, np.ndarray]], ratio: float) -> dict[str, list[int]]:
    """Input channels of each feed-forward Linear whose largest |activation| exceeds `ratio` x the median channel's."""
    import torch

    peaks: dict[str, torch.Tensor] = {}

    def record(name: str) -> Any:
        def hook(_module: Any, inputs: tuple[torch.Tensor, ...]) -> None:
            peak = inputs[0].detach().abs().amax(dim=(0, 1))
            peaks[name] = torch.maximum(peaks[name], peak) if name in peaks else peak

        return hook

    owners = _feed_forward_linears(net)
    handles = [owner.dense.register_forward_pre_hook(record(name)) for name, owner in owners.items()]
    try:
        with torch.inference_mode():
            for ids, mask in batches:
                net(torch.from_numpy(ids), torch.from_numpy(mask))
    finally:
        for handle in handles:
            handle.remove()
    return {name: torch.nonzero(peak > ratio * peak.median()).flatten().tolist() for name, peak in peaks.items()}


def with_outliers_split(net: Any, outliers: dict[str, list[int]]) -> Any:
    """A copy of `net` whose feed-forward Linears route their outlier input channels through an fp32 side path."""
    split = copy.deepcopy(net).eval()
    linear_class = _split_linear_class()
    for name, owner in _feed_forward_linears(split).items():
        if outliers.get(name):
            owner.dense = linear_class(owner.dense, outliers[name])
    return split


def export_int8_onnx(
    net: Any, max_length: int, calibration: Sequence[tuple[np.ndarray, np.ndarray]] = (), outlier_ratio: float = 6.0,
) -> tuple[bytes, dict[str, list[int]]]:
    """Export the network to ONNX (opset 17, dynamic batch and sequence), fuse it, quantize it to int8 per channel.

    The export traces the eager attention so that onnxruntime's BERT optimizer can fuse each layer's attention
    and GELU into Attention and Gelu kernels (the int8 model then runs QAttention; the embedding lookup stays
    fp32), which cuts the many small ops that dominate a single short text. With `calibration` batches, the
    feed-forward inputs' outlier channels (see `outlier_channels`) stay in fp32. Returns the model's bytes and
    the channels kept in fp32; everything is written in a temporary directory.
    """
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    net = net.eval()
    outliers = outlier_channels(net, calibration, outlier_ratio) if calibration else {}
    exported = with_outliers_split(net, outliers) if any(outliers.values()) else net
    config: Any = exported.encoder.config
    ids = torch.ones((2, min(16, max_length)), dtype=torch.long)
    mask = torch.ones_like(ids)
    axes = {
        "input_ids": {0: "batch", 1: "sequence"},
        "attention_mask": {0: "batch", 1: "sequence"},
        "category_logits": {0: "batch"},
        "severity_logits": {0: "batch"},
    }
    attention = config._attn_implementation
    config._attn_implementation = "eager"
    try:
        with tempfile.TemporaryDirectory(prefix="triage-onnx-") as tmp:
            fp32, fused, int8 = (Path(tmp) / n for n in ("model.onnx", "model.fused.onnx", "model.int8.onnx"))
            with torch.inference_mode():
                torch.onnx.export(
                    exported, (ids, mask), str(fp32), input_names=list(ONNX_INPUTS),
                    output_names=list(ONNX_OUTPUTS), dynamic_axes=axes, opset_version=17, dynamo=False,
                )
            fusion = FusionOptions("bert")
            # Add + LayerNormalization runs faster than onnxruntime's SkipLayerNormalization kernel on short texts
            # (1.56 vs 1.91 ms per text, 3 layers, int8, 1 thread, same outputs); _OnnxRuntime keeps it unfused.
            fusion.enable_skip_layer_norm = False
            optimized = optimize_model(
                str(fp32), model_type="bert", num_heads=int(config.num_attention_heads),
                hidden_size=int(config.hidden_size), optimization_options=fusion,
            )
            logger.info("ONNX fusion: %s", {k: v for k, v in optimized.get_fused_operator_statistics().items() if v})
            optimized.save_model_to_file(str(fused))
            fp32_nodes = [n.name for n in onnx.load(str(fused)).graph.node if f"/{SIDE}/" in n.name]
            quantize_dynamic(
                str(fused), str(int8), weight_type=QuantType.QInt8, per_channel=True,
                # The embedding table stays fp32: a lookup gains no speed from int8, and one scale for the whole
                # 30k x 384 table cost precision (v3's weights: 98.85% -> 99.15% identical routing decisions).
                op_types_to_quantize=["MatMul", "Attention"],
                nodes_to_exclude=fp32_nodes,
                # 7-bit weights: on AVX2 CPUs without VNNI the u8 x s8 kernel (vpmaddubsw) saturates 16-bit pair
                # sums with full-range weights; on such a host a briefly trained model's int8 decisions disagreed
                # with fp32 on 14% of cells, 1.7% with reduce_range. The artifact must be right on any host.
                reduce_range=True,
                # Fused ops are in the com.microsoft domain, where shape inference cannot type their outputs.
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
            return int8.read_bytes(), outliers
    finally:
        config._attn_implementation = attention
