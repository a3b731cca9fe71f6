"""Backfills: score a file of tickets with Ray Data, resumable, in the API's wire format.

The input is cut into chunks of `chunk_size` tickets. Each chunk is scored by one Ray actor (one model per actor)
and written to its own part file under `<out>.parts/` by an atomic rename, so after an interruption (even kill -9)
a rerun scores only the chunks without a part and no row is ever written twice. The parts are joined into `<out>`
(JSONL, or Parquet by the suffix) once all exist. The state directory also holds the model the backfill started
with, so a resumed run never mixes two model versions; it refuses when the input or the chunking changed.

On an existing cluster (`address`), the actors need this package installed (the cluster image); the model travels
to them through Ray's object store, not a shared disk.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from triage.errors import DataError, TriageError
from triage.models.base import LoadedModel
from triage.tickets import ScoredTicket

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
# Fields whose values are mappings: JSON text in Parquet (their keys differ between models and rows).
_NESTED = ("categories", "severity", "expected_precision", "model")
RAY_START_TIMEOUT_S = 120.0
RAY_START_ATTEMPTS = 2
GCS_WAIT_ENV = "RAY_gcs_server_port_wait_time_s"  # Ray's own knob: seconds to wait for its GCS server


def result_row(item: ScoredTicket, model_name: str, model_version: str) -> dict[str, Any]:
    """One scored ticket with the fields of the API's results, plus which model scored it."""
    d = item.decision
    model: dict[str, str] = {"name": model_name, "version": model_version}
    if item.path is not None:
        model["path"] = item.path
    return {
        "id": item.ticket.id, "categories": dict(item.scores.categories), "category": d.category,
        "severity": {"level": d.severity, "scores": dict(item.scores.severity)}, "priority": d.priority,
        "route": d.route, "reasons": list(d.reasons), "prediction_set": list(d.prediction_set),
        "expected_precision": dict(d.expected_precision), "model": model,
    }


def read_tickets(path: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """(id, text, metadata) from CSV, JSONL or Parquet (`text` and optional `id` columns)."""
    if path.suffix.lower() != ".parquet":
        from triage.data.imports import read_tickets_file

        return read_tickets_file(path)
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    if "text" not in table.column_names:
        raise DataError(f"{path}: no `text` column (columns: {', '.join(table.column_names)})")
    rows = table.to_pylist()
    out, seen = [], set()
    for n, row in enumerate(rows, 1):
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{path}: row {n}: empty or missing text")
        tid = str(row["id"]) if row.get("id") not in (None, "") else str(n)
        if tid in seen:
            raise DataError(f"{path}: row {n}: duplicate id {tid!r}")
        seen.add(tid)
        out.append((tid, text, {k: v for k, v in row.items() if k not in ("id", "text")}))
    return out


def _digest(tickets: Sequence[tuple[str, str, Mapping[str, Any]]]) -> str:
    h = hashlib.sha256()
    for tid, text, _ in tickets:
        h.update(tid.encode())
        h.update(b"\0")
        h.update(text.encode())
        h.update(b"\1")
    return h.hexdigest()[:16]


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def part_name(chunk: int) -> str:
    """File name of a chunk's part (sortable)."""
    return f"part-{chunk:07d}.jsonl"


class ChunkScorer:
    """A Ray Data actor: loads the model once, scores whole chunks, writes each chunk's part atomically."""

    def __init__(self, model_files: Mapping[str, bytes], policy_path: str | None, parts: str, name: str,
                 version: str, max_text_chars: int) -> None:
        from triage.models.examples import with_example_heads
        from triage.models.io import load_classifier
        from triage.scorer import Scorer, TicketLimits
        from triage.taxonomy import load_policy

        policy = load_policy(policy_path)
        # The files go as soon as the model is in memory: Ray kills actors without running finalizers.
        with tempfile.TemporaryDirectory(prefix="triage-backfill-model-") as tmp:
            for rel, data in model_files.items():
                target = Path(tmp) / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            classifier = with_example_heads(load_classifier(tmp), policy)  # seeded categories, as the API
        self.scorer = Scorer(classifier, policy, TicketLimits(10**9, max_text_chars))
        self.parts, self.name, self.version = Path(parts), name, version

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        from triage.tickets import Ticket

        done = []
        for chunk, payload in zip(batch["chunk"], batch["payload"], strict=True):
            tickets = [Ticket(tid, text, meta) for tid, text, meta in json.loads(str(payload))]
            lines = [json.dumps(result_row(item, self.name, self.version))
                     for item in self.scorer.score(tickets, validate=False)]
            _atomic_write(self.parts / part_name(int(chunk)), "\n".join(lines) + "\n")
            done.append(len(lines))
        return {"chunk": batch["chunk"], "scored": done}


@dataclass(frozen=True)
class BackfillReport:
    """What a backfill did."""

    tickets: int
    chunks: int
    resumed_chunks: int
    seconds: float
    out: Path
    # Of `seconds`: starting Ray and the actors (model loaded in each) until the first chunk is done, and from
    # there until the last (the part more workers speed up).
    startup_seconds: float = 0.0
    scoring_seconds: float = 0.0


def _model_files(loaded: LoadedModel) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory(prefix="triage-backfill-export-") as tmp:
        loaded.classifier.save(Path(tmp))
        return {str(p.relative_to(tmp)): p.read_bytes() for p in Path(tmp).rglob("*") if p.is_file()}


def _state(parts: Path, manifest: dict[str, Any]) -> None:
    """Create the state directory, or check that a resumed run matches the one that started it."""
    path = parts / MANIFEST
    if path.is_file():
        before = json.loads(path.read_text())
        changed = [k for k in ("input_digest", "tickets", "chunk_size", "model_version", "model_name")
                   if before.get(k) != manifest[k]]
        if changed:
            raise TriageError(f"{parts} belongs to another backfill ({', '.join(changed)} differ: "
                              f"{ {k: before.get(k) for k in changed} } vs { {k: manifest[k] for k in changed} }); "
                              "remove it or choose another --out")
        return
    parts.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, json.dumps(manifest, indent=2))


