"""Benchmark: the decision log and `triage report` on 100,000 real texts, and API throughput with the log on vs off.

Usage: PYTHONPATH=. .venv/bin/python benchmarks/bench_decisions.py [--n 100000] [--train 20000] [--duration 15]

1. Trains a baseline with the project's own code on a subsample of the shared datasets' train split.
2. Scores `--n` real texts (drawn from every shared dataset, with replacement once the pool is exhausted), and
   records them through the decision log's `Recorder` with fake timestamps spread uniformly over 8 weeks (texts
   stored, 2% audit sample). Injects expert labels for a sample: the datasets' own labels stand in for the experts
   (30% of review decisions and every audit-sampled auto decision; a fifth of them get a second expert who agrees
   85% of the time), labelled after an exponential wait.
3. Builds the drift reference (the model's scores on 3,000 training texts) and runs `triage report` over the 8
   weeks: report time, and the log's size per 1,000 decisions with texts and after `purge` + VACUUM (no texts).
4. Serves the saved baseline with `triage serve` and measures single-ticket requests/s with the log off and on,
   two servers side by side (log off, log on) loaded in turn by wrk, `--bursts` per round, the order alternating;
   the acceptance bound is on >= 95% of off. Each round is a fresh pair of processes, and the pairs are the
   independent samples (a process keeps its own speed, within about +-5%, for its life): the per-pair ratios and a
   95% interval of their mean are reported.
Prints the figures and writes results/bench_decisions.json (and the report under results/bench_decisions/).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_http_load import _phase
from benchmarks.bench_scale import wrk
from benchmarks.common import ROOT, served
from benchmarks.hardware import cpu_info
from training.baseline import BaselineParams, fit
from triage.data.schema import Example
from triage.data.sources import load_all
from triage.data.splits import split_examples
from triage.decisions.analytics import Period
from triage.decisions.drift import DriftReference, reference_path
from triage.decisions.recorder import Recorder
from triage.decisions.report import write_report
from triage.decisions.store import DecisionStore, ExpertLabel
from triage.scorer import Scorer
from triage.settings import DecisionsSettings, get_settings
from triage.tickets import Ticket

START = datetime(2026, 10, 5)
WEEKS = 8


def train_model(examples: list[Example], n_train: int, rng: np.random.Generator) -> tuple[object, float]:
    """A baseline fitted on `n_train` train-split examples (validation: 5,000); returns it and the seconds."""
    splits = split_examples(examples)
    tr = [splits["train"][i] for i in rng.permutation(len(splits["train"]))[:n_train]]
    va = [splits["validation"][i] for i in rng.permutation(len(splits["validation"]))[:5000]]
    t0 = time.perf_counter()
    clf = fit(tr, va, get_settings().load_policy(), BaselineParams(n_jobs=1))
    return clf, time.perf_counter() - t0


def expert_labels(store: DecisionStore, picked: dict[str, Example], rng: np.random.Generator) -> int:
    """Labels from the datasets for the picked tickets (ticket id -> example), joined by the store."""
    rows = store.decisions_between(None, None, columns=["ticket_id", "decided_at", "severity"])
    when = {r["ticket_id"]: r["decided_at"] for r in rows}
    labels, aid = [], 0
    for tid, ex in picked.items():
        cats = tuple(sorted(c for c, v in ex.labels.items() if v == 1))
        experts = 2 if rng.random() < 0.2 else 1
        for e in range(experts):
            said = cats
            if e == 1 and rng.random() < 0.15:
                said = (str(rng.choice(["spam", "hate", "harassment", "fraud"])),)
            aid += 1
            wait = timedelta(hours=float(rng.exponential(6.0)))
            labels.append(ExpertLabel(aid, tid, f"expert-{e}", said, ex.severity, when[tid] + wait, "sync"))
    return store.record_labels(labels)


def db_bytes(store: DecisionStore, path: Path) -> int:
    """The SQLite file's size after a checkpoint (WAL folded in)."""
    with store.engine.connect() as conn:
        conn.execute(sa.text("PRAGMA wal_checkpoint(TRUNCATE)"))
    return path.stat().st_size


