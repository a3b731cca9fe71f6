"""Soak: the API at half its measured saturation for a while; RSS, open file descriptors and the outbox must stay flat.

Usage: .venv/bin/python benchmarks/soak.py [--minutes 30] [--concurrency 8]
Serves a baseline fitted on the shipped example tickets (`triage serve`, model directory), review queue on with
Label Studio unreachable (so every review ticket stays in the outbox; ticket ids cycle over 200, so a bounded outbox
is the expectation), measures saturation for 10 s, then sends requests paced at 50% of it. Samples the server's RSS,
open fds and outbox size every 5 s; prints the figures and writes results/soak.json. A 24-hour equivalent is a
matter of requests, not hours: the JSON records how many were served.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_http_load import _phase
from benchmarks.common import ROOT, served


def _model_dir(into: Path) -> Path:
    from training.baseline import BaselineParams, fit
    from triage.data.sources import load_examples
    from triage.data.splits import split_examples
    from triage.settings import get_settings

    splits = split_examples(load_examples())
    fit(splits["train"], splits["validation"], get_settings().load_policy(),
        BaselineParams(min_df=1, n_jobs=1)).save(into)
    return into


async def _paced(port: int, bodies: list[bytes], stop_at: float, interval_s: float, counts: list[int]) -> None:
    """One keep-alive connection sending a request every `interval_s` (open-loop pacing)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    next_at = time.perf_counter()
    try:
        while time.perf_counter() < stop_at:
            body = random.choice(bodies)
            writer.write((f"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
            await writer.drain()
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            counts[0 if b" 200 " in status else 1] += 1
            next_at += interval_s
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    finally:
        writer.close()


def soak(minutes: float, concurrency: int) -> dict[str, object]:
    """Saturation, then a paced run with samples."""
    from triage.data.sources import load_examples

    texts = [ex.text for ex in load_examples()]
    bodies = [json.dumps({"tickets": [{"id": f"s{i % 200}", "text": texts[i % len(texts)]}]}).encode()
              for i in range(1000)]
    work = Path(tempfile.mkdtemp(prefix="triage-soak-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    env = {"TRIAGE_SERVING__MODEL_DIR": str(_model_dir(work / "model")), "TRIAGE_HOME": str(work / "home"),
           "TRIAGE_LABELSTUDIO__ENABLED": "true", "TRIAGE_LABELSTUDIO__URL": f"http://127.0.0.1:{dead_port}",
           "OMP_NUM_THREADS": "1"}
    outbox = work / "home" / "review.db"
    with served(env) as (url, pid):
        port = int(url.rsplit(":", 1)[1])
        _phase(port, pid, bodies, concurrency, 3.0)
        saturation = _phase(port, pid, bodies, concurrency, 10.0)
        rate = 0.5 * saturation["requests_per_s"]
        proc = psutil.Process(pid)
        samples: list[dict[str, float]] = []
        done = threading.Event()

        def sample() -> None:
            t0 = time.monotonic()
            while not done.wait(5.0):
                size = sum(p.stat().st_size for p in outbox.parent.glob("review.db*"))
                samples.append({"t_s": time.monotonic() - t0, "rss_mb": proc.memory_info().rss / 2**20,
                                "fds": float(proc.num_fds()), "outbox_bytes": float(size)})

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        counts = [0, 0]

        async def run() -> None:
            stop_at = time.perf_counter() + minutes * 60
            await asyncio.gather(*[_paced(port, bodies, stop_at, concurrency / rate, counts)
                                   for _ in range(concurrency)])

        asyncio.run(run())
        done.set()
        sampler.join()
    third = max(1, len(samples) // 3)

    def drift(key: str) -> float:
        first = np.mean([s[key] for s in samples[:third]])
        last = np.mean([s[key] for s in samples[-third:]])
        return float(last - first)

    return {"minutes": minutes, "concurrency": concurrency, "saturation_req_per_s": saturation["requests_per_s"],
            "target_req_per_s": rate, "served": counts[0], "errors": counts[1],
            "achieved_req_per_s": counts[0] / (minutes * 60),
            "rss_mb_first_last_third_drift": drift("rss_mb"), "fds_min_max": [min(s["fds"] for s in samples),
                                                                               max(s["fds"] for s in samples)],
            "outbox_bytes_max": max(s["outbox_bytes"] for s in samples), "samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    out = soak(args.minutes, args.concurrency)
    print(f"saturation {out['saturation_req_per_s']:.0f} req/s; soak at {out['target_req_per_s']:.0f} req/s for "
          f"{args.minutes:g} min: {out['served']} served ({out['achieved_req_per_s']:.0f} req/s), {out['errors']} "
          f"errors; RSS drift {out['rss_mb_first_last_third_drift']:+.1f} MB (first vs last third), open fds "
          f"{out['fds_min_max']}, outbox at most {out['outbox_bytes_max'] / 2**20:.2f} MB")
    path = ROOT / "results" / "soak.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
