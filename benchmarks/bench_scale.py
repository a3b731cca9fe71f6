"""Benchmark: the baseline server over HTTP on one host: /v1/score vs /healthz, 1 vs 2 processes, 2x overload.

Usage: .venv/bin/python benchmarks/bench_scale.py [--model-dir DIR] [--duration 20] [--overload-duration 30]
Needs `wrk` (Debian: apt-get install -y wrk). Serves a saved classifier directory (or the registry's @champion)
with `triage serve` on 127.0.0.1, with the settings the product ships with: the decision log on, review on with
Label Studio unreachable (review tickets are stored in the SQLite outbox and wait there), each server with a
fresh TRIAGE_HOME. With single-ticket requests cycling through `--texts` real test-split texts (14,000 by default:
few repeats, so the baseline's per-word n-gram memory sees traffic as varied as a real queue's):
1. one server process, wrk at concurrency 8: GET /healthz, then POST /v1/score (same process, same run), with the
   server's CPU milliseconds per request (all threads, and the event loop's thread alone);
2. `--workers 2`, the same /v1/score load (ratio to 1.);
3. overload, one fresh process: the saturation rate is the /v1/score rate measured in 1.; an open-loop load at
   0.3x of it gives the unloaded p99, then 2x of it for `--overload-duration` seconds. The load comes from
   benchmarks/loadgen.py in its own process (arrivals at a constant rate whatever the server does; latency from
   each request's due time); offered vs achieved send rate, 200/429/503/client timeouts, p50/p99 of the answered
   requests, and the review tickets answered vs the outbox (none lost, none duplicated).
Prints a table with the CPU and the load average (the 2 cores are shared), writes results/bench_scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, real_texts, served
from benchmarks.hardware import cpu_info
from triage.decisions.recorder import in_audit_sample
from triage.settings import get_settings

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


def wrk(url: str, path: str, bodies_file: Path, concurrency: int, duration: float,
        pid: int | None = None) -> dict[str, float]:
    """One wrk run (2 threads, `concurrency` connections); requests/s, p50/p99 ms, errors, how busy the host's cores
    were and how much of that was wrk, and with the server's pid its CPU ms per request (all threads; the event
    loop's thread alone)."""
    method = "GET" if path == "/healthz" else "POST"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT % {"bodies": bodies_file, "method": method, "path": path})
    before, host_before, wrk_before = _cpu_s(pid), _host_cpu(), _children_cpu_s()
    out = subprocess.run(["wrk", "-t2", f"-c{concurrency}", f"-d{duration:.0f}s", "--timeout", "10s", "-s", f.name,
                          url], capture_output=True, text=True, check=True).stdout
    after, host_after, wrk_after = _cpu_s(pid), _host_cpu(), _children_cpu_s()
    os.unlink(f.name)
    result: dict[str, float] = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT"))[7:])
    result["requests_per_s"] = result["requests"] / result["seconds"]
    busy, total = host_after[0] - host_before[0], host_after[1] - host_before[1]
    if total > 0:
        # Share of all cores' time spent busy (any process) during the run, and wrk's own part of it.
        result["host_cpu_busy"] = busy / total
        result["wrk_cpu_share"] = (wrk_after - wrk_before) * os.sysconf("SC_CLK_TCK") / total
    if before and after and result["requests"]:
        result["server_cpu_ms_per_request"] = (after[0] - before[0]) * 1000 / result["requests"]
        result["event_loop_cpu_ms_per_request"] = (after[1] - before[1]) * 1000 / result["requests"]
    return result


def _cpu_s(pid: int | None) -> tuple[float, float] | None:
    """CPU seconds of a process (all threads) and of its main thread (the event loop), from /proc."""
    if pid is None or not Path(f"/proc/{pid}/stat").is_file():
        return None
    tick = os.sysconf("SC_CLK_TCK")

    def read(path: str) -> float:
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick  # utime + stime

    return read(f"/proc/{pid}/stat"), read(f"/proc/{pid}/task/{pid}/stat")


def _host_cpu() -> tuple[int, int]:
    """Busy and total clock ticks of all cores since boot, from /proc/stat (idle and iowait count as not busy)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    total = sum(ticks[:8])  # guest time is already inside user time
    return total - idle, total


def _children_cpu_s() -> float:
    """CPU seconds of the finished child processes (wrk) so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def product_defaults(model_env: Mapping[str, str]) -> Iterator[tuple[dict[str, str], Path]]:
    """Server environment as shipped (decision log on, review on) in a fresh TRIAGE_HOME; Label Studio unreachable,
    so review tickets wait in the outbox (the env's TRIAGE_LABELSTUDIO__OUTBOX_PATH)."""
    home = Path(tempfile.mkdtemp(prefix="triage-scale-"))
    outbox = home / "review.db"
    try:
        yield {**model_env, "TRIAGE_HOME": str(home), "TRIAGE_LABELSTUDIO__ENABLED": "true",
               "TRIAGE_LABELSTUDIO__URL": "http://127.0.0.1:9", "TRIAGE_LABELSTUDIO__OUTBOX_PATH": str(outbox),
               "TRIAGE_DECISIONS__ENABLED": "true"}, outbox
    finally:
        shutil.rmtree(home, ignore_errors=True)


