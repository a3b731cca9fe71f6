"""Reviewers' annotations as training examples, and how much reviewers agree.

One example per task. Each reviewer counts once (their latest annotation); skipped and deleted annotations
do not count. Each category is decided by majority of the reviewers; a tie goes to the most recent
annotation, and so does severity when tied. With one reviewer this is simply their latest answer, the same
rule `read_labelstudio_export` applies to a file export. Every reviewer's own answer stays in `meta`.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from triage.data.imports import read_labelstudio_export
from triage.data.schema import Example
from triage.errors import DataError
from triage.review.agreement import Agreement, agreement
from triage.review.outbox import AnnotationRecord
from triage.taxonomy import Policy

logger = logging.getLogger(__name__)
SOURCE = "labelstudio"


@dataclass(frozen=True)
class _Vote:
    record: AnnotationRecord
    example: Example


def _votes(records: Sequence[AnnotationRecord], policy: Policy) -> dict[int, list[_Vote]]:
    """Latest valid annotation of each reviewer, per task (validated by the shared export reader)."""
    latest: dict[tuple[int, str], AnnotationRecord] = {}
    for r in records:
        if r.deleted or r.was_cancelled or r.task_id is None:
            continue
        key = (int(r.task_id), r.annotator)
        if key not in latest or (r.updated_at, r.annotation_id) > (latest[key].updated_at, latest[key].annotation_id):
            latest[key] = r
    # Each reviewer's annotation as a one-annotation task, so the shared reader validates and maps it.
    items = [(task_id, r, {"id": task_id, "data": {"text": r.text, "ticket_id": r.ticket_id},
                           "annotations": [{"id": r.annotation_id, "result": json.loads(r.result),
                                            "completed_by": r.annotator, "updated_at": r.updated_at}]})
             for (task_id, _), r in latest.items()]
    try:
        parsed = read_labelstudio_export([t for _, _, t in items], policy)
    except DataError:
        parsed = None  # one bad annotation: read them one by one to leave out only the bad ones
    if parsed is not None and len(parsed) != len(items):
        parsed = None
    out: dict[int, list[_Vote]] = {}
    for k, (task_id, r, task) in enumerate(items):
        if parsed is not None:
            ex = parsed[k]
        else:
            try:
                ex = read_labelstudio_export([task], policy)[0]
            except DataError as err:
                logger.warning("annotation %s of task %s left out: %s", r.annotation_id, task_id, err)
                continue
        out.setdefault(task_id, []).append(_Vote(r, ex))
    for votes in out.values():
        votes.sort(key=lambda v: (v.record.updated_at, v.record.annotation_id))
    return out


def _majority(values: Sequence[object]) -> object:
    """Most common value; ties go to the latest (values are in time order)."""
    counts = Counter(values)
    best = max(counts.values())
    return next(v for v in reversed(values) if counts[v] == best)


def labelled_examples(records: Sequence[AnnotationRecord], policy: Policy) -> list[Example]:
    """One Example per reviewed task (rule in the module docstring), with reviewers and versions in meta."""
    out = []
    for task_id, votes in sorted(_votes(records, policy).items()):
        labels = {c: int(_majority([v.example.labels.get(c, 0) for v in votes]))  # type: ignore[call-overload]
                  for c in policy.category_names}
        sevs = [v.example.severity for v in votes if v.example.severity is not None]
        severity = str(_majority(sevs)) if sevs else None
        agree = sum(dict(v.example.labels) == labels for v in votes) / len(votes)
        last = votes[-1].record
        out.append(Example(
            text=last.text,
            labels=labels,
            severity=severity,
            source=SOURCE,
            meta={
                "ticket_id": last.ticket_id or "",
                "task_id": str(task_id),
                "annotation_ids": ",".join(str(v.record.annotation_id) for v in votes),
                "annotators": ",".join(v.record.annotator for v in votes),
                "annotated_at": last.updated_at,
                "model_version": last.model_version or "",
                "policy_version": last.policy_version or "",
                "reviewer_agreement": f"{agree:.3f}",
                "by_annotator": json.dumps({
                    v.record.annotator: {"categories": sorted(c for c, y in v.example.labels.items() if y),
                                         "severity": v.example.severity,
                                         "rationale": v.record.rationale}
                    for v in votes
                }, sort_keys=True),
            },
        ))
    return out


def reviewer_agreement(records: Sequence[AnnotationRecord], policy: Policy) -> Agreement:
    """Agreement over tasks with at least two reviewers (their latest valid annotations)."""
    by_task = {
        t: [(frozenset(c for c, y in v.example.labels.items() if y), v.example.severity) for v in votes]
        for t, votes in _votes(records, policy).items()
    }
    return agreement(by_task, policy.category_names)