def throughput(model_dir: Path, texts: list[str], duration: float, rounds: int, concurrency: int,
               home: Path, bursts: int = 4) -> dict[str, object]:
    """Requests/s and CPU per request with the log off and on, in the same run.

    Each round starts two servers side by side, one with the log off and one with it on, and loads them in turn
    (`bursts` bursts of `duration` s each, the order alternating), so host drift and the luck of a process start
    (memory layout, hash seeds) bias neither side; only the loaded server runs (the idle one waits on its socket).
    The load comes from wrk (C, two threads), as in the API benchmark, so the client takes little of the host's
    CPU (a Python client takes about a core of a 2-core host, and then every millisecond the log's writer process
    spends is taken from the client or the server); without wrk on PATH, from the Python client. Each burst's
    on/off ratio is reported beside the means; the API process's CPU per request and the writer process's are
    measured apart.
    """
    import psutil

    bodies = [json.dumps({"tickets": [{"id": f"b{i}", "text": t}]}).encode() for i, t in enumerate(texts)]
    bodies_file = home / "bodies.jsonl"
    bodies_file.write_bytes(b"\n".join(bodies) + b"\n")
    use_wrk = shutil.which("wrk") is not None

    def load(url: str, pid: int, seconds: float) -> dict[str, float]:
        if use_wrk:
            return wrk(url, "/v1/score", bodies_file, concurrency, seconds)
        return _phase(int(url.rsplit(":", 1)[1]), pid, bodies, concurrency, seconds)

    def measured(url: str, pid: int) -> dict[str, float]:
        api = psutil.Process(pid)
        children = api.children(recursive=True)  # the log's writer process
        api0, kids0 = sum(api.cpu_times()[:2]), sum(sum(p.cpu_times()[:2]) for p in children)
        m = load(url, pid, duration)
        time.sleep(1.0)  # let the writer flush what the burst queued: its CPU counts
        n = max(m["requests"], 1)
        m["api_cpu_ms_per_request"] = (sum(api.cpu_times()[:2]) - api0) * 1000 / n
        m["writer_cpu_ms_per_request"] = (sum(sum(p.cpu_times()[:2]) for p in children) - kids0) * 1000 / n
        m["server_cpu_ms_per_request"] = m["api_cpu_ms_per_request"] + m["writer_cpu_ms_per_request"]
        return m

    runs: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    logged = 0
    for r in range(rounds):
        base = {"TRIAGE_LABELSTUDIO__ENABLED": "false", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT),
                "TRIAGE_SERVING__MODEL_DIR": str(model_dir)}
        with served({**base, "TRIAGE_HOME": str(home / f"api-off-{r}"), "TRIAGE_DECISIONS__ENABLED": "false"},
                    ready_timeout_s=900) as off_server, \
                served({**base, "TRIAGE_HOME": str(home / f"api-on-{r}"), "TRIAGE_DECISIONS__ENABLED": "true"},
                       ready_timeout_s=900) as on_server:
            servers = {"off": off_server, "on": on_server}
            for mode in ("off", "on"):
                load(*servers[mode], 3.0)  # warm-up
            for k in range(bursts):
                for mode in (("off", "on") if (r + k) % 2 == 0 else ("on", "off")):
                    runs[mode].append(measured(*servers[mode]))
        store = DecisionStore(f"sqlite:///{home / f'api-on-{r}' / 'decisions.db'}")
        logged += store.count()
        store.close()
    off = float(np.mean([m["requests_per_s"] for m in runs["off"]]))
    on = float(np.mean([m["requests_per_s"] for m in runs["on"]]))
    paired = [b["requests_per_s"] / a["requests_per_s"] for a, b in zip(runs["off"], runs["on"], strict=True)]
    # A server process keeps its own speed for its life (identical log-off servers differ by up to 5%, with hash
    # seeds fixed and address randomisation off): the rounds, each a fresh pair, are the independent samples.
    per_round = [float(np.mean([m["requests_per_s"] for m in runs["on"][r * bursts:(r + 1) * bursts]])
                       / np.mean([m["requests_per_s"] for m in runs["off"][r * bursts:(r + 1) * bursts]]))
                 for r in range(rounds)]

    def cpu(mode: str, key: str) -> float:
        return float(np.median([m[key] for m in runs[mode]]))

    cpu_off, cpu_on = cpu("off", "server_cpu_ms_per_request"), cpu("on", "server_cpu_ms_per_request")
    return {"runs": runs, "load": "wrk" if use_wrk else "python client", "decisions_logged": logged,
            "requests_on": sum(m["requests"] for m in runs["on"]), "off_requests_per_s": off,
            "on_requests_per_s": on, "on_vs_off": on / off, "burst_ratios": [round(x, 4) for x in paired],
            "median_burst_ratio": float(np.median(paired)), "within_5_percent": on >= 0.95 * off,
            "round_ratios": [round(x, 4) for x in per_round], "round_ratio_interval_95": round_interval(per_round),
            "off_cpu_ms_per_request": cpu_off, "on_cpu_ms_per_request": cpu_on,
            "off_api_cpu_ms_per_request": cpu("off", "api_cpu_ms_per_request"),
            "on_api_cpu_ms_per_request": cpu("on", "api_cpu_ms_per_request"),
            "on_writer_cpu_ms_per_request": cpu("on", "writer_cpu_ms_per_request"),
            "cpu_bound_on_vs_off": cpu_off / cpu_on, "cpu_bound_within_5_percent": cpu_off / cpu_on >= 0.95}


