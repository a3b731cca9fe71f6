"""Backfill parts without Ray: a chunk scorer writes the API's fields; parts join in order; state guards resume."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from serving.schemas import ResultOut
from triage.errors import DataError, TriageError
from triage.models.base import Classifier, LoadedModel
from triage_cli.score import ChunkScorer, _model_files, _state, join_parts, part_name, read_tickets


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
