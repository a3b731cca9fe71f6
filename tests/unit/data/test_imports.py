"""Imports of a team's own files: labelled CSV/JSONL, Label Studio exports, unlabelled tickets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from triage.data.imports import read_labelled_file, read_labelstudio_export, read_tickets_file
from triage.errors import DataError
from triage.taxonomy import load_policy

POLICY = load_policy()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_with_categories_makes_every_policy_category_known(tmp_path: Path) -> None:
    f = write(tmp_path / "t.csv", 'id,text,categories,severity,language,queue\n'
              'a1,"you are worthless, go away","harassment, hate",medium,en,games\n'
              'a2,hello there,,none,fr,\n'
              'a3,no categories column value means known negatives,none,none,,\n')
    ex = read_labelled_file(f, POLICY)
    assert len(ex) == 3
    assert ex[0].labels["harassment"] == 1 and ex[0].labels["hate"] == 1 and ex[0].labels["spam"] == 0
    assert set(ex[0].labels) == set(POLICY.category_names)
    assert ex[0].severity == "medium" and ex[0].meta == {"id": "a1", "queue": "games"}
    assert ex[1].language == "fr" and not any(ex[1].labels.values())
    assert ex[2].labels and not any(ex[2].labels.values())
    assert ex[0].source == "import:t"


def test_jsonl_lists_unknown_categories_and_absent_categories(tmp_path: Path) -> None:
    rows = [
        {"text": "buy cheap pills now", "categories": ["spam"], "unknown_categories": ["fraud"], "weight": 0.5},
        {"text": "only a severity here", "severity": "low"},
        {"text": "pipe|separated", "categories": "spam|fraud", "id": 7},
    ]
    f = write(tmp_path / "t.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    ex = read_labelled_file(f, POLICY)
    assert "fraud" not in ex[0].labels and ex[0].labels["spam"] == 1 and ex[0].weight == 0.5
    assert ex[1].labels == {} and ex[1].severity == "low"
    assert ex[2].labels["fraud"] == 1 and ex[2].meta["id"] == "7"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("u.csv", "text,categories\nok,hate\nbad,hateful\n", r"row 2 \(line 3\): unknown category 'hateful'"),
        ("m.csv", "text,categories\n,hate\n", r"row 1 \(line 2\): missing text"),
        ("s.csv", "text,severity\nhi,extreme\n", r"row 1 \(line 2\): unknown severity 'extreme'"),
        ("h.csv", "body,categories\nhi,hate\n", r"header has no 'text' column"),
        ("j.jsonl", '{"text": "ok"}\n{"text": "x",\n', r"line 2: bad JSON"),
        ("a.jsonl", '["not", "an", "object"]\n', r"line 1: expected a JSON object"),
        ("w.jsonl", '{"text": "x", "weight": -1}\n', r"line 1: weight must be positive"),
        ("c.jsonl", '{"text": "x", "categories": {"hate": 1}}\n', r"line 1: 'categories' must be"),
        ("b.jsonl", '{"text": "x", "categories": ["hate"], "unknown_categories": ["hate"]}\n', "both"),
        ("t.txt", "text\nhi\n", r"unsupported file type '.txt'"),
    ],
)
def test_labelled_file_errors_name_the_file_and_row(tmp_path: Path, name: str, content: str,
                                                    message: str) -> None:
    f = write(tmp_path / name, content)
    with pytest.raises(DataError, match=message) as err:
        read_labelled_file(f, POLICY)
    assert str(f) in str(err.value)


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_labelled_file(tmp_path / "nope.csv", POLICY)


def test_unlabelled_tickets_keep_ids_and_metadata(tmp_path: Path) -> None:
    f = write(tmp_path / "t.csv", "text,channel,id\nfirst,email,\nsecond,chat,T-9\n")
    assert read_tickets_file(f) == [("1", "first", {"channel": "email"}), ("T-9", "second", {"channel": "chat"})]
    j = write(tmp_path / "t.jsonl", '{"id": 5, "text": "x", "tags": ["a"]}\n{"text": "y"}\n')
    assert read_tickets_file(j) == [("5", "x", {"tags": ["a"]}), ("2", "y", {})]
    dup = write(tmp_path / "d.jsonl", '{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n')
    with pytest.raises(DataError, match=r"line 2: duplicate id 'a' \(first at line 1\)"):
        read_tickets_file(dup)
    empty = write(tmp_path / "e.csv", "id,text\n1,  \n")
    with pytest.raises(DataError, match=r"row 1 \(line 2\): missing text"):
        read_tickets_file(empty)


def choice(control: str, *choices: str) -> dict:
    return {"from_name": control, "to_name": "text", "type": "choices", "value": {"choices": list(choices)}}


EXPORT = [
    {
        "id": 11,
        "data": {"text": "I will find where you live", "ticket_id": "T-1"},
        "annotations": [
            {"id": 100, "completed_by": 3, "was_cancelled": False, "updated_at": "2026-01-02T10:00:00.000000Z",
             "result": [choice("category", "harassment"), choice("severity", "medium")]},
            {"id": 101, "completed_by": {"id": 4, "email": "rev@example.org"}, "was_cancelled": False,
             "updated_at": "2026-01-03T09:00:00.000000Z",
             "result": [choice("category", "harassment", "violence"), choice("severity", "high")]},
            {"id": 102, "completed_by": 5, "was_cancelled": True, "updated_at": "2026-01-04T09:00:00Z",
             "result": []},
        ],
    },
    {"id": 12, "data": {"text": "skipped by everyone"},
     "annotations": [{"id": 103, "was_cancelled": True, "result": []}]},
    {"id": 13, "data": {"text": "not yet reviewed"}, "annotations": []},
    {"id": 14, "data": {"text": "nice photo!", "language": "de"},
     "annotations": [{"id": 104, "completed_by": 3, "updated_at": "2026-01-05T00:00:00Z",
                      "result": [choice("severity", "none")]}]},
]


def test_labelstudio_export_uses_latest_kept_annotation(tmp_path: Path) -> None:
    f = write(tmp_path / "export.json", json.dumps(EXPORT))
    ex = read_labelstudio_export(f, POLICY)
    assert [e.text for e in ex] == ["I will find where you live", "nice photo!"]
    first = ex[0]
    assert first.labels["violence"] == 1 and first.labels["harassment"] == 1 and first.labels["hate"] == 0
    assert first.severity == "high"
    assert first.meta == {"task_id": "11", "annotation_id": "101", "annotator": "rev@example.org",
                          "updated_at": "2026-01-03T09:00:00.000000Z", "ticket_id": "T-1"}
    assert ex[1].language == "de" and ex[1].severity == "none" and not any(ex[1].labels.values())
    assert read_labelstudio_export(EXPORT, POLICY) == ex


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ({"id": 1, "data": {"text": "x"}, "annotations": [{"id": 9, "result": [choice("category", "scam")]}]},
         r"task #0 \(id 1\), annotation 9: unknown category 'scam'"),
        ({"id": 1, "data": {"text": "x"}, "annotations": [{"id": 9, "result": [choice("severity", "max")]}]},
         r"annotation 9: unknown severity 'max'"),
        ({"id": 1, "data": {"text": "x"},
          "annotations": [{"id": 9, "result": [choice("severity", "low", "high")]}]},
         r"annotation 9: expected one severity choice"),
        ({"id": 2, "data": {"body": "x"}, "annotations": []}, r"task #0 \(id 2\): data.text: missing text"),
        ({"id": 3}, r"task #0 \(id 3\): no 'data' object"),
    ],
)
def test_labelstudio_errors_name_task_and_annotation(task: dict, message: str) -> None:
    with pytest.raises(DataError, match=message):
        read_labelstudio_export([task], POLICY)


def test_labelstudio_bad_json_file(tmp_path: Path) -> None:
    f = write(tmp_path / "export.json", "[{\"id\": 1,\n")
    with pytest.raises(DataError, match=r"export.json: bad JSON at line 2"):
        read_labelstudio_export(f, POLICY)
    g = write(tmp_path / "obj.json", "{}")
    with pytest.raises(DataError, match="expected a JSON list of tasks"):
        read_labelstudio_export(g, POLICY)
