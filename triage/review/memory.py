"""An in-memory ReviewBackend for fast unit tests: projects, tasks, predictions, annotations, outages."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from triage.errors import ReviewBackendRejected, ReviewBackendUnavailable
from triage.review.backend import AnnotationSnapshot, Prediction, RemoteAnnotation, TaskDraft


@dataclass
class _Project:
    id: int
    title: str
    label_config: str
    model_version: str
    options: dict[str, Any] = field(default_factory=dict)
    tasks: dict[int, dict[str, Any]] = field(default_factory=dict)
    webhooks: dict[str, dict[str, str]] = field(default_factory=dict)
    ml_backends: dict[str, int] = field(default_factory=dict)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class InMemoryReviewBackend:
    """Behaves like Label Studio for the review service; `down` and `lose_responses` simulate outages."""

    def __init__(self) -> None:
        self.projects: dict[int, _Project] = {}
        self.annotations: dict[int, RemoteAnnotation] = {}
        self.down = False
        # Import the tasks, then fail as if the response were lost (a timeout after the server committed).
        self.lose_responses = 0
        self.reject_text: str | None = None  # refuse tasks whose text contains this
        self.calls: list[str] = []
        self._ids = itertools.count(1)

    def _check(self, what: str) -> None:
        self.calls.append(what)
        if self.down:
            raise ReviewBackendUnavailable(f"in-memory Label Studio is down ({what})")

    def healthy(self) -> bool:
        """True unless `down`."""
        return not self.down

    def ensure_project(self, title: str, label_config: str, model_version: str,
                       options: Mapping[str, Any] | None = None) -> int:
        """Find by title or create; update config, model version and options."""
        self._check("ensure_project")
        for p in self.projects.values():
            if p.title == title:
                p.label_config = label_config
                p.options.update(options or {})
                if model_version:
                    p.model_version = model_version
                return p.id
        pid = next(self._ids)
        self.projects[pid] = _Project(pid, title, label_config, model_version, dict(options or {}))
        return pid

    def set_model_version(self, project_id: int, model_version: str) -> None:
        """Set the project's model version."""
        self._check("set_model_version")
        self.projects[project_id].model_version = model_version

    def task_ids_by_ticket(self, project_id: int) -> dict[str, int]:
        """Ticket id -> task id."""
        self._check("task_ids_by_ticket")
        return {str(t["data"]["ticket_id"]): tid for tid, t in self.projects[project_id].tasks.items()
                if "ticket_id" in t["data"]}

    def push_tasks(self, project_id: int, tasks: Sequence[TaskDraft]) -> dict[str, int]:
        """Create tasks (all or nothing, like one import request)."""
        self._check("push_tasks")
        if self.reject_text and any(self.reject_text in str(t.data.get("text")) for t in tasks):
            raise ReviewBackendRejected(f"task text contains {self.reject_text!r}")
        out = {}
        for t in tasks:
            tid = next(self._ids)
            self.projects[project_id].tasks[tid] = {
                "id": tid, "data": dict(t.data), "predictions": [] if t.prediction is None else [t.prediction],
                "overlap": t.overlap}
            out[t.ticket_id] = tid
        if self.lose_responses > 0:
            self.lose_responses -= 1
            raise ReviewBackendUnavailable("response lost after the import was committed")
        return out

    def add_prediction(self, project_id: int, task_id: int, prediction: Prediction) -> None:
        """Attach a prediction."""
        self._check("add_prediction")
        self.projects[project_id].tasks[task_id]["predictions"].append(prediction)

    def add_predictions(self, project_id: int, predictions: Sequence[tuple[int, Prediction]]) -> None:
        """Attach predictions, all in one call."""
        self._check("add_predictions")
        for task_id, prediction in predictions:
            self.projects[project_id].tasks[task_id]["predictions"].append(prediction)

    def list_annotations(self, project_id: int) -> AnnotationSnapshot:
        """Every annotation of the project."""
        self._check("list_annotations")
        tasks = self.projects[project_id].tasks
        return AnnotationSnapshot([a for a in self.annotations.values() if a.task_id in tasks], frozenset(tasks))

    def ensure_webhook(self, project_id: int, url: str, headers: Mapping[str, str]) -> None:
        """Remember the webhook."""
        self._check("ensure_webhook")
        self.projects[project_id].webhooks[url] = dict(headers)

    def connect_ml_backend(self, project_id: int, url: str, title: str) -> int:
        """Remember the ML backend."""
        self._check("connect_ml_backend")
        return self.projects[project_id].ml_backends.setdefault(url, next(self._ids))

    # ---- what a reviewer does

    def next_task(self, project_id: int) -> dict[str, Any]:
        """Uncertainty sampling: the unlabelled task with the lowest score among current-version predictions."""
        p = self.projects[project_id]
        labelled = {a.task_id for a in self.annotations.values()}
        scored = [(min(pr.score for pr in t["predictions"] if pr.model_version == p.model_version), tid)
                  for tid, t in p.tasks.items() if tid not in labelled
                  and any(pr.model_version == p.model_version for pr in t["predictions"])]
        return p.tasks[min(scored)[1]] if scored else {}

    def annotate(self, task_id: int, annotator: str, result: Sequence[Mapping[str, Any]],
                 annotation_id: int | None = None) -> RemoteAnnotation:
        """Create (or, with an id, update) an annotation; returns it as a webhook would carry it."""
        task = next(t for p in self.projects.values() for i, t in p.tasks.items() if i == task_id)
        aid = annotation_id if annotation_id is not None else next(self._ids)
        old = self.annotations.get(aid)
        ann = RemoteAnnotation(aid, task_id, task["data"], annotator, list(result),
                               old.created_at if old else _now(), _now())
        self.annotations[aid] = ann
        return ann

    def delete(self, annotation_id: int) -> None:
        """Delete an annotation."""
        del self.annotations[annotation_id]


def webhook_payload(action: str, ann: RemoteAnnotation, project_id: int) -> dict[str, Any]:
    """The body Label Studio posts for an annotation event (the fields the service reads)."""
    if action == "ANNOTATIONS_DELETED":
        return {"action": action, "annotations": [{"id": ann.annotation_id}], "project": {"id": project_id}}
    return {
        "action": action,
        "annotation": {"id": ann.annotation_id, "task": ann.task_id, "result": list(ann.result),
                       "completed_by": int(ann.annotator) if ann.annotator.isdigit() else ann.annotator,
                       "created_at": ann.created_at, "updated_at": ann.updated_at, "was_cancelled": False},
        "task": {"id": ann.task_id, "data": dict(ann.task_data)},
        "project": {"id": project_id},
    }
