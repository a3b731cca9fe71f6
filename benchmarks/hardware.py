"""What the CPU under a benchmark is and how much int8 buys on it, measured in the same run as the benchmark.

Dynamic int8 is fast only where the CPU has int8 dot-product instructions (AVX-512 VNNI, AVX-VNNI, AMX). On a
plain AVX2 core onnxruntime's int8 GEMM runs about as fast as its fp32 GEMM, so an int8 speedup measured on one
host does not carry over to another: every figure is printed beside the ratio this probe measures.
"""

from __future__ import annotations

import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

INT8_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


def cpu_info() -> dict[str, Any]:
    """CPU model and the instruction-set flags that decide int8 speed (from /proc/cpuinfo on Linux)."""
    model, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    return {"model": model, "int8_flags": {f: f in flags for f in INT8_FLAGS}}


def gemm_probe(m: int = 32, k: int = 384, n: int = 1536, repeats: int = 400) -> dict[str, float]:
    """GMAC/s of one fp32 and one dynamic-int8 (per-channel) MatMul of the encoder's FFN shape, 1 thread."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array((rng.standard_normal((k, n)) * 0.05).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "gemm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["m", k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["m", n])], [weight],
    )
    x = rng.standard_normal((m, k)).astype(np.float32)
    result: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="triage-gemm-") as tmp:
        fp32, int8 = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), fp32)
        quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, per_channel=True)
        for name, path in (("fp32", fp32), ("int8", int8)):
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
            for _ in range(repeats // 10):
                session.run(None, {"x": x})
            start = time.perf_counter()
            for _ in range(repeats):
                session.run(None, {"x": x})
            result[f"{name}_gmac_per_s"] = round(m * k * n * repeats / (time.perf_counter() - start) / 1e9, 1)
    result["int8_over_fp32"] = round(result["int8_gmac_per_s"] / result["fp32_gmac_per_s"], 2)
    return result
