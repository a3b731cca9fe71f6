"""Benchmark: the cascade vs its full model alone vs a plain `transformers.pipeline` server, one host, one run.

Usage: TRIAGE_HOME=... .venv/bin/python benchmarks/bench_cascade.py --cascade-version V [--duration 20] [--rounds 2]
(or `--cascade-dir DIR` for a saved cascade). Needs `wrk` (Debian: apt-get install -y wrk).
1. Quality on the held-out test split (the training data's own split, never seen by either model nor by the band
   fitting): the cascade's and the full model's probabilities in-process, their decisions (route, category,
   severity) through the policy, the share of tickets where they are equal, each one's macro-AUPRC, the share that
   took the full path, and the rows where the always-review rules sent a ticket to the full model.
2. HTTP: three servers on 127.0.0.1 at once, each started before any load: `triage serve` over the cascade,
   `triage serve` over the cascade's own full model, and benchmarks/pipeline_server.py (a plain
   `transformers.pipeline("text-classification")` on the pretrained all-MiniLM-L6-v2 weights). wrk sends
   single-ticket `POST /v1/score` requests (real test-split texts) at concurrency 8; the servers take turns for
   `--rounds` rounds of `--duration` seconds, so a noisy neighbour on the shared cores slows all of them alike.
   Requests/s over all rounds, p50 and p99 (median over rounds) per server; the cascade's full-path share on the
   texts the load sends.
Prints a table with the CPU and the load average, writes results/bench_cascade.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.bench_scale import wrk
from benchmarks.common import ROOT, real_texts, served
from benchmarks.hardware import cpu_info
from triage.cascade import FULL, CascadeClassifier, decisions, macro_auprc
from triage.models.base import predict_in_batches
from triage.scorer import Scorer
from triage.settings import Settings, get_settings

SERVERS = ("cascade", "full", "pipeline")


def load_cascade(settings: Settings, version: str | None, directory: Path | None) -> CascadeClassifier:
    """The cascade from a registered version or a saved directory."""
    if directory is not None:
        from triage.models.io import load_classifier

        classifier: Any = load_classifier(directory)
    else:
        from triage.adapters import mlflow_registry as registry

        classifier = registry.load_version(settings, str(version)).classifier
    if not isinstance(classifier, CascadeClassifier):
        sys.exit(f"benchmark: {version or directory} is a {classifier.card.kind!r} model, not a cascade")
    return classifier


def quality(cascade: CascadeClassifier, texts: list[str], labels: np.ndarray, settings: Settings) -> dict[str, Any]:
    """Decision agreement and macro-AUPRC of the cascade vs its full model on `texts` (labels (n, C), NaN unknown)."""
    policy = settings.load_policy()
    started = time.perf_counter()
    full = predict_in_batches(cascade.full, texts)
    full_s = time.perf_counter() - started
    started = time.perf_counter()
    both = predict_in_batches(cascade, texts)
    cascade_s = time.perf_counter() - started
    want = decisions(Scorer(cascade.full, policy), full)
    got = decisions(Scorer(cascade, policy), both)
    same = np.array([a == b for a, b in zip(got, want, strict=True)])
    on_full = np.asarray(both.paths) == FULL
    routes = {r: sum(1 for d in want if d[0] == r) for r in ("auto", "review")}
    return {
        "tickets": len(texts),
        "decision_agreement": float(same.mean()),
        "agreement_on_fast_path": float(same[~on_full].mean()) if (~on_full).any() else None,
        "route_agreement": float(np.mean([a[0] == b[0] for a, b in zip(got, want, strict=True)])),
        "macro_auprc_full": macro_auprc(labels, full.categories),
        "macro_auprc_cascade": macro_auprc(labels, both.categories),
        "full_path_share": float(on_full.mean()),
        "expected_full_share_on_card": cascade.card.extra.get("cascade", {}).get("expected_full_share"),
        "full_model_routes": routes,
        "in_process_ms_per_ticket": {"full": 1000 * full_s / len(texts), "cascade": 1000 * cascade_s / len(texts)},
    }


def test_split(settings: Settings, categories: list[str], limit: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Texts and label matrix of the training data's test split (a seeded sample of `limit` when smaller)."""
    import random

    from training.pipeline import load_training_data
    from triage.data.schema import label_matrix
    from triage.data.splits import split_examples

    examples, _ = load_training_data(settings)
    test = split_examples(examples)["test"]
    if 0 < limit < len(test):
        test = random.Random(seed).sample(test, limit)
    return [ex.text for ex in test], label_matrix(test, categories)


