"""Benchmark: `triage score --engine ray` backfill throughput with 1 and 2 workers, and parity with plain scoring.

Usage: .venv/bin/python benchmarks/bench_backfill.py [--tickets 100000] [--parity 1000]
Writes `--tickets` real texts from ../shared/datasets (all of them, cycled when fewer) to a JSONL file, scores it
with the registered @champion via `triage score --engine ray --workers N` for N = 1 and 2 (a local Ray runtime
each; tickets/s over the whole command and over the chunks after the first, when every actor is up, as the
command reports it), kills a third 2-worker run with SIGKILL (driver and Ray runtime) once a quarter of its parts
exist and runs it again (every id once, in input order, rows equal to the uninterrupted run), and checks that the
first `--parity` tickets give the same rows as a plain `triage score`. Prints the figures with the CPU and the
load average (the 2 cores are shared), writes results/bench_backfill.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, TRIAGE, real_texts
from benchmarks.hardware import cpu_info


def triage(*args: str) -> tuple[float, str]:
    """Run the CLI; (wall seconds, its stderr)."""
    started = time.perf_counter()
    done = subprocess.run([TRIAGE, *args], cwd=ROOT, capture_output=True, text=True, check=False,
                          env={**os.environ, "RAY_AUTH_MODE": "disabled", "TRIAGE_LOG_LEVEL": "WARNING"})
    if done.returncode != 0:
        sys.exit(f"benchmark: triage {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started, done.stderr


def resume_after_kill(source: Path, work: Path, n: int, chunk_size: int, reference: Path) -> dict[str, object]:
    """Start a 2-worker backfill, kill -9 it and its Ray runtime once some parts exist, run it again; compare."""
    out = work / "killed.jsonl"
    parts = out.with_name(out.name + ".parts")
    args = [TRIAGE, "score", str(source), "--engine", "ray", "--workers", "2", "--chunk-size", str(chunk_size),
            "-o", str(out)]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "TRIAGE_LOG_LEVEL": "WARNING"}
    first = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    chunks = -(-n // chunk_size)
    deadline = time.monotonic() + 900
    while len(list(parts.glob("part-*.jsonl"))) < max(1, chunks // 4):
        if first.poll() is not None or time.monotonic() > deadline:
            sys.exit("benchmark: the backfill to kill ended or stalled before a quarter of its parts")
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # the driver and the local Ray runtime it started
    first.wait()
    written = len(list(parts.glob("part-*.jsonl")))
    wall, _ = triage(*args[1:])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    ids = [r["id"] for r in rows]
    expected = [json.loads(line)["id"] for line in source.read_text().splitlines()]
    reference_rows = [json.loads(line) for line in reference.read_text().splitlines()]
    return {"chunks": chunks, "parts_before_kill": written, "rerun_wall_s": round(wall, 1), "rows": len(rows),
            "duplicate_ids": len(ids) - len(set(ids)), "missing_ids": len(set(expected) - set(ids)),
            "in_input_order": ids == expected,
            "rows_equal_to_uninterrupted_run": sum(a == b for a, b in zip(rows, reference_rows, strict=False))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--parity", type=int, default=1000)
    parser.add_argument("--chunk-size", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench_backfill.json")
    args = parser.parse_args()

    texts = [t for t in real_texts(args.tickets, seed=5, max_chars=2000) if t.strip()]
    distinct = len(texts)
    texts = (texts * (args.tickets // max(distinct, 1) + 1))[: args.tickets]
    results: dict[str, object] = {"cpu": cpu_info(), "load_average_1m_before": os.getloadavg()[0],
                                  "tickets": len(texts), "distinct_texts": distinct}
    with tempfile.TemporaryDirectory(prefix="triage-backfill-bench-") as tmp:
        work = Path(tmp)
        source = work / "tickets.jsonl"
        source.write_text("".join(json.dumps({"id": f"r{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
        for workers in (1, 2):
            out = work / f"ray-{workers}.jsonl"
            wall, log = triage("score", str(source), "--engine", "ray", "--workers", str(workers), "--chunk-size",
                               str(args.chunk_size), "-o", str(out))
            reported = re.search(r"in ([0-9.]+)s", log)
            phases = re.search(r"first chunk ([0-9.]+)s, the other chunks ([0-9.]+)s", " ".join(log.split()))
            scoring_s = float(phases.group(2)) if phases else None
            results[f"workers_{workers}"] = {
                "wall_s": round(wall, 1), "tickets_per_s": round(len(texts) / wall, 1),
                "command_reported_s": float(reported.group(1)) if reported else None,
                "startup_to_first_chunk_s": float(phases.group(1)) if phases else None, "other_chunks_s": scoring_s,
                # Chunks after the first, when every actor is up: the part that more workers divide.
                "scoring_tickets_per_s": round((len(texts) - args.chunk_size) / scoring_s, 1) if scoring_s else None,
                "rows": sum(1 for _ in out.open())}
            print(f"{workers} worker(s): {results[f'workers_{workers}']}", flush=True)
        one, two = results["workers_1"], results["workers_2"]
        assert isinstance(one, dict) and isinstance(two, dict)
        results["workers_2_over_1"] = round(two["tickets_per_s"] / one["tickets_per_s"], 2)
        if one["scoring_tickets_per_s"] and two["scoring_tickets_per_s"]:
            results["scoring_workers_2_over_1"] = round(two["scoring_tickets_per_s"] / one["scoring_tickets_per_s"], 2)

        results["resume_after_kill"] = resume_after_kill(source, work, len(texts), args.chunk_size,
                                                         work / "ray-2.jsonl")
        print(f"resume after kill -9: {results['resume_after_kill']}", flush=True)

        sample = work / "sample.jsonl"
        sample.write_text("".join(source.read_text().splitlines(keepends=True)[: args.parity]))
        triage("score", str(sample), "-o", str(work / "plain.jsonl"))
        triage("score", str(sample), "--engine", "ray", "-o", str(work / "ray-sample.jsonl"))
        plain = [json.loads(line) for line in (work / "plain.jsonl").read_text().splitlines()]
        ray_rows = [json.loads(line) for line in (work / "ray-sample.jsonl").read_text().splitlines()]
        results["parity"] = {"tickets": len(plain), "identical_rows": sum(a == b for a, b in zip(plain, ray_rows,
                                                                                                strict=True))}
    results["load_average_1m_after"] = os.getloadavg()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