def round_interval(ratios: list[float]) -> list[float] | None:
    """A 95% t-interval of the mean on/off ratio over server pairs (None with fewer than two)."""
    if len(ratios) < 2:
        return None
    from scipy import stats

    mean, sem = float(np.mean(ratios)), float(stats.sem(ratios))
    half = float(stats.t.ppf(0.975, len(ratios) - 1)) * sem
    return [mean - half, mean + half]


def print_api(api: dict[str, object]) -> None:
    """The on/off API figures."""
    ratios = ", ".join(f"{x:.1%}" for x in api["burst_ratios"])  # type: ignore[attr-defined]
    print(f"API single-ticket requests/s ({api['load']}): log off {api['off_requests_per_s']:.0f}, on "
          f"{api['on_requests_per_s']:.0f} ({api['on_vs_off']:.1%}; bound >= 95%: "
          f"{'met' if api['within_5_percent'] else 'NOT met'}); burst by burst {ratios} (median "
          f"{api['median_burst_ratio']:.1%}); {api['decisions_logged']:,} decisions logged for "
          f"{api['requests_on']:,.0f} requests and warm-ups")
    interval = api["round_ratio_interval_95"]
    print("server pair by server pair: " + ", ".join(f"{x:.1%}" for x in api["round_ratios"])  # type: ignore[attr-defined]
          + (f" (95% interval of the mean {interval[0]:.1%} to {interval[1]:.1%})" if interval else ""))  # type: ignore[index]
    print(f"server CPU per request: log off {api['off_cpu_ms_per_request']:.2f} ms, on "
          f"{api['on_cpu_ms_per_request']:.2f} ms = API process {api['on_api_cpu_ms_per_request']:.2f} ms (off "
          f"{api['off_api_cpu_ms_per_request']:.2f}) + writer process {api['on_writer_cpu_ms_per_request']:.3f} ms "
          f"(CPU-bound throughput on/off {api['cpu_bound_on_vs_off']:.1%}; bound >= 95%: "
          f"{'met' if api['cpu_bound_within_5_percent'] else 'NOT met'})")