def chunks_of(tickets: Sequence[Any], size: int) -> Iterator[tuple[int, Sequence[Any]]]:
    """(chunk number, tickets) pairs."""
    for n, start in enumerate(range(0, len(tickets), size)):
        yield n, tickets[start : start + size]


def join_parts(parts: Path, n_chunks: int, out: Path) -> int:
    """Write every part, in chunk order, into `out` (JSONL or Parquet); returns the number of rows."""
    files = [parts / part_name(c) for c in range(n_chunks)]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise TriageError(f"{len(missing)} chunks have no part yet ({', '.join(missing[:5])}...); run again to resume")
    if out.suffix.lower() == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = [json.loads(line) for f in files for line in f.read_text().splitlines() if line]
        for row in rows:
            for key in _NESTED:
                row[key] = json.dumps(row[key], sort_keys=True)
        pq.write_table(pa.Table.from_pylist(rows), out)
        return len(rows)
    count = 0
    tmp = out.with_name(f".{out.name}.tmp")
    with tmp.open("w", encoding="utf-8") as sink:
        for f in files:
            text = f.read_text()
            count += text.count("\n")
            sink.write(text)
    os.replace(tmp, out)
    return count


def start_ray(address: str | None, workers: int, timeout_s: float = RAY_START_TIMEOUT_S,
              attempts: int = RAY_START_ATTEMPTS) -> None:
    """Connect to `address`, or start a local Ray runtime with `workers` CPUs, patient with a loaded host.

    Ray waits 30 s by default for its GCS server to come up and for the raylet to register; on a busy host both can
    take longer. `timeout_s` is the GCS budget (Ray's `RAY_gcs_server_port_wait_time_s`, unless set already); the
    raylet wait is fixed inside Ray, so a start-up that still fails is shut down and tried again, `attempts` times
    in all. No dashboard, no log forwarding: fewer processes to start.
    """
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault(GCS_WAIT_ENV, str(max(1, round(timeout_s))))
    init: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if address:
        init["address"] = address
    else:
        init["num_cpus"] = workers
    for attempt in range(1, attempts + 1):
        try:
            ray.init(**init)
            return
        except Exception as err:  # Ray raises bare Exception/RuntimeError/ConnectionError on start-up timeouts
            ray.shutdown()
            if attempt == attempts:
                raise TriageError(f"Ray did not start in {attempts} attempt(s) ({type(err).__name__}: {err}); "
                                  "on a loaded host try a longer --ray-start-timeout") from err
            log.warning("Ray start-up attempt %d of %d failed (%s: %s); trying again", attempt, attempts,
                        type(err).__name__, err)


def backfill(file: Path, out: Path, loaded: LoadedModel, policy_path: str | None, max_text_chars: int,
             address: str | None = None, workers: int = 2, chunk_size: int = 1000,
             on_progress: Callable[[int, int], None] | None = None, start_timeout_s: float = RAY_START_TIMEOUT_S,
             start_attempts: int = RAY_START_ATTEMPTS) -> BackfillReport:
    """Score `file` into `out` with Ray Data (local Ray unless `address`); resumes from `<out>.parts/`."""
    import time

    import ray

    started = time.perf_counter()
    tickets = read_tickets(file)
    if not tickets:
        raise DataError(f"{file}: no tickets")
    long = [t[0] for t in tickets if len(t[1]) > max_text_chars]
    if long:
        raise DataError(f"{len(long)} tickets over the {max_text_chars:,}-character limit: {', '.join(long[:10])}")
    parts = out.with_name(out.name + ".parts")
    manifest = {"input": str(file), "input_digest": _digest(tickets), "tickets": len(tickets),
                "chunk_size": chunk_size, "model_name": loaded.name, "model_version": loaded.version}
    _state(parts, manifest)
    all_chunks = list(chunks_of(tickets, chunk_size))
    pending = [(c, part) for c, part in all_chunks if not (parts / part_name(c)).is_file()]
    resumed = len(all_chunks) - len(pending)
    done_tickets = sum(len(part) for c, part in all_chunks if (parts / part_name(c)).is_file())
    if on_progress:
        on_progress(done_tickets, len(tickets))
    startup = scoring = 0.0
    if pending:
        start_ray(address, workers, start_timeout_s, start_attempts)
        ray.data.DataContext.get_current().enable_progress_bars = False
        items = [{"chunk": c, "payload": json.dumps([list(t) for t in part])} for c, part in pending]
        ds = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            ChunkScorer, batch_size=1, compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1,
            fn_constructor_kwargs={"model_files": _model_files(loaded), "policy_path": policy_path,
                                   "parts": str(parts.resolve()), "name": loaded.name,
                                   "version": loaded.version, "max_text_chars": max_text_chars})
        first_done: float | None = None
        for row in ds.iter_rows():
            first_done = first_done or time.perf_counter()
            done_tickets += int(row["scored"])
            if on_progress:
                on_progress(done_tickets, len(tickets))
        if first_done is not None:
            startup, scoring = first_done - started, time.perf_counter() - first_done
    rows = join_parts(parts, len(all_chunks), out)
    if rows != len(tickets):
        raise TriageError(f"{out}: {rows} rows for {len(tickets)} tickets")
    return BackfillReport(len(tickets), len(all_chunks), resumed, time.perf_counter() - started, out, startup, scoring)
