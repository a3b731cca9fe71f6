"""Soak: the API at half its measured saturation for a while, Label Studio reachable, every ticket id new.

Usage: .venv/bin/python benchmarks/soak.py [--minutes 30] [--concurrency 8] [--retention-s 90] [--purge-interval-s 10]
                                           [--review-per-s 2.5] [--audit-rate 0.005] [--rate R] [--out FILE]
Starts a real Label Studio (scripts/labelstudio.sh, a free port, its own data dir, as the integration tests do) and
`triage serve` with a baseline fitted on the shipped example tickets, the review queue delivering to that Label Studio,
and a short outbox retention (TRIAGE_OPS__RETENTION_DAYS = retention-s / 86400, purged every purge-interval-s).
Measures saturation for 10 s (ids cycling over 200, so it adds at most 200 rows), then sends single-ticket requests
paced at 50% of it (or at --rate), each with a ticket id never used before: the outbox can only stay bounded because
done rows are deleted after the retention period, not because ids repeat.

Label Studio is the slow part: on the shared 2-core host it took 5-9 tasks/s while the API ran at 150-215 req/s (a
third of the tasks need a second reviewer, set with one request per task; the safety-net pull exports every task),
far below the two thirds of the example tickets that route to review. So the load mixes texts: each example text is
scored once first (its route is deterministic), and a request carries a review-routed text with the probability that
makes --review-per-s review tickets per second, an auto-routed one otherwise; the decision log's audit sample
(--audit-rate of the auto tickets, by id hash) adds its tickets to the queue too. Both count in the expected steady
state.

Every 5 s it samples the server's RSS and open fds, the outbox file size (review.db + -wal + -shm, each recorded) and
its rows by state (waiting = accepted, not yet in Label Studio; sent; rejected). It prints and writes: first-third vs
last-third drift and the slope after warm-up (two retention+purge periods) of each, the largest outbox, the expected
steady number of done rows (tickets queued per second x (retention + purge interval / 2)) against the observed, and
how many tasks Label Studio holds at the end. If Label Studio cannot take the review tickets at that rate, the waiting
rows grow: that shows in the waiting figures and their slope (lower --review-per-s or --rate to what it sustains).
A 24-hour equivalent is a matter of requests, not hours: the JSON records how many were served.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import httpx
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_http_load import _phase
from benchmarks.common import ROOT, served

LS_SCRIPT = ROOT / "scripts" / "labelstudio.sh"
SAMPLE_S = 5.0


def _model_dir(into: Path) -> Path:
    from training.baseline import BaselineParams, fit
    from triage.data.sources import load_examples
    from triage.data.splits import split_examples
    from triage.settings import get_settings

    splits = split_examples(load_examples())
    fit(splits["train"], splits["validation"], get_settings().load_policy(),
        BaselineParams(min_df=1, n_jobs=1)).save(into)
    return into


def _port_pair() -> int:
    """A loopback port free together with the next one (Label Studio silently moves to port+1 when busy)."""
    while True:
        with socket.socket() as a, socket.socket() as b:
            a.bind(("127.0.0.1", 0))
            port = int(a.getsockname()[1])
            try:
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port


@contextmanager
def labelstudio(data: Path) -> Iterator[tuple[str, str, int]]:
    """A Label Studio of its own (the project's script): (URL, API token, pid); stopped afterwards."""
    url = f"http://127.0.0.1:{_port_pair()}"
    token = f"soak-{random.getrandbits(64):016x}"
    env = {**{k: v for k, v in os.environ.items() if k != "TRIAGE_LS_PORT"}, "TRIAGE_LABELSTUDIO__URL": url,
           "TRIAGE_LS_DATA": str(data), "TRIAGE_LS_TOKEN": token, "TRIAGE_LS_PASSWORD": "soak-password"}

    def script(command: str) -> None:
        done = subprocess.run(["bash", str(LS_SCRIPT), command], env=env, capture_output=True, text=True,
                              timeout=900, check=False)
        if done.returncode != 0:
            sys.exit(f"soak: labelstudio.sh {command} failed ({done.returncode}):\n{done.stderr[-2000:]}")

    script("up")
    try:
        yield url, token, int((data / "labelstudio.pid").read_text().strip())
    finally:
        script("down")


def _ls_tasks(url: str, token: str, project_id: str | None) -> int | None:
    """Tasks in the review project (None when it cannot be read)."""
    if project_id is None:
        return None
    try:
        resp = httpx.get(f"{url}/api/projects/{project_id}/", headers={"Authorization": f"Token {token}"}, timeout=60)
        return int(resp.json()["task_number"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


def _outbox_rows(path: Path) -> tuple[dict[str, int], str | None]:
    """Rows by state, and the project id; a short read (closed at once, so checkpoints are never held back)."""
    db = sqlite3.connect(path, timeout=5)
    try:
        states = dict(db.execute("SELECT state, COUNT(*) FROM queue GROUP BY state").fetchall())
        pid = db.execute("SELECT value FROM meta WHERE key = 'project_id'").fetchone()
    finally:
        db.close()
    return ({s: int(states.get(s, 0)) for s in ("waiting", "sent", "rejected")}, pid[0] if pid else None)


async def _paced(port: int, body_for: Callable[[], bytes], stop_at: float, interval_s: float,
                 counts: dict[str, int]) -> None:
    """One keep-alive connection sending a request every `interval_s` (open-loop pacing)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    next_at = time.perf_counter()
    try:
        while time.perf_counter() < stop_at:
            body = body_for()
            writer.write((f"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
            await writer.drain()
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            answer = await reader.readexactly(length)
            ok = b" 200 " in status
            counts["served" if ok else "errors"] += 1
            counts["review"] += ok and b'"route":"review"' in answer
            next_at += interval_s
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    finally:
        writer.close()


def _trend(samples: list[dict[str, float]], key: str, warm_up_s: float) -> dict[str, float]:
    """First-third and last-third means, their drift, and the slope per 10 minutes after warm-up."""
    third = max(1, len(samples) // 3)
    first = float(np.mean([s[key] for s in samples[:third]]))
    last = float(np.mean([s[key] for s in samples[-third:]]))
    steady = [s for s in samples if s["t_s"] >= warm_up_s]
    slope = (float(np.polyfit([s["t_s"] for s in steady], [s[key] for s in steady], 1)[0]) * 600
             if len(steady) >= 3 else float("nan"))
    return {"first_third": first, "last_third": last, "drift": last - first, "min": min(s[key] for s in samples),
            "max": max(s[key] for s in samples), "slope_per_10min_after_warm_up": slope}


def _routes(url: str, texts: list[str]) -> list[str]:
    """The route of each text (scored once, in requests of 200; these tickets enter the queue like any other)."""
    routes: list[str] = []
    for i in range(0, len(texts), 200):
        tickets = [{"id": f"probe{i + j}", "text": t} for j, t in enumerate(texts[i:i + 200])]
        resp = httpx.post(f"{url}/v1/score", json={"tickets": tickets}, timeout=300)
        resp.raise_for_status()
        routes += [r["route"] for r in resp.json()["results"]]
    return routes


def soak(minutes: float, concurrency: int, retention_s: float, purge_s: float, rate: float | None,
         review_per_s: float, audit_rate: float) -> dict[str, object]:
    """Label Studio up, the API serving into it; saturation, then a paced run with unique ids and samples."""
    from triage.data.sources import load_examples
    from triage.decisions.recorder import in_audit_sample

    texts = [ex.text for ex in load_examples()]
    sat_bodies = [json.dumps({"tickets": [{"id": f"sat{i % 200}", "text": texts[i % len(texts)]}]}).encode()
                  for i in range(1000)]
    serial = itertools.count()
    pools: dict[str, list[str]] = {"review": [], "auto": []}
    share = [0.0]  # probability of a review text, set once saturation is known
    queued_by_audit = [0]

    def unique_body() -> bytes:
        n = next(serial)
        route = "review" if random.random() < share[0] else "auto"
        ticket_id = f"soak-{n}"
        queued_by_audit[0] += route == "auto" and in_audit_sample(ticket_id, audit_rate)
        return json.dumps({"tickets": [{"id": ticket_id, "text": random.choice(pools[route])}]}).encode()

    work = Path(tempfile.mkdtemp(prefix="triage-soak-"))
    outbox = work / "home" / "review.db"
    with labelstudio(work / "labelstudio") as (ls_url, token, ls_pid):
        env = {"TRIAGE_SERVING__MODEL_DIR": str(_model_dir(work / "model")), "TRIAGE_HOME": str(work / "home"),
               "TRIAGE_LABELSTUDIO__ENABLED": "true", "TRIAGE_LABELSTUDIO__URL": ls_url,
               "TRIAGE_LABELSTUDIO__API_TOKEN": token, "TRIAGE_LABELSTUDIO__PROJECT_TITLE": "soak",
               "TRIAGE_OPS__RETENTION_DAYS": repr(retention_s / 86400), "TRIAGE_OPS__PURGE_INTERVAL_S": str(purge_s),
               "TRIAGE_DECISIONS__AUDIT_RATE": repr(audit_rate), "OMP_NUM_THREADS": "1"}
        with served(env) as (url, pid):
            port = int(url.rsplit(":", 1)[1])
            for text, route in zip(texts, _routes(url, texts), strict=True):
                pools[route].append(text)
            _phase(port, pid, sat_bodies, concurrency, 3.0)
            saturation = _phase(port, pid, sat_bodies, concurrency, 10.0)
            target = rate if rate is not None else 0.5 * saturation["requests_per_s"]
            share[0] = min(1.0, review_per_s / target) if pools["review"] and pools["auto"] else float(
                bool(pools["review"]))
            proc, ls_proc = psutil.Process(pid), psutil.Process(ls_pid)
            samples: list[dict[str, float]] = []
            done = threading.Event()
            counts = {"served": 0, "errors": 0, "review": 0}

            def sample() -> None:
                t0 = time.monotonic()
                while not done.wait(SAMPLE_S):
                    files = {p.name: p.stat().st_size for p in outbox.parent.glob("review.db*")
                             if not p.name.endswith(".lock")}
                    rows, _ = _outbox_rows(outbox)
                    samples.append({"t_s": time.monotonic() - t0, "rss_mb": proc.memory_info().rss / 2**20,
                                    "fds": float(proc.num_fds()), "outbox_bytes": float(sum(files.values())),
                                    "db_bytes": float(files.get("review.db", 0)),
                                    "wal_bytes": float(files.get("review.db-wal", 0)),
                                    "done": float(rows["sent"] + rows["rejected"]),
                                    "rows": float(sum(rows.values())), **{k: float(v) for k, v in rows.items()},
                                    "served": float(counts["served"]), "review": float(counts["review"]),
                                    "ls_rss_mb": ls_proc.memory_info().rss / 2**20})

            before, _ = _outbox_rows(outbox)
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            t_start = time.perf_counter()

            async def run() -> None:
                stop_at = time.perf_counter() + minutes * 60
                await asyncio.gather(*[_paced(port, unique_body, stop_at, concurrency / target, counts)
                                       for _ in range(concurrency)])

            asyncio.run(run())
            elapsed = time.perf_counter() - t_start
            done.set()
            sampler.join()
            end_rows, project_id = _outbox_rows(outbox)
            with closing(sqlite3.connect(outbox, timeout=5)) as db:
                last_error = db.execute("SELECT last_error FROM queue WHERE state = 'waiting' AND last_error IS NOT "
                                        "NULL ORDER BY updated_at DESC LIMIT 1").fetchone()
            ls_tasks = _ls_tasks(ls_url, token, project_id)
    warm_up = 2 * (retention_s + purge_s)
    rows_per_s = (counts["review"] + queued_by_audit[0]) / elapsed
    steady = [s["done"] for s in samples if s["t_s"] >= warm_up]
    trends = {k: _trend(samples, k, warm_up) for k in ("rss_mb", "fds", "outbox_bytes", "db_bytes", "wal_bytes", "rows",
                                                         "waiting", "done", "ls_rss_mb")}
    return {
        "minutes": minutes, "concurrency": concurrency, "retention_s": retention_s, "purge_interval_s": purge_s,
        "saturation_req_per_s": saturation["requests_per_s"], "target_req_per_s": target,
        "rate_from": "--rate" if rate is not None else "50% of saturation",
        "served": counts["served"], "errors": counts["errors"], "achieved_req_per_s": counts["served"] / elapsed,
        "review_routed": counts["review"], "review_share": counts["review"] / max(1, counts["served"]),
        "review_texts": len(pools["review"]), "auto_texts": len(pools["auto"]), "audit_rate": audit_rate,
        "audit_sampled": queued_by_audit[0], "queued_rows_per_s": rows_per_s,
        "rows_before_soak": before, "rows_at_end": end_rows,
        "expected_steady_done_rows": {"low": rows_per_s * retention_s, "mean": rows_per_s * (retention_s + purge_s / 2),
                                 "high": rows_per_s * (retention_s + purge_s)},
        "observed_done_rows_after_warm_up": {"mean": float(np.mean(steady)) if steady else float("nan"),
                                        "max": max(steady, default=float("nan"))},
        "labelstudio_tasks_at_end": ls_tasks, "last_delivery_error": last_error[0] if last_error else None,
        "trends": trends,
        "rss_mb_first_last_third_drift": trends["rss_mb"]["drift"],
        "fds_min_max": [trends["fds"]["min"], trends["fds"]["max"]],
        "outbox_bytes_max": trends["outbox_bytes"]["max"], "samples": samples,
    }


def summary(out: dict) -> str:
    """The printed figures."""
    t = out["trends"]
    exp, obs = out["expected_steady_done_rows"], out["observed_done_rows_after_warm_up"]
    lines = [
        f"saturation {out['saturation_req_per_s']:.0f} req/s; soak at {out['target_req_per_s']:.1f} req/s "
        f"({out['rate_from']}) for {out['minutes']:g} min, unique ticket ids, Label Studio reachable, retention "
        f"{out['retention_s']:g} s, purge every {out['purge_interval_s']:g} s",
        f"served {out['served']} ({out['achieved_req_per_s']:.1f} req/s), {out['errors']} errors; "
        f"{out['review_routed']} routed to review ({out['review_share']:.1%}), {out['audit_sampled']} auto ones in the "
        f"audit sample: {out['queued_rows_per_s']:.2f} tickets/s into the review queue",
        f"server RSS {t['rss_mb']['first_third']:.1f} -> {t['rss_mb']['last_third']:.1f} MB (drift "
        f"{t['rss_mb']['drift']:+.1f} MB first vs last third; {t['rss_mb']['slope_per_10min_after_warm_up']:+.2f} "
        f"MB/10 min after warm-up); open fds {t['fds']['min']:.0f}-{t['fds']['max']:.0f}",
        f"outbox bytes max {t['outbox_bytes']['max'] / 2**20:.2f} MB, {t['outbox_bytes']['first_third'] / 2**20:.2f}"
        f" -> {t['outbox_bytes']['last_third'] / 2**20:.2f} MB first vs last third, "
        f"{t['outbox_bytes']['slope_per_10min_after_warm_up'] / 2**20:+.3f} MB/10 min after warm-up (largest "
        f"review.db {t['db_bytes']['max'] / 2**20:.2f} MB, -wal {t['wal_bytes']['max'] / 2**20:.2f} MB)",
        f"outbox done rows (sent + rejected): expected steady {exp['low']:.0f}-{exp['high']:.0f} (mean "
        f"{exp['mean']:.0f}: queued/s x (retention + purge/2)), observed after warm-up mean {obs['mean']:.0f} max "
        f"{obs['max']:.0f} (slope {t['done']['slope_per_10min_after_warm_up']:+.0f}/10 min); "
        f"waiting max {t['waiting']['max']:.0f} (slope {t['waiting']['slope_per_10min_after_warm_up']:+.0f}/10 min),"
        f" at the end {out['rows_at_end']}",
        f"Label Studio: {out['labelstudio_tasks_at_end']} tasks at the end; its RSS "
        f"{t['ls_rss_mb']['first_third']:.0f} -> {t['ls_rss_mb']['last_third']:.0f} MB; last delivery error of a "
        f"waiting row: {out['last_delivery_error'] or 'none'}",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--retention-s", type=float, default=90.0, help="outbox retention (seconds)")
    parser.add_argument("--purge-interval-s", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=None, help="requests/s instead of 50%% of saturation")
    parser.add_argument("--review-per-s", type=float, default=2.5, help="review-routed tickets per second")
    parser.add_argument("--audit-rate", type=float, default=0.005, help="the decision log's audit sample")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "soak.json")
    args = parser.parse_args()
    out = soak(args.minutes, args.concurrency, args.retention_s, args.purge_interval_s, args.rate, args.review_per_s,
               args.audit_rate)
    print(summary(out))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
