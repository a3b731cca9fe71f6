"""The int8 export's outlier split: same fp32 function, planted outliers found, their MatMuls left unquantized."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from training.onnx_export import SIDE, export_int8_onnx, outlier_channels, with_outliers_split
from training.transformer import TransformerParams, encoder_path
from triage.models.transformer import build_network, encode, load_tokenizer

TEXTS = [
    "you people are vermin and should be wiped out",
    "great stream today, thanks everyone",
    "send me your bank password or your account gets closed",
    "I will find where you live",
    "buy cheap followers now, limited offer!!!",
    "the weather is nice in Lisbon",
    "nobody would miss you if you were gone",
    "meeting moved to 3pm, see you there",
]


@pytest.fixture(scope="module")
def net_and_batches() -> tuple[Any, list[tuple[np.ndarray, np.ndarray]]]:
    """The real pretrained encoder (2 layers) with fresh heads, and the texts tokenised in two batches."""
    import torch

    torch.manual_seed(0)
    path = encoder_path(TransformerParams())
    net = build_network(path, n_categories=3, n_levels=5, layers=2).eval()
    tokenizer = load_tokenizer(path / "tokenizer.json", 32)
    return net, [encode(tokenizer, TEXTS[:4]), encode(tokenizer, TEXTS[4:])]


def _torch_outputs(net: Any, batches: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    import torch

    with torch.inference_mode():
        return [torch.cat(net(torch.from_numpy(i), torch.from_numpy(m)), dim=1).numpy() for i, m in batches]


@pytest.mark.slow
def test_split_network_computes_the_same_function_and_leaves_the_original_alone(net_and_batches: tuple) -> None:
    net, batches = net_and_batches
    before = {k: v.clone() for k, v in net.state_dict().items()}
    outliers = {"layer.0.intermediate.dense": [3, 99], "layer.1.output.dense": [0, 700, 1535]}
    split = with_outliers_split(net, outliers)
    assert type(split.encoder.encoder.layer[0].intermediate.dense).__name__ == "OutlierSplitLinear"
    assert type(split.encoder.encoder.layer[1].intermediate.dense).__name__ == "Linear"
    for a, b in zip(_torch_outputs(net, batches), _torch_outputs(split, batches), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    after = net.state_dict()
    assert all(np.array_equal(before[k].numpy(), after[k].numpy()) for k in before)


@pytest.mark.slow
def test_outlier_channels_finds_a_planted_outlier(net_and_batches: tuple) -> None:
    import torch

    net, batches = net_and_batches
    found = outlier_channels(net, batches, ratio=6.0)
    assert set(found) == {f"layer.{k}.{m}.dense" for k in range(2) for m in ("intermediate", "output")}
    planted = with_outliers_split(net, {})
    with torch.no_grad():
        planted.encoder.encoder.layer[1].attention.output.LayerNorm.weight[42] *= 100.0
    again = outlier_channels(planted, batches, ratio=6.0)
    assert 42 in again["layer.1.intermediate.dense"] and 42 not in found["layer.1.intermediate.dense"]
    # A ratio above every channel's peak finds nothing.
    assert not any(outlier_channels(net, batches, ratio=1e9).values())


@pytest.mark.slow
def test_export_keeps_outlier_matmuls_in_fp32_and_matches_torch(net_and_batches: tuple) -> None:
    import onnx
    import onnxruntime as ort

    net, batches = net_and_batches
    model, outliers = export_int8_onnx(net, 32, batches, outlier_ratio=6.0)
    assert outliers == outlier_channels(net, batches, ratio=6.0) and any(outliers.values())
    graph = onnx.load_from_string(model).graph
    side = [n for n in graph.node if f"/{SIDE}/" in n.name and n.op_type.startswith("MatMul")]
    assert len(side) == sum(1 for v in outliers.values() if v)
    assert all(n.op_type == "MatMul" for n in side)
    assert any(n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for n in graph.node)
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    for (ids, mask), ref in zip(batches, _torch_outputs(net, batches), strict=True):
        cat, sev = session.run(None, {"input_ids": ids, "attention_mask": mask})
        np.testing.assert_allclose(np.hstack([cat, sev]), ref, atol=0.25)
    plain, none = export_int8_onnx(net, 32)
    assert none == {} and not [n for n in onnx.load_from_string(plain).graph.node if f"/{SIDE}/" in n.name]
