"""Benchmark: the baseline server over HTTP on one host: /v1/score vs /healthz, 1 vs 2 processes, 2x overload.

Usage: .venv/bin/python benchmarks/bench_scale.py [--model-dir DIR] [--duration 20] [--overload-duration 30]
Needs `wrk` (Debian: apt-get install -y wrk). Serves a saved classifier directory (or the registry's @champion)
with `triage serve` on 127.0.0.1 and runs, with single-ticket requests of real test-split texts:
1. one server process, wrk at concurrency 8: GET /healthz, then POST /v1/score (same process, same run);
2. `--workers 2`, the same /v1/score load (ratio to 1.);
3. overload, one process, review queue on with Label Studio down (items wait in the SQLite outbox): an open-loop
   load at 0.3x the saturation rate measured in 1. (the unloaded p99), then at 2x for `--overload-duration`
   seconds; counts 200/429/503/client timeouts, p99 of the answered requests, and compares the outbox with the
   tickets answered `review` (none lost, none duplicated).
Prints a table with the CPU and the load average (the 2 cores are shared), writes results/bench_scale.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, real_texts, served
from benchmarks.hardware import cpu_info

WRK_SCRIPT = """
local bodies = {}
for line in io.lines("%(bodies)s") do bodies[#bodies + 1] = line end
local i = 0
wrk.method = "%(method)s"
wrk.headers["Content-Type"] = "application/json"
request = function()
  if wrk.method == "GET" then return wrk.format(nil, "%(path)s") end
  i = i + 1
  return wrk.format(nil, "%(path)s", nil, bodies[(i %% #bodies) + 1])
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT {\\"requests\\": %%d, \\"seconds\\": %%f, \\"p50_ms\\": %%f, \\"p99_ms\\": %%f, "
    .. "\\"non_2xx\\": %%d, \\"socket_errors\\": %%d}\\n", summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def wrk(url: str, path: str, bodies_file: Path, concurrency: int, duration: float) -> dict[str, float]:
    """One wrk run (2 threads, `concurrency` connections); requests/s, p50/p99 ms, errors."""
    method = "GET" if path == "/healthz" else "POST"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT % {"bodies": bodies_file, "method": method, "path": path})
    out = subprocess.run(["wrk", "-t2", f"-c{concurrency}", f"-d{duration:.0f}s", "--timeout", "10s", "-s", f.name,
                          url], capture_output=True, text=True, check=True).stdout
    os.unlink(f.name)
    result: dict[str, float] = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT"))[7:])
    result["requests_per_s"] = result["requests"] / result["seconds"]
    return result


async def _open_loop(port: int, texts: list[str], rate: float, duration: float, prefix: str,
                     connections: int = 64, client_timeout_s: float = 10.0) -> dict[str, object]:
    """Requests at a fixed arrival rate (latency from the scheduled time, so client lag counts against it)."""
    start = time.perf_counter() + 0.2
    total = int(rate * duration)
    schedule: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        schedule.put_nowait(i)
    statuses: Counter[str] = Counter()
    latency: list[float] = []
    review: list[str] = []
    answered: list[str] = []

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while not schedule.empty():
            i = schedule.get_nowait()
            due = start + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tid = f"{prefix}-{i}"
            body = json.dumps({"tickets": [{"id": tid, "text": texts[i % len(texts)]}]}).encode()
            writer.write(f"POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            try:
                await writer.drain()
                status_line = await asyncio.wait_for(reader.readline(), client_timeout_s)
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                payload = await reader.readexactly(length)
            except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
                statuses["client_timeout_or_error"] += 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            code = status_line.split()[1].decode()
            statuses[code] += 1
            if code == "200":
                latency.append((time.perf_counter() - due) * 1000)
                result = json.loads(payload)["results"][0]
                answered.append(result["id"])
                if result["route"] == "review":
                    review.append(result["id"])
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*[connection() for _ in range(connections)])
    elapsed = time.perf_counter() - t0
    arr = np.array(latency) if latency else np.array([float("nan")])
    return {"offered_per_s": rate, "sent": total, "seconds": elapsed, "statuses": dict(statuses),
            "answered_per_s": len(latency) / elapsed, "p50_ms": float(np.percentile(arr, 50)),
            "p99_ms": float(np.percentile(arr, 99)), "review_ids": review, "answered_ids": answered}


def overload(model_env: Mapping[str, str], texts: list[str], saturation: float, duration: float) -> dict[str, object]:
    """Unloaded p99 at 0.3x saturation, then 2x saturation; the outbox checked against the review answers."""
    home = Path(tempfile.mkdtemp(prefix="triage-overload-"))
    outbox = home / "review.db"
    env = {**model_env, "TRIAGE_LABELSTUDIO__ENABLED": "true", "TRIAGE_LABELSTUDIO__URL": "http://127.0.0.1:9",
           "TRIAGE_LABELSTUDIO__OUTBOX_PATH": str(outbox)}
    try:
        with served(env, ready_timeout_s=600) as (url, _pid):
            port = int(url.rsplit(":", 1)[1])
            unloaded = asyncio.run(_open_loop(port, texts, 0.3 * saturation, 10.0, "u", connections=16))
            # More connections than the queue holds tickets: the server, not the client, must do the refusing.
            loaded = asyncio.run(_open_loop(port, texts, 2.0 * saturation, duration, "o", connections=512))
        with sqlite3.connect(outbox) as db:
            queued = [r[0] for r in db.execute("SELECT ticket_id FROM queue")]
    finally:
        shutil.rmtree(home, ignore_errors=True)
    review = [*unloaded.pop("review_ids"), *loaded.pop("review_ids")]  # type: ignore[list-item]
    answered = [*unloaded.pop("answered_ids"), *loaded.pop("answered_ids")]  # type: ignore[list-item]
    counts = Counter(queued)
    return {"unloaded": unloaded, "overloaded": loaded,
            "p99_ratio": float(loaded["p99_ms"]) / float(unloaded["p99_ms"]),  # type: ignore[arg-type]
            "answered_total": len(answered), "answered_duplicates": len(answered) - len(set(answered)),
            "review_answered": len(review), "outbox_rows": len(queued),
            "review_lost": len(set(review) - set(queued)), "outbox_duplicates": sum(n - 1 for n in counts.values()),
            "outbox_unanswered": len(set(queued) - set(review))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=None, help="saved classifier dir (default: @champion)")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--overload-duration", type=float, default=30.0)
    parser.add_argument("--saturation", type=float, default=None,
                        help="req/s of one process measured before: skip phases 1-2, run the overload phase alone")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench_scale.json")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("benchmark: needs wrk (apt-get install -y wrk)")

    texts = real_texts(2000, seed=3, split="test", max_chars=2000)
    bodies = Path(tempfile.mkstemp(suffix=".jsonl")[1])
    bodies.write_text("\n".join(json.dumps({"tickets": [{"id": f"b{i}", "text": t}]}) for i, t in enumerate(texts)))
    env = {"TRIAGE_LABELSTUDIO__ENABLED": "false", "OMP_NUM_THREADS": "1"}
    if args.model_dir:
        env["TRIAGE_SERVING__MODEL_DIR"] = str(args.model_dir.resolve())
    results: dict[str, object] = {"cpu": cpu_info(), "load_average_1m_before": os.getloadavg()[0],
                                  "concurrency": 8, "duration_s": args.duration,
                                  "model": str(args.model_dir or "@champion")}
    if args.saturation:
        print(f"3. overload only: 0.3x then 2x {args.saturation:.0f} req/s", flush=True)
        results["overload"] = overload(env, texts, args.saturation, args.overload_duration)
        results["load_average_1m_after"] = os.getloadavg()[0]
        out = args.out.with_name(args.out.stem + "_overload.json")
        out.write_text(json.dumps(results, indent=2))
        print(json.dumps(results["overload"], indent=2))
        return
    print("1. one process: /healthz then /v1/score", flush=True)
    with served(env, ready_timeout_s=600) as (url, _pid):
        wrk(url, "/v1/score", bodies, 8, 3)  # warm-up
        health = wrk(url, "/healthz", bodies, 8, args.duration)
        one = wrk(url, "/v1/score", bodies, 8, args.duration)
    results["healthz"], results["score_1_worker"] = health, one
    results["score_over_healthz"] = one["requests_per_s"] / health["requests_per_s"]
    print("2. --workers 2: /v1/score", flush=True)
    with served(env, ready_timeout_s=600, args=["--workers", "2"]) as (url, _pid):
        wrk(url, "/v1/score", bodies, 8, 3)
        two = wrk(url, "/v1/score", bodies, 8, args.duration)
    results["score_2_workers"] = two
    results["workers_2_over_1"] = two["requests_per_s"] / one["requests_per_s"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))  # the HTTP figures survive a failing overload phase
    print(json.dumps({k: results[k] for k in ("healthz", "score_1_worker", "score_2_workers")}), flush=True)
    print("3. overload: 0.3x then 2x the saturation rate", flush=True)
    results["overload"] = overload(env, texts, one["requests_per_s"], args.overload_duration)
    results["load_average_1m_after"] = os.getloadavg()[0]
    bodies.unlink()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    report(results)
    print(f"written to {args.out}")


def report(r: dict[str, object]) -> None:
    """The figures as a small table."""
    print(f"CPU {r['cpu']['model']}; load average {r['load_average_1m_before']:.1f} -> "  # type: ignore[index]
          f"{r['load_average_1m_after']:.1f} (2 cores shared with other work); wrk concurrency 8, "
          f"{r['duration_s']:.0f} s, model {r['model']}")
    print(f"{'phase':<24}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}")
    for name in ("healthz", "score_1_worker", "score_2_workers"):
        m = r[name]
        assert isinstance(m, dict)
        print(f"{name:<24}{m['requests_per_s']:>9.0f}{m['p50_ms']:>9.1f}{m['p99_ms']:>9.1f}{m['non_2xx']:>9.0f}")
    print(f"/v1/score over /healthz: {r['score_over_healthz']:.0%} (target >= 50%); "
          f"2 workers over 1: {r['workers_2_over_1']:.2f}x (target >= 1.7x)")
    o = r["overload"]
    assert isinstance(o, dict)
    for name in ("unloaded", "overloaded"):
        m = o[name]
        print(f"open loop {name:<11} offered {m['offered_per_s']:>6.0f}/s answered {m['answered_per_s']:>6.0f}/s "
              f"p50 {m['p50_ms']:>7.1f} ms p99 {m['p99_ms']:>7.1f} ms statuses {m['statuses']}")
    print(f"overload p99 / unloaded p99 = {o['p99_ratio']:.2f} (target <= 3); review items answered "
          f"{o['review_answered']}, in outbox {o['outbox_rows']}, lost {o['review_lost']}, duplicated "
          f"{o['outbox_duplicates']}")


if __name__ == "__main__":
    random.seed(0)
    main()