def api_only(clf: object, examples: list[Example], args: argparse.Namespace, rng: np.random.Generator) -> None:
    """Just the API measurement (writes results/bench_decisions_api.json)."""
    work = Path(tempfile.mkdtemp(prefix="bench-decisions-api-"))
    clf.save(work / "model")  # type: ignore[attr-defined]
    texts = [examples[i].text[:2000] for i in rng.permutation(len(examples))[:2000]]
    api = throughput(work / "model", texts, args.duration, args.rounds, args.concurrency, work, args.bursts)
    args.out.mkdir(parents=True, exist_ok=True)
    record = {**api, "cpu": cpu_info(), "cpu_count": os.cpu_count()}
    (args.out / "bench_decisions_api.json").write_text(json.dumps(record, indent=2, default=str))
    print_api(api)
    shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--train", type=int, default=20_000)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=6, help="server pairs (off and on) started in turn")
    parser.add_argument("--bursts", type=int, default=2, help="loads of each server per round")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    parser.add_argument("--api-only", action="store_true", help="only the log on/off API measurement")
    args = parser.parse_args()
    settings = get_settings()
    if settings.datasets_dir is None:
        sys.exit("benchmark: ../shared/datasets not found (set TRIAGE_DATASETS_DIR)")
    rng = np.random.default_rng(42)
    policy = settings.load_policy()
    examples = load_all(settings.datasets_dir)
    clf, fit_s = train_model(examples, args.train, rng)
    print(f"baseline fitted on {args.train} examples in {fit_s:.0f} s", flush=True)
    if args.api_only:
        api_only(clf, examples, args, rng)
        return

    work = Path(tempfile.mkdtemp(prefix="bench-decisions-"))
    db = work / "decisions.db"
    store = DecisionStore(f"sqlite:///{db}")
    store.migrate()
    idx = rng.choice(len(examples), size=args.n, replace=args.n > len(examples))
    picked_examples = [examples[i] for i in idx]
    scorer = Scorer(clf, policy)  # type: ignore[arg-type]
    recorder = Recorder(store, DecisionsSettings(store_text=True, audit_rate=0.02, batch_size=2000), policy.version)
    offsets = np.sort(rng.uniform(0, WEEKS * 7 * 86400, size=args.n))
    t_score = t_record = 0.0
    picked: dict[str, Example] = {}
    for start in range(0, args.n, 1000):
        batch = picked_examples[start:start + 1000]
        tickets = [Ticket(f"B-{start + k}", ex.text[:20_000], {"source": ex.source}) for k, ex in enumerate(batch)]
        t0 = time.perf_counter()
        scored = scorer.score(tickets, validate=False)
        t1 = time.perf_counter()
        for k, s in enumerate(scored):
            recorder.record([s], "bench-baseline", "1", "key-bench",
                            START + timedelta(seconds=float(offsets[start + k])))
        recorder.flush()
        t_record += time.perf_counter() - t1
        t_score += t1 - t0
        for k, s in enumerate(scored):
            if s.decision.route == "review" and rng.random() < 0.3:
                picked[s.ticket.id] = batch[k]
    audit = store.decisions_between(None, None, columns=["ticket_id", "audit_sample"])
    for r in audit:
        if r["audit_sample"]:
            picked[r["ticket_id"]] = picked_examples[int(r["ticket_id"][2:])]
    t0 = time.perf_counter()
    n_labels = expert_labels(store, picked, rng)
    t_labels = time.perf_counter() - t0
    print(f"scored {args.n} texts in {t_score:.0f} s, recorded in {t_record:.1f} s "
          f"({args.n / t_record:.0f} decisions/s); {n_labels} expert labels on {len(picked)} tickets", flush=True)

    home = work / "home"
    train_texts = [e.text for e in split_examples(examples)["train"]]
    sample = [train_texts[i] for i in rng.permutation(len(train_texts))[:3000]]
    t0 = time.perf_counter()
    ref = DriftReference.build("bench-baseline/1", clf.card.categories, sample,  # type: ignore[attr-defined]
                               clf.predict(sample).categories)  # type: ignore[attr-defined]
    ref.save(reference_path(home, "bench-baseline", "1"))
    t_ref = time.perf_counter() - t0
    out_report = args.out / "bench_decisions"
    shutil.rmtree(out_report, ignore_errors=True)
    t0 = time.perf_counter()
    page = write_report(store, Period(START, START + timedelta(weeks=WEEKS)), policy, out_report, home=home)
    t_report = time.perf_counter() - t0
    print(f"report over {WEEKS} weeks in {t_report:.1f} s -> {page}", flush=True)

    with_text = db_bytes(store, db)
    purged = store.purge_texts(timedelta(days=0), now=START + timedelta(weeks=WEEKS + 1))
    with store.engine.connect() as conn:
        conn.execute(sa.text("VACUUM"))
    without_text = db_bytes(store, db)
    store.close()

    model_dir = work / "model"
    clf.save(model_dir)  # type: ignore[attr-defined]
    texts = [ex.text[:2000] for ex in picked_examples[:2000]]
    api = throughput(model_dir, texts, args.duration, args.rounds, args.concurrency, work, args.bursts)

    results = {
        "decisions": args.n, "weeks": WEEKS, "train_examples": args.train, "fit_s": round(fit_s, 1),
        "score_s": round(t_score, 1), "record_s": round(t_record, 2),
        "record_decisions_per_s": round(args.n / t_record), "expert_labels": n_labels,
        "labelled_tickets": len(picked), "label_insert_s": round(t_labels, 1),
        "drift_reference_s": round(t_ref, 1), "report_s": round(t_report, 1),
        "log_bytes_per_1000_with_text": round(with_text / args.n * 1000),
        "log_bytes_per_1000_without_text": round(without_text / args.n * 1000), "texts_purged": purged,
        "api": api, "cpu": cpu_info(), "cpu_count": os.cpu_count(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_decisions.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"log size per 1,000 decisions: {results['log_bytes_per_1000_with_text'] / 1024:.0f} KiB with texts, "
          f"{results['log_bytes_per_1000_without_text'] / 1024:.0f} KiB without")
    print_api(api)
    print(f"written to {args.out / 'bench_decisions.json'}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