def http_load(cascade_dir: Path, full_dir: Path, bodies: Path, concurrency: int, duration: float,
              rounds: int, home: Path) -> dict[str, Any]:
    """The three servers up at once; wrk on each in turn, `rounds` times."""
    common = {"TRIAGE_LABELSTUDIO__ENABLED": "false", "OMP_NUM_THREADS": "1"}
    envs = {"cascade": {**common, "TRIAGE_SERVING__MODEL_DIR": str(cascade_dir), "TRIAGE_HOME": str(home / "c")},
            "full": {**common, "TRIAGE_SERVING__MODEL_DIR": str(full_dir), "TRIAGE_HOME": str(home / "f")}}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in SERVERS}
    with ExitStack() as stack:
        urls = {name: stack.enter_context(served(envs[name], ready_timeout_s=600))[0] for name in ("cascade", "full")}
        urls["pipeline"] = stack.enter_context(served(
            {"OMP_NUM_THREADS": "1"}, ready_timeout_s=600,
            command=[sys.executable, str(ROOT / "benchmarks" / "pipeline_server.py")]))[0]
        for name in SERVERS:
            wrk(urls[name], "/v1/score", bodies, concurrency, 3)  # warm-up
        for r in range(rounds):
            for name in SERVERS:
                runs[name].append(wrk(urls[name], "/v1/score", bodies, concurrency, duration))
                m = runs[name][-1]
                print(f"  round {r + 1} {name:<9}{m['requests_per_s']:>8.1f} req/s  p50 {m['p50_ms']:>7.1f} ms  "
                      f"p99 {m['p99_ms']:>7.1f} ms  non-2xx {m['non_2xx']:.0f}", flush=True)
    out: dict[str, Any] = {}
    for name, measured in runs.items():
        requests = sum(m["requests"] for m in measured)
        seconds = sum(m["seconds"] for m in measured)
        out[name] = {"requests_per_s": requests / seconds, "p50_ms": float(np.median([m["p50_ms"] for m in measured])),
                     "p99_ms": float(np.median([m["p99_ms"] for m in measured])),
                     "non_2xx": sum(m["non_2xx"] for m in measured),
                     "socket_errors": sum(m["socket_errors"] for m in measured), "rounds": measured}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cascade-version", default=None, help="registered cascade version")
    parser.add_argument("--cascade-dir", type=Path, default=None, help="or a saved cascade directory")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quality-tickets", type=int, default=0, help="test-split sample size; 0 = all")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench_cascade.json")
    args = parser.parse_args()
    if (args.cascade_version is None) == (args.cascade_dir is None):
        sys.exit("benchmark: give one of --cascade-version or --cascade-dir")
    if shutil.which("wrk") is None:
        sys.exit("benchmark: needs wrk (apt-get install -y wrk)")

    settings = get_settings()
    cascade = load_cascade(settings, args.cascade_version, args.cascade_dir)
    results: dict[str, Any] = {"cpu": cpu_info(), "load_average_1m_before": os.getloadavg()[0],
                               "cascade": args.cascade_version or str(args.cascade_dir),
                               "fast_kind": cascade.fast.card.kind, "full_kind": cascade.full.card.kind,
                               "bands": cascade.card.extra.get("cascade"), "concurrency": args.concurrency,
                               "duration_s": args.duration, "rounds": args.rounds}
    print("1. quality on the test split (in-process)", flush=True)
    texts, labels = test_split(settings, list(cascade.full.card.categories), args.quality_tickets, seed=11)
    results["quality"] = quality(cascade, texts, labels, settings)
    print(json.dumps(results["quality"], indent=2), flush=True)

    load_texts = real_texts(2000, seed=3, split="test", max_chars=2000)
    results["load_full_path_share"] = float(cascade.needs_full(cascade.fast.predict(load_texts)).mean())
    with tempfile.TemporaryDirectory(prefix="triage-bench-cascade-") as tmp:
        work = Path(tmp)
        cascade.save(work / "cascade")
        cascade.full.save(work / "full")
        bodies = work / "bodies.jsonl"
        bodies.write_text("\n".join(json.dumps({"tickets": [{"id": f"b{i}", "text": t}]})
                                    for i, t in enumerate(load_texts)))
        del cascade
        print(f"2. HTTP, concurrency {args.concurrency}, {args.rounds} rounds of {args.duration:.0f} s per server",
              flush=True)
        results["http"] = http_load(work / "cascade", work / "full", bodies, args.concurrency, args.duration,
                                    args.rounds, work)
    http = results["http"]
    results["cascade_over_full"] = http["cascade"]["requests_per_s"] / http["full"]["requests_per_s"]
    results["cascade_over_pipeline"] = http["cascade"]["requests_per_s"] / http["pipeline"]["requests_per_s"]
    q = results["quality"]
    results["targets"] = {"throughput_2_5x": results["cascade_over_full"] >= 2.5,
                          "agreement_98": q["decision_agreement"] >= 0.98,
                          "auprc_within_0_5_points": q["macro_auprc_full"] - q["macro_auprc_cascade"] <= 0.005}
    results["load_average_1m_after"] = os.getloadavg()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    report(results)
    print(f"written to {args.out}")


def report(r: dict[str, Any]) -> None:
    """The figures as a small table."""
    q = r["quality"]
    print(f"CPU {r['cpu']['model']}; load average {r['load_average_1m_before']:.1f} -> "
          f"{r['load_average_1m_after']:.1f}; cascade {r['cascade']} ({r['fast_kind']} -> {r['full_kind']})")
    print(f"{'server':<10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}")
    for name in SERVERS:
        m = r["http"][name]
        print(f"{name:<10}{m['requests_per_s']:>9.1f}{m['p50_ms']:>9.1f}{m['p99_ms']:>9.1f}{m['non_2xx']:>9.0f}")
    print(f"cascade / full: {r['cascade_over_full']:.2f}x (target >= 2.5x); cascade / pipeline: "
          f"{r['cascade_over_pipeline']:.2f}x; full-path share: {q['full_path_share']:.1%} of {q['tickets']} test "
          f"tickets, {r['load_full_path_share']:.1%} of the load's texts")
    print(f"decision agreement {q['decision_agreement']:.2%} (target >= 98%); macro-AUPRC cascade "
          f"{q['macro_auprc_cascade']:.4f} vs full {q['macro_auprc_full']:.4f} (target: within 0.005)")


if __name__ == "__main__":
    main()
