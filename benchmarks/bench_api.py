"""Benchmark: 1,000 real tickets through the HTTP scoring API in batches of 64, against in-process scoring.

Usage: .venv/bin/python benchmarks/bench_api.py [--tickets 1000] [--batch 64]
Starts `triage serve` on a free 127.0.0.1 port with the registered @champion (trains the baseline first if
nothing is registered), prints tickets/s and per-batch p50/p99 latency for HTTP and for the same batches
scored in-process (the baseline measured in the same run), and writes results/bench_api.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, TRIAGE, real_texts, served
from triage.adapters import mlflow_registry as registry
from triage.scorer import Scorer, TicketLimits
from triage.settings import get_settings
from triage.tickets import Ticket


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench_api.json")
    args = parser.parse_args()

    settings = get_settings()
    client = registry.configure(settings)
    if registry.alias_version(client, settings.mlflow.model_name, registry.CHAMPION) is None:
        subprocess.run([TRIAGE, "train"], check=True, cwd=ROOT)
    texts = real_texts(args.tickets, seed=7, split="test")
    batches = [texts[i : i + args.batch] for i in range(0, len(texts), args.batch)]

    # Baseline in the same run: the same batches through the same model, in-process, no HTTP.
    loaded = registry.load_model(settings)
    scorer = Scorer(loaded.classifier, settings.load_policy(), TicketLimits(max_tickets=args.batch))
    scorer.score([Ticket("warm", "warm up")])
    local = []
    t0 = time.perf_counter()
    for b, batch in enumerate(batches):
        s = time.perf_counter()
        scorer.score([Ticket(f"{b}-{i}", t) for i, t in enumerate(batch)])
        local.append((time.perf_counter() - s) * 1000)
    local_total = time.perf_counter() - t0

    with served({"TRIAGE_LABELSTUDIO__ENABLED": "false"}) as (url, _pid):
        http = []
        with httpx.Client(base_url=url, timeout=30) as c:
            c.post("/v1/score", json={"tickets": [{"id": "warm", "text": "warm up"}]})
            t0 = time.perf_counter()
            for b, batch in enumerate(batches):
                body = {"tickets": [{"id": f"{b}-{i}", "text": t} for i, t in enumerate(batch)]}
                s = time.perf_counter()
                r = c.post("/v1/score", json=body)
                http.append((time.perf_counter() - s) * 1000)
                r.raise_for_status()
            http_total = time.perf_counter() - t0

    result = {
        "model": {"name": loaded.name, "version": loaded.version, "kind": loaded.classifier.card.kind},
        "tickets": len(texts), "batch_size": args.batch, "batches": len(batches),
        "http": {"tickets_per_s": len(texts) / http_total, "p50_ms": percentile(http, 50),
                 "p99_ms": percentile(http, 99)},
        "in_process_baseline": {"tickets_per_s": len(texts) / local_total, "p50_ms": percentile(local, 50),
                                "p99_ms": percentile(local, 99)},
        "target_p50_ms": 50.0,
    }
    result["http_overhead_p50_ms"] = result["http"]["p50_ms"] - result["in_process_baseline"]["p50_ms"]
    result["meets_target"] = result["http"]["p50_ms"] < 50.0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"model {loaded.name} v{loaded.version} ({result['model']['kind']}), {len(texts)} real tickets, "
          f"batches of {args.batch}")
    print(f"{'path':<22}{'tickets/s':>12}{'p50 ms/batch':>15}{'p99 ms/batch':>15}")
    for name, key in (("HTTP API", "http"), ("in-process baseline", "in_process_baseline")):
        m = result[key]
        print(f"{name:<22}{m['tickets_per_s']:>12.0f}{m['p50_ms']:>15.1f}{m['p99_ms']:>15.1f}")
    print(f"target p50 < 50 ms per batch of 64: {'met' if result['meets_target'] else 'NOT met'}; "
          f"written to {args.out}")


if __name__ == "__main__":
    main()
