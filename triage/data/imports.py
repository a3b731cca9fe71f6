"""Readers for a team's own files: labelled tickets (CSV/JSONL), Label Studio exports, and unlabelled tickets.

Labelled-file format (one ticket per CSV row or JSONL line):
  text                (required) the ticket text
  categories          (optional) the categories that apply: a JSON list, or names separated by ',', ';' or '|'.
                      When the field is present every policy category is *known*: listed ones are 1, the rest 0.
                      When it is absent (or null) the categories are unknown.
  unknown_categories  (optional) categories the labeller did not judge: removed from the known set
  severity            (optional) a policy severity name; empty = unknown
  language            (optional) ISO code, default "en"
  weight              (optional) positive number, default 1.0
  id                  (optional) kept in `meta["id"]`; every other field is kept in `meta` as text
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from triage.data.schema import Example
from triage.errors import DataError
from triage.taxonomy import Policy

logger = logging.getLogger(__name__)

_SPLIT = re.compile(r"[,;|]")
_RESERVED = {"text", "categories", "unknown_categories", "severity", "language", "weight", "source"}
Row = tuple[str, dict[str, Any]]  # (where, fields)


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    raise DataError(f"{path}: unsupported file type {suffix or '(none)'!r}; use .csv, .tsv or .jsonl")


def _rows(path: Path) -> Iterator[Row]:
    """(position, fields) for each CSV row or JSONL line; DataError names the line of bad JSON."""
    if not path.is_file():
        raise DataError(f"{path}: file does not exist")
    fmt = _format(path)
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
        if fmt == "jsonl":
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as err:
                    raise DataError(f"{path}: line {lineno}: bad JSON: {err.msg} (column {err.colno})") from err
                if not isinstance(obj, dict):
                    raise DataError(f"{path}: line {lineno}: expected a JSON object, got {type(obj).__name__}")
                yield f"line {lineno}", obj
        else:
            reader = csv.DictReader(fh, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            if not reader.fieldnames:
                raise DataError(f"{path}: empty file, expected a header row")
            if "text" not in [f.strip() for f in reader.fieldnames]:
                raise DataError(f"{path}: header has no 'text' column (found {', '.join(reader.fieldnames)})")
            for rowno, raw in enumerate(reader, 1):
                if None in raw:
                    raise DataError(f"{path}: row {rowno} (line {reader.line_num}): more fields than the header")
                yield f"row {rowno} (line {reader.line_num})", {k.strip(): v for k, v in raw.items()}


def _names(value: Any, field: str, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [n.strip() for n in _SPLIT.split(value) if n.strip()]
    if isinstance(value, list) and all(isinstance(n, str) for n in value):
        return [n.strip() for n in value if n.strip()]
    raise DataError(f"{where}: '{field}' must be a list of names or a separated string, got {value!r}")


def _labels(row: Mapping[str, Any], policy: Policy, where: str) -> dict[str, int]:
    if row.get("categories") is None:
        return {}
    known = policy.category_names
    listed = _names(row["categories"], "categories", where)
    unknown = _names(row.get("unknown_categories"), "unknown_categories", where)
    for name in (*listed, *unknown):
        if name not in known and name != "none":
            raise DataError(f"{where}: unknown category {name!r}; the policy has {', '.join(known)}")
    if "none" in listed and len(listed) > 1:
        raise DataError(f"{where}: 'none' cannot be combined with categories {listed}")
    both = sorted(set(listed) & set(unknown))
    if both:
        raise DataError(f"{where}: {both} listed both in categories and unknown_categories")
    return {c: int(c in listed) for c in known if c not in unknown}


def _severity(value: Any, policy: Policy, where: str) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    name = str(value).strip()
    if name not in policy.severity_names:
        raise DataError(f"{where}: unknown severity {name!r}; the policy has {', '.join(policy.severity_names)}")
    return name


def _weight(value: Any, where: str) -> float:
    if value is None or value == "":
        return 1.0
    try:
        w = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{where}: weight must be a number, got {value!r}") from None
    if not w > 0:
        raise DataError(f"{where}: weight must be positive, got {w}")
    return w


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: missing text")
    return value.strip()


def read_labelled_file(path: str | Path, policy: Policy) -> list[Example]:
    """A team's labelled tickets (CSV or JSONL, format in the module docstring) as examples."""
    p = Path(path)
    out = []
    for pos, row in _rows(p):
        where = f"{p}: {pos}"
        meta = {k: str(v) for k, v in row.items() if k not in _RESERVED and v is not None and v != ""}
        out.append(Example(
            text=_text(row.get("text"), where),
            labels=_labels(row, policy, where),
            severity=_severity(row.get("severity"), policy, where),
            source=str(row.get("source") or f"import:{p.stem}"),
            language=str(row.get("language") or "en"),
            weight=_weight(row.get("weight"), where),
            meta=meta,
        ))
    logger.info("read %d labelled tickets from %s", len(out), p)
    return out


