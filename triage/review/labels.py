"""Reviewers' annotations as training examples, and how much reviewers agree.

One example per task. Each reviewer counts once (their latest annotation); skipped, deleted and rejected
(empty or inconsistent) annotations do not count. When the reviewers agree, their answer is the label. When
they disagree, the task waits for adjudication and is not exported; once an adjudicator answers (in the
adjudication project), that answer is the label. With one reviewer this is simply their latest answer, the
same rule `read_labelstudio_export` applies to a file export. Every reviewer's own answer stays in `meta`.
"""

from __future__ import annotations

import json
import logging
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
        if r.deleted or r.was_cancelled or r.task_id is None or r.rejected_reason is not None:
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


def _answer(v: _Vote) -> tuple[frozenset[str], str | None]:
    return frozenset(c for c, y in v.example.labels.items() if y), v.example.severity


def _split(records: Sequence[AnnotationRecord]) -> tuple[list[AnnotationRecord], dict[int, AnnotationRecord]]:
    """Reviewers' annotations, and the latest valid adjudication of each review task."""
    reviews = [r for r in records if r.adjudicates_task is None]
    settled: dict[int, AnnotationRecord] = {}
    for r in records:
        if r.adjudicates_task is None or r.deleted or r.was_cancelled or r.rejected_reason is not None:
            continue
        old = settled.get(r.adjudicates_task)
        if old is None or (r.updated_at, r.annotation_id) > (old.updated_at, old.annotation_id):
            settled[r.adjudicates_task] = r
    return reviews, settled


def disagreements(records: Sequence[AnnotationRecord], policy: Policy) -> dict[int, list[AnnotationRecord]]:
    """Review tasks whose reviewers gave different answers (categories or severity): their annotations."""
    reviews, _ = _split(records)
    return {t: [v.record for v in votes] for t, votes in _votes(reviews, policy).items()
            if len({_answer(v) for v in votes}) > 1}


def labelled_examples(records: Sequence[AnnotationRecord], policy: Policy) -> list[Example]:
    """One Example per reviewed task (rule in the module docstring), with reviewers and versions in meta.

    A task whose reviewers disagree is left out until adjudicated; then the adjudicator's answer is its label.
    """
    reviews, settled = _split(records)
    judged = _votes(list(settled.values()), policy)
    out = []
    for task_id, votes in sorted(_votes(reviews, policy).items()):
        adjudicated = ""
        if len({_answer(v) for v in votes}) > 1:
            settled_by = settled.get(task_id)
            final = judged[settled_by.task_id][-1] if settled_by and settled_by.task_id in judged else None
            if final is None:
                continue  # reviewers disagree and nobody has adjudicated yet: not a label
            labels = dict(final.example.labels)
            severity = final.example.severity
            adjudicated = final.record.annotator
        else:
            labels = {c: int(votes[-1].example.labels.get(c, 0)) for c in policy.category_names}
            severity = votes[-1].example.severity
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
                "adjudicated_by": adjudicated,
                "escalated": str(any(v.record.escalate for v in votes)).lower(),
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
        for t, votes in _votes(_split(records)[0], policy).items()
    }
    return agreement(by_task, policy.category_names)
