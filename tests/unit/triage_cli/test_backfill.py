"""Backfill parts without Ray: a chunk scorer writes the API's fields; parts join in order; state guards resume."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from serving.schemas import ResultOut
from triage.errors import DataError, TriageError
from triage.models.base import Classifier, LoadedModel
from triage_cli.score import (
    GCS_WAIT_ENV,
    ChunkScorer,
    _model_files,
    _state,
    join_parts,
    part_name,
    read_tickets,
    start_ray,
)


@pytest.fixture
def scorer(tiny_classifier: Classifier, tmp_path: Path) -> ChunkScorer:
    loaded = LoadedModel(tiny_classifier, "triage", "3", "champion", None, {})
    (tmp_path / "parts").mkdir()
    return ChunkScorer(_model_files(loaded), None, str(tmp_path / "parts"), "triage", "3", 20_000)


def test_chunk_scorer_writes_the_api_fields(scorer: ChunkScorer, tmp_path: Path) -> None:
    payload = json.dumps([["a", "win a free iphone now", {}], ["b", "thanks for the help", {"x": 1}]])
    out = scorer({"chunk": [4], "payload": [payload]})
    assert list(out["scored"]) == [2]
    rows = [json.loads(line) for line in (tmp_path / "parts" / part_name(4)).read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "b"]
    for row in rows:
        model = row.pop("model")
        assert model == {"name": "triage", "version": "3"}
        ResultOut.model_validate(row)  # every field the API returns, with the API's types
        assert set(row) == set(ResultOut.model_fields) - {"model"}


def test_chunk_scorer_leaves_no_model_files_behind(tiny_classifier: Classifier, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # Ray kills actors without finalizers: the model's temporary copy must be gone once the actor is built.
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    tempfile.tempdir = None  # re-read TMPDIR
    try:
        loaded = LoadedModel(tiny_classifier, "triage", "3", "champion", None, {})
        files = _model_files(loaded)
        actor = ChunkScorer(files, None, str(tmp_path), "triage", "3", 20_000)
        assert list((tmp_path / "tmp").iterdir()) == []
        out = actor({"chunk": [0], "payload": [json.dumps([["a", "win a free iphone now", {}]])]})
        assert list(out["scored"]) == [1]  # the model works without its files
    finally:
        tempfile.tempdir = None


def test_join_in_chunk_order_and_refuse_missing(scorer: ChunkScorer, tmp_path: Path) -> None:
    for chunk, text in ((1, "second"), (0, "first")):
        scorer({"chunk": [chunk], "payload": [json.dumps([[text, text, {}]])]})
    out = tmp_path / "out.jsonl"
    assert join_parts(tmp_path / "parts", 2, out) == 2
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["first", "second"]
    with pytest.raises(TriageError, match="1 chunks have no part yet"):
        join_parts(tmp_path / "parts", 3, out)
    parquet = tmp_path / "out.parquet"
    assert join_parts(tmp_path / "parts", 2, parquet) == 2
    table = pq.read_table(parquet).to_pylist()
    assert [r["id"] for r in table] == ["first", "second"]
    assert json.loads(table[0]["severity"])["level"] in ("none", "low", "medium", "high", "critical")


def test_resume_refuses_another_input_or_model(tmp_path: Path) -> None:
    manifest = {"input_digest": "abc", "tickets": 10, "chunk_size": 5, "model_name": "triage", "model_version": "1"}
    _state(tmp_path / "p", manifest)
    _state(tmp_path / "p", dict(manifest))  # the same backfill resumes
    with pytest.raises(TriageError, match="model_version differ"):
        _state(tmp_path / "p", {**manifest, "model_version": "2"})


def test_parquet_input(tmp_path: Path) -> None:
    path = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist([{"id": 7, "text": "hello", "lang": "en"}, {"id": None, "text": "x"}]), path)
    assert read_tickets(path) == [("7", "hello", {"lang": "en"}), ("2", "x", {"lang": None})]
    pq.write_table(pa.Table.from_pylist([{"body": "hello"}]), path)
    with pytest.raises(DataError, match="no `text` column"):
        read_tickets(path)


class FakeRay:
    """Stands in for the `ray` module's start-up calls: fails the first `failures` inits like a slow GCS does."""

    def __init__(self, failures: int) -> None:
        self.failures, self.inits, self.shutdowns = failures, [], 0
        self.started = False

    def is_initialized(self) -> bool:
        return self.started

    def init(self, **kwargs: object) -> None:
        self.inits.append(kwargs)
        if len(self.inits) <= self.failures:
            raise Exception("The current node timed out during startup.")
        self.started = True

    def shutdown(self) -> None:
        self.shutdowns += 1


def test_ray_start_retries_a_slow_start_with_a_longer_gcs_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    fake = FakeRay(failures=1)
    for name in ("init", "shutdown", "is_initialized"):
        monkeypatch.setattr(ray, name, getattr(fake, name))
    monkeypatch.delenv(GCS_WAIT_ENV, raising=False)
    start_ray(None, 2, timeout_s=300, attempts=2)
    assert fake.started and fake.shutdowns == 1 and len(fake.inits) == 2
    assert fake.inits[0] == {"include_dashboard": False, "log_to_driver": False, "num_cpus": 2}
    assert os.environ[GCS_WAIT_ENV] == "300"
    start_ray(None, 2)  # already running: nothing started again
    assert len(fake.inits) == 2


def test_ray_start_gives_up_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    fake = FakeRay(failures=5)
    for name in ("init", "shutdown", "is_initialized"):
        monkeypatch.setattr(ray, name, getattr(fake, name))
    monkeypatch.setenv(GCS_WAIT_ENV, "45")  # an operator's own budget is kept
    with pytest.raises(TriageError, match="did not start in 2 attempt"):
        start_ray("ray://head:10001", 2, timeout_s=120, attempts=2)
    assert fake.inits[0]["address"] == "ray://head:10001" and "num_cpus" not in fake.inits[0]
    assert os.environ[GCS_WAIT_ENV] == "45" and fake.shutdowns == 2