def read_tickets_file(path: str | Path, missing_ids: Literal["number", "refuse", "namespace"] = "number",
                      ) -> list[tuple[str, str, dict[str, Any]]]:
    """Unlabelled tickets (CSV or JSONL with `text`, optional `id`) as (id, text, metadata) for batch scoring.

    A row without an `id` is numbered from 1 ("number"), refused with the columns the file has ("refuse"), or
    numbered under a hash of the file's bytes ("namespace": `<hash>:<n>`), so two files without ids never
    share an id.
    """
    p = Path(path)
    out: list[tuple[str, str, dict[str, Any]]] = []
    seen: dict[str, str] = {}
    prefix = hashlib.sha256(p.read_bytes()).hexdigest()[:12] + ":" if missing_ids == "namespace" else ""
    for n, (pos, row) in enumerate(_rows(p), 1):
        where = f"{p}: {pos}"
        text = _text(row.get("text"), where)
        raw_id = row.get("id")
        if (raw_id is None or raw_id == "") and missing_ids == "refuse":
            columns = ", ".join(repr(str(k)) for k in row) or "none"
            raise DataError(f"{where}: no ticket id; the file has the columns {columns}, and a ticket needs an "
                            "'id' column (or ask for ids namespaced by the file's hash)")
        ticket_id = f"{prefix}{n}" if raw_id is None or raw_id == "" else str(raw_id)
        if ticket_id in seen:
            raise DataError(f"{where}: duplicate id {ticket_id!r} (first at {seen[ticket_id]})")
        seen[ticket_id] = pos
        meta = {k: v for k, v in row.items() if k not in ("id", "text")}
        out.append((ticket_id, text, meta))
    return out


# ---------------------------------------------------------------------------------------------- Label Studio


def _when(annotation: Mapping[str, Any]) -> tuple[datetime, int]:
    stamp = annotation.get("updated_at") or annotation.get("created_at") or ""
    try:
        moment = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.now().astimezone().tzinfo)
    except ValueError:
        moment = datetime.min.replace(tzinfo=datetime.now().astimezone().tzinfo)
    ident = annotation.get("id")
    return moment, ident if isinstance(ident, int) else 0


def _choices(result: Sequence[Any], control: str, where: str) -> list[str] | None:
    """Choices picked in one control of an annotation, None when the control has no result."""
    picked: list[str] | None = None
    for item in result:
        if not isinstance(item, dict) or item.get("from_name") != control:
            continue
        value = item.get("value")
        choices = value.get("choices") if isinstance(value, dict) else None
        if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
            raise DataError(f"{where}: result for {control!r} has no list of choices")
        picked = [*(picked or []), *choices]
    return picked


def _load_export(path_or_list: str | Path | Sequence[Any]) -> tuple[str, list[Any]]:
    if isinstance(path_or_list, str | Path):
        p = Path(path_or_list)
        if not p.is_file():
            raise DataError(f"{p}: file does not exist")
        try:
            tasks = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise DataError(f"{p}: bad JSON at line {err.lineno}: {err.msg}") from err
        except UnicodeDecodeError as err:
            raise DataError(f"{p}: not UTF-8: {err.reason}") from err
        origin = str(p)
    else:
        tasks, origin = list(path_or_list), "<label studio export>"
    if not isinstance(tasks, list):
        raise DataError(f"{origin}: expected a JSON list of tasks, got {type(tasks).__name__}")
    return origin, tasks


def read_labelstudio_export(path_or_list: str | Path | Sequence[Any], policy: Policy,
                            category_control: str = "category", severity_control: str = "severity",
                            text_key: str = "text") -> list[Example]:
    """Reviewed tasks of a Label Studio JSON export as examples, from each task's latest kept annotation.

    Cancelled (skipped) annotations are ignored; a task without a kept annotation is left out. A submitted
    annotation with no category chosen (or only "none") means "no violation": every category is 0.
    """
    origin, tasks = _load_export(path_or_list)
    out = []
    skipped = 0
    for i, task in enumerate(tasks):
        where = f"{origin}: task #{i}"
        if not isinstance(task, dict):
            raise DataError(f"{where}: expected an object, got {type(task).__name__}")
        where = f"{origin}: task #{i} (id {task.get('id')})"
        data = task.get("data")
        if not isinstance(data, dict):
            raise DataError(f"{where}: no 'data' object")
        text = _text(data.get(text_key), f"{where}: data.{text_key}")
        annotations = task.get("annotations", task.get("completions", [])) or []
        if not isinstance(annotations, list):
            raise DataError(f"{where}: 'annotations' must be a list")
        kept = [a for a in annotations if isinstance(a, dict) and not a.get("was_cancelled")]
        if not kept:
            skipped += 1
            continue
        ann = max(kept, key=_when)
        where = f"{where}, annotation {ann.get('id')}"
        result = ann.get("result") or []
        if not isinstance(result, list):
            raise DataError(f"{where}: 'result' must be a list")
        picked = _choices(result, category_control, where) or []
        labels = _labels({"categories": [c for c in picked if c != "none"]}, policy, where)
        severities = _choices(result, severity_control, where)
        if severities is not None and len(severities) != 1:
            raise DataError(f"{where}: expected one severity choice, got {severities}")
        annotator = ann.get("completed_by")
        if isinstance(annotator, dict):
            annotator = annotator.get("email") or annotator.get("id")
        meta = {
            "task_id": str(task.get("id", "")),
            "annotation_id": str(ann.get("id", "")),
            "annotator": str(annotator if annotator is not None else ""),
            "updated_at": str(ann.get("updated_at") or ann.get("created_at") or ""),
        }
        for key in ("id", "ticket_id"):
            if key in data:
                meta["ticket_id"] = str(data[key])
        out.append(Example(
            text=text,
            labels=labels,
            severity=_severity(severities[0] if severities else None, policy, where),
            source="labelstudio",
            language=str(data.get("language") or "en"),
            meta=meta,
        ))
    logger.info("read %d reviewed tasks from %s (%d without a kept annotation)", len(out), origin, skipped)
    return out