def open_loop(port: int, texts_file: Path, rate: float, duration: float, prefix: str) -> dict[str, object]:
    """benchmarks/loadgen.py in its own process: `rate` requests/s for `duration` s."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = Path(f.name)
    try:
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "loadgen.py"), "--port", str(port), "--rate",
                        f"{rate:.1f}", "--duration", str(duration), "--texts", str(texts_file), "--prefix", prefix,
                        "--out", str(out)], check=True, cwd=ROOT)
        result: dict[str, object] = json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)
    return result


def overload(model_env: Mapping[str, str], texts_file: Path, saturation: float, duration: float) -> dict[str, object]:
    """Unloaded p99 at 0.3x saturation, then 2x saturation; the outbox checked against the review answers."""
    with product_defaults(model_env) as (env, outbox):
        with served(env, ready_timeout_s=600) as (url, _pid):
            port = int(url.rsplit(":", 1)[1])
            unloaded = open_loop(port, texts_file, 0.3 * saturation, 10.0, "u")
            loaded = open_loop(port, texts_file, 2.0 * saturation, duration, "o")
        # The server has stopped: everything it answered was stored before the answer.
        with sqlite3.connect(outbox) as db:
            queued = [r[0] for r in db.execute("SELECT ticket_id FROM queue")]
    review = [*unloaded.pop("review_ids"), *loaded.pop("review_ids")]  # type: ignore[misc]
    answered = [*unloaded.pop("answered_ids"), *loaded.pop("answered_ids")]  # type: ignore[misc]
    refused = {**unloaded.pop("refused_ids"), **loaded.pop("refused_ids")}  # type: ignore[dict-item]
    counts = Counter(queued)
    unanswered = set(queued) - set(review)
    audit_rate = get_settings().decisions.audit_rate
    statuses = loaded["statuses"]
    assert isinstance(statuses, dict)
    return {"saturation_per_s": saturation, "unloaded": unloaded, "overloaded": loaded,
            "p99_ratio": float(loaded["p99_ms"]) / float(unloaded["p99_ms"]),  # type: ignore[arg-type]
            "timeouts": sum(n for k, n in statuses.items() if k in ("client_timeout", "503")),
            "answered_total": len(answered), "answered_duplicates": len(answered) - len(set(answered)),
            "review_answered": len(review), "outbox_rows": len(queued),
            "review_lost": len(set(review) - set(queued)), "outbox_duplicates": sum(n - 1 for n in counts.values()),
            # In the outbox without a `review` answer: auto-routed tickets of the decision log's random audit sample
            # (they go to review by design), and anything else (should be none).
            "outbox_audit_sample": sum(in_audit_sample(t, audit_rate) for t in unanswered),
            "outbox_unanswered": sum(not in_audit_sample(t, audit_rate) for t in unanswered),
            "outbox_unanswered_client_saw": dict(Counter(refused.get(t, "200") for t in unanswered
                                                         if not in_audit_sample(t, audit_rate)))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=None, help="saved classifier dir (default: @champion)")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--overload-duration", type=float, default=30.0)
    parser.add_argument("--saturation", type=float, default=None,
                        help="req/s of one process measured before: skip phases 1-2, run the overload phase alone")
    parser.add_argument("--skip-workers", action="store_true", help="leave out phase 2 (--workers 2)")
    parser.add_argument("--texts", type=int, default=14_000,
                        help="distinct test-split texts the requests cycle through (more = fewer repeated words for "
                             "the baseline's per-word n-gram memory)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench_scale.json")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("benchmark: needs wrk (apt-get install -y wrk)")

    texts = real_texts(args.texts, seed=3, split="test", max_chars=2000)
    bodies = Path(tempfile.mkstemp(suffix=".jsonl")[1])
    bodies.write_text("\n".join(json.dumps({"tickets": [{"id": f"b{i}", "text": t}]}) for i, t in enumerate(texts)))
    texts_file = Path(tempfile.mkstemp(suffix=".json")[1])
    texts_file.write_text(json.dumps(texts))
    env = {"OMP_NUM_THREADS": "1"}
    if args.model_dir:
        env["TRIAGE_SERVING__MODEL_DIR"] = str(args.model_dir.resolve())
    results: dict[str, object] = {"cpu": cpu_info(), "cores": os.cpu_count(),
                                  "load_average_1m_before": os.getloadavg()[0], "concurrency": 8,
                                  "duration_s": args.duration, "model": str(args.model_dir or "@champion"),
                                  "distinct_texts": len(texts),
                                  "server_settings": "product defaults: decision log on, review on (Label Studio "
                                                     "unreachable: tickets wait in the outbox)"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        if args.saturation:
            print(f"3. overload only: 0.3x then 2x {args.saturation:.0f} req/s", flush=True)
            results["overload"] = overload(env, texts_file, args.saturation, args.overload_duration)
            results["load_average_1m_after"] = os.getloadavg()[0]
            out = args.out.with_name(args.out.stem + "_overload.json")
            out.write_text(json.dumps(results, indent=2))
            report(results)
            return
        print("1. one process: /healthz then /v1/score", flush=True)
        with product_defaults(env) as (served_env, _), served(served_env, ready_timeout_s=600) as (url, pid):
            wrk(url, "/v1/score", bodies, 8, 3)  # warm-up
            health = wrk(url, "/healthz", bodies, 8, args.duration, pid)
            one = wrk(url, "/v1/score", bodies, 8, args.duration, pid)
        results["healthz"], results["score_1_worker"] = health, one
        results["score_over_healthz"] = one["requests_per_s"] / health["requests_per_s"]
        if not args.skip_workers:
            print("2. --workers 2: /v1/score", flush=True)
            with product_defaults(env) as (served_env, _), \
                    served(served_env, ready_timeout_s=600, args=["--workers", "2"]) as (url, _pid):
                wrk(url, "/v1/score", bodies, 8, 3)
                two = wrk(url, "/v1/score", bodies, 8, args.duration)
            results["score_2_workers"] = two
            results["workers_2_over_1"] = two["requests_per_s"] / one["requests_per_s"]
        if one.get("host_cpu_busy"):
            # With every core already this busy at one process, N processes at the same CPU per request can at best
            # fill the rest: the ratio's ceiling on this host (wrk included, as it shares the cores).
            results["workers_ceiling_on_this_host"] = 1.0 / one["host_cpu_busy"]
        args.out.write_text(json.dumps(results, indent=2))  # the HTTP figures survive a failing overload phase
        print("3. overload: 0.3x then 2x the saturation rate measured in 1.", flush=True)
        results["overload"] = overload(env, texts_file, one["requests_per_s"], args.overload_duration)
        results["load_average_1m_after"] = os.getloadavg()[0]
        args.out.write_text(json.dumps(results, indent=2))
        report(results)
        print(f"written to {args.out}")
    finally:
        bodies.unlink(missing_ok=True)
        texts_file.unlink(missing_ok=True)


def report(r: dict[str, object]) -> None:
    """The figures as a small table."""
    print(f"CPU {r['cpu']['model']} x {r['cores']}; load average {r['load_average_1m_before']:.1f} -> "  # type: ignore[index]
          f"{r['load_average_1m_after']:.1f} (cores shared with other work); wrk concurrency 8, "
          f"{r['duration_s']:.0f} s, model {r['model']}; {r['server_settings']}")
    if "healthz" in r:
        print(f"{'phase':<18}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'CPU ms/req':>12}{'loop ms/req':>13}"
              f"{'host busy':>11}{'wrk':>6}")
        for name in ("healthz", "score_1_worker", "score_2_workers"):
            m = r.get(name)
            if not isinstance(m, dict):
                continue
            print(f"{name:<18}{m['requests_per_s']:>8.0f}{m['p50_ms']:>9.1f}{m['p99_ms']:>9.1f}{m['non_2xx']:>9.0f}"
                  f"{m.get('server_cpu_ms_per_request', float('nan')):>12.3f}"
                  f"{m.get('event_loop_cpu_ms_per_request', float('nan')):>13.3f}"
                  f"{m.get('host_cpu_busy', float('nan')):>11.0%}{m.get('wrk_cpu_share', float('nan')):>6.0%}")
        print(f"/v1/score over /healthz: {r['score_over_healthz']:.0%} (target >= 50%)"
              + (f"; 2 workers over 1: {r['workers_2_over_1']:.2f}x (target >= 1.7x)" if "workers_2_over_1" in r
                 else ""))
        if "workers_ceiling_on_this_host" in r:
            print(f"one process keeps the host's cores {r['score_1_worker']['host_cpu_busy']:.0%} busy (wrk included), "  # type: ignore[index]
                  f"so more processes can reach at most {r['workers_ceiling_on_this_host']:.2f}x on this host")
    o = r["overload"]
    assert isinstance(o, dict)
    print(f"saturation (wrk, concurrency 8): {o['saturation_per_s']:.0f} req/s")
    for name in ("unloaded", "overloaded"):
        m = o[name]
        print(f"open loop {name:<11} offered {m['offered_per_s']:>5.0f}/s sent {m['achieved_send_per_s']:>5.0f}/s "
              f"(send lag p99 {m['send_lag_p99_ms']:.0f} ms) answered {m['answered_per_s']:>5.0f}/s "
              f"p50 {m['p50_ms']:>7.1f} ms p99 {m['p99_ms']:>7.1f} ms statuses {m['statuses']}, "
              f"{m['connections_opened']} connections")
    print(f"overload p99 / unloaded p99 = {o['p99_ratio']:.2f} (target <= 3); timeouts/503 {o['timeouts']} (target 0); "
          f"review items answered {o['review_answered']}, in outbox {o['outbox_rows']}, lost {o['review_lost']}, "
          f"duplicated {o['outbox_duplicates']}; auto-routed audit sample in outbox {o['outbox_audit_sample']}; "
          f"in outbox but not answered {o['outbox_unanswered']} (client saw {o['outbox_unanswered_client_saw']})")


if __name__ == "__main__":
    main()
