"""Benchmark: the scoring API under a bounded concurrent load of single-ticket requests on 127.0.0.1.

Usage: .venv/bin/python benchmarks/bench_http_load.py [--model-dir DIR] [--concurrency 8] [--duration 20]
Serves a saved classifier directory (or the registry's @champion) with `triage serve`, then runs two phases with
the same texts (real test-split tickets from ../shared/datasets): the plain server (the baseline: one ticket per model
call, one call at a time), then the default settings (micro-batching, two model workers). Prints requests/s, p50/p99
latency, errors and the server's peak RSS per phase, and writes results/bench_http_load.json.
Targets: >= 300 requests/s, p99 <= 50 ms, RSS <= 600 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, real_texts, served
from triage.settings import get_settings


async def _worker(port: int, bodies: list[bytes], stop_at: float, lat: list[float], errors: list[str]) -> None:
    """One keep-alive connection sending requests back to back (a minimal HTTP/1.1 client: low client CPU)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = random.randrange(len(bodies))
    try:
        while time.perf_counter() < stop_at:
            body = bodies[i % len(bodies)]
            i += 1
            head = (f"POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode()
            t0 = time.perf_counter()
            writer.write(head + body)
            await writer.drain()
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            lat.append((time.perf_counter() - t0) * 1000)
            if b" 200 " not in status_line:
                errors.append(status_line.decode().strip())
    finally:
        writer.close()


def _phase(port: int, pid: int, bodies: list[bytes], concurrency: int, duration: float) -> dict[str, float]:
    lat: list[float] = []
    errors: list[str] = []
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        proc = psutil.Process(pid)
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    async def run() -> float:
        stop_at = time.perf_counter() + duration
        t0 = time.perf_counter()
        await asyncio.gather(*[_worker(port, bodies, stop_at, lat, errors) for _ in range(concurrency)])
        return time.perf_counter() - t0

    elapsed = asyncio.run(run())
    done.set()
    sampler.join()
    arr = np.array(lat)
    return {"requests": float(len(lat)), "seconds": elapsed, "requests_per_s": len(lat) / elapsed,
            "p50_ms": float(np.percentile(arr, 50)), "p99_ms": float(np.percentile(arr, 99)),
            "errors": float(len(errors)), "server_rss_mb": peak[0] / 2**20}


TARGETS = {"requests_per_s": 300.0, "p99_ms": 50.0, "server_rss_mb": 600.0}
# The baseline phase is the plain server: one ticket per model call, one call at a time.
PHASES: tuple[tuple[str, dict[str, str]], ...] = (
    ("no_microbatching_baseline", {"TRIAGE_SERVING__MICROBATCH_MAX": "1", "TRIAGE_SERVING__MODEL_WORKERS": "1"}),
    ("microbatching", {}),
)


def load_test(model_dir: Path | None, texts: list[str], concurrency: int, duration: float) -> dict[str, object]:
    """Both phases (baseline server, then the default settings) against `triage serve` on 127.0.0.1."""
    settings = get_settings()
    bodies = [json.dumps({"tickets": [{"id": f"b{i}", "text": t}]}).encode() for i, t in enumerate(texts)]
    results: dict[str, object] = {"concurrency": concurrency, "duration_s": duration, "texts": len(texts),
                                  "model_dir": str(model_dir or "@champion"),
                                  "default_settings": {"microbatch_max": settings.serving.microbatch_max,
                                                       "microbatch_wait_ms": settings.serving.microbatch_wait_ms,
                                                       "model_workers": settings.serving.model_workers,
                                                       "threads": settings.serving.threads}}
    for phase, overrides in PHASES:
        env = {"TRIAGE_LABELSTUDIO__ENABLED": "false", "OMP_NUM_THREADS": "1", **overrides}
        if model_dir:
            env["TRIAGE_SERVING__MODEL_DIR"] = str(model_dir.resolve())
        with served(env) as (url, pid):
            port = int(url.rsplit(":", 1)[1])
            _phase(port, pid, bodies, concurrency, 3.0)  # warm-up
            results[phase] = _phase(port, pid, bodies, concurrency, duration)
    best = results["microbatching"]
    assert isinstance(best, dict)
    results["targets"] = TARGETS
    results["meets_targets"] = (best["requests_per_s"] >= TARGETS["requests_per_s"]
                                and best["p99_ms"] <= TARGETS["p99_ms"]
                                and best["server_rss_mb"] <= TARGETS["server_rss_mb"] and best["errors"] == 0)
    return results


def print_load(results: dict[str, object]) -> None:
    """The load test as a small table."""
    print(f"HTTP: single-ticket requests, concurrency {results['concurrency']}, {results['duration_s']:.0f} s "
          f"per phase, model {results['model_dir']}, defaults {results['default_settings']}")
    print(f"{'phase':<28}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'RSS MB':>9}")
    for phase, _ in PHASES:
        m = results[phase]
        assert isinstance(m, dict)
        print(f"{phase:<28}{m['requests_per_s']:>8.0f}{m['p50_ms']:>9.1f}{m['p99_ms']:>9.1f}{m['errors']:>8.0f}"
              f"{m['server_rss_mb']:>9.0f}")
    print(f"targets (>= 300 req/s, p99 <= 50 ms, RSS <= 600 MB): {'met' if results['meets_targets'] else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=None, help="saved classifier dir (default: @champion)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench_http_load.json")
    args = parser.parse_args()

    texts = real_texts(args.texts, seed=3, split="test", max_chars=2000)
    results = load_test(args.model_dir, texts, args.concurrency, args.duration)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print_load(results)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
