"""Label Studio through its SDK: the one module that imports label_studio_sdk (ReviewBackend for real)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar, cast

import httpx
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from triage.errors import ReviewBackendRejected, ReviewBackendUnavailable
from triage.review.backend import AnnotationSnapshot, Prediction, RemoteAnnotation, TaskDraft

logger = logging.getLogger(__name__)

T = TypeVar("T")
WEBHOOK_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED")
SAMPLING = "Uncertainty sampling"


def _short(body: Any) -> str:
    text = body if isinstance(body, str) else json.dumps(body, default=str)
    return text if len(text) <= 500 else text[:500] + "..."


def _prediction_json(p: Prediction) -> dict[str, Any]:
    return {"model_version": p.model_version, "score": float(p.score), "result": [dict(r) for r in p.result]}


class LabelStudioBackend:
    """ReviewBackend over a real Label Studio: errors become ReviewBackendUnavailable or ReviewBackendRejected."""

    def __init__(self, url: str, api_token: str, timeout_s: float = 10.0,
                 ml_backend_auth: tuple[str, str] | None = None) -> None:
        self.url = url.rstrip("/")
        # (user, key): how Label Studio authenticates to our /ml routes when the API needs keys (basic auth).
        self._ml_auth = ml_backend_auth
        self._token = api_token
        self._timeout = timeout_s
        # No retries inside the SDK: the outbox owns retrying, with backoff.
        self._client = LabelStudio(base_url=self.url, api_key=api_token, timeout=timeout_s, max_retries=0)
        self._max_annotations: dict[int, int] = {}  # per project, as last read or set

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except ApiError as err:
            status = err.status_code or 0
            if status >= 500 or status in (408, 429):
                raise ReviewBackendUnavailable(f"Label Studio at {self.url}: {what} failed with {status}") from err
            raise ReviewBackendRejected(
                f"Label Studio at {self.url} refused to {what}: HTTP {status}: {_short(err.body)}"
            ) from err
        except (httpx.TransportError, OSError) as err:
            raise ReviewBackendUnavailable(
                f"Label Studio at {self.url} unreachable while trying to {what}: {type(err).__name__}: {err}"
            ) from err

    def healthy(self) -> bool:
        """True when GET /health answers {"status": "UP"}."""
        try:
            r = httpx.get(f"{self.url}/health", timeout=min(self._timeout, 2.0))
            return r.status_code == 200 and r.json().get("status") == "UP"
        except (httpx.HTTPError, ValueError):
            return False

    def ensure_project(self, title: str, label_config: str, model_version: str,
                       options: Mapping[str, Any] | None = None) -> int:
        """Find the project by title (lowest id wins) or create it; bring its config, model_version and `options`
        (project fields such as maximum_annotations, expert_instruction) up to date."""
        extra = dict(options or {})
        found: list[Any] = self._call(
            "list projects", lambda: list(self._client.projects.list(title=title, page_size=100)))
        exact = sorted((p for p in found if p.title == title), key=lambda p: p.id or 0)
        if not exact:
            created = self._call(
                f"create project {title!r}",
                lambda: self._client.projects.create(
                    title=title, label_config=label_config, sampling=SAMPLING, model_version=model_version,
                    show_collab_predictions=True, **extra,
                ),
            )
            logger.info("created Label Studio project %s (%r)", created.id, title)
            self._max_annotations[int(created.id or 0)] = int(getattr(created, "maximum_annotations", None) or 1)
            return int(created.id or 0)
        pid = int(exact[0].id or 0)
        project = self._call(f"read project {pid}", lambda: self._client.projects.get(pid))
        changes: dict[str, Any] = {k: v for k, v in extra.items() if getattr(project, k, None) != v}
        if (project.label_config or "").strip() != label_config.strip():
            changes["label_config"] = label_config
        if getattr(project, "sampling", SAMPLING) != SAMPLING:
            changes["sampling"] = SAMPLING
        if changes:
            self._call(f"update project {pid} ({', '.join(changes)})",
                       lambda: self._client.projects.update(pid, **changes))
            logger.info("updated Label Studio project %s: %s", pid, ", ".join(changes))
        self._max_annotations[pid] = int(changes.get("maximum_annotations", project.maximum_annotations or 1))
        if model_version and project.model_version != model_version:
            try:
                self.set_model_version(pid, model_version)
            except ReviewBackendRejected:
                # Label Studio accepts a version only once predictions of it exist: set again after the push.
                logger.info("project %s: model_version %s is set once its predictions are pushed", pid, model_version)
        return pid

    def set_model_version(self, project_id: int, model_version: str) -> None:
        """Set the project's model_version (uncertainty sampling only uses predictions of that version)."""
        self._call(f"set model_version of project {project_id}",
                   lambda: self._client.projects.update(project_id, model_version=model_version))

    def _tasks(self, project_id: int) -> Iterator[Any]:
        return iter(self._client.tasks.list(project=project_id, page_size=1000, fields="task_only"))

    def task_tickets(self, project_id: int) -> list[tuple[int, str | None]]:
        """(task id, ticket id or None) of every task in the project."""
        tasks = self._call(f"list tasks of project {project_id}", lambda: list(self._tasks(project_id)))
        out: list[tuple[int, str | None]] = []
        for t in tasks:
            tid = (t.data or {}).get("ticket_id")
            out.append((int(t.id or 0), None if tid is None else str(tid)))
        return out

    def task_ids_by_ticket(self, project_id: int) -> dict[str, int]:
        """Ticket id -> task id over the whole project (used to reconcile after an uncertain delivery)."""
        out: dict[str, int] = {}
        for task_id, ticket in self.task_tickets(project_id):
            if ticket is not None:
                out.setdefault(ticket, task_id)
        return out

    def push_tasks(self, project_id: int, tasks: Sequence[TaskDraft]) -> dict[str, int]:
        """Import tasks with predictions in one request; the created task ids by ticket id."""
        if not tasks:
            return {}
        body: list[dict[str, Any]] = []
        for t in tasks:
            item: dict[str, Any] = {"data": dict(t.data)}
            if t.prediction is not None:
                item["predictions"] = [_prediction_json(t.prediction)]
            body.append(item)
        resp = self._call(
            f"import {len(tasks)} tasks into project {project_id}",
            lambda: self._client.projects.import_tasks(project_id, request=cast(Any, body), return_task_ids=True),
        )
        ids = list(getattr(resp, "task_ids", None) or [])
        if len(ids) != len(tasks):
            raise ReviewBackendRejected(
                f"Label Studio imported {len(ids)} task ids for {len(tasks)} tasks into project {project_id}"
            )
        out = {t.ticket_id: int(i) for t, i in zip(tasks, ids, strict=True)}
        self._set_overlaps(project_id, [(out[t.ticket_id], t.overlap) for t in tasks])
        return out

    def _set_overlaps(self, project_id: int, overlaps: Sequence[tuple[int, int]]) -> None:
        """Label Studio gives every imported task the project's maximum_annotations as its overlap: set the
        tasks that need another number of reviewers (one request each; the API has no bulk form)."""
        if project_id not in self._max_annotations:
            project = self._call(f"read project {project_id}", lambda: self._client.projects.get(project_id))
            self._max_annotations[project_id] = int(project.maximum_annotations or 1)
        default = self._max_annotations[project_id]
        for task_id, overlap in overlaps:
            if overlap != default:
                self._call(f"set the overlap of task {task_id} to {overlap}",
                           lambda t=task_id, o=overlap: self._client.tasks.update(str(t), overlap=o))  # type: ignore[misc]

    def task_overlap(self, task_id: int) -> int:
        """How many reviewers Label Studio wants for a task."""
        task = self._call(f"read task {task_id}", lambda: self._client.tasks.get(str(task_id)))
        return int(getattr(task, "overlap", None) or 1)

    def add_predictions(self, project_id: int, predictions: Sequence[tuple[int, Prediction]]) -> None:
        """Attach predictions of another model version to existing tasks, in one request."""
        if not predictions:
            return
        body = [{"task": task_id, **_prediction_json(p)} for task_id, p in predictions]
        self._call(f"import {len(body)} predictions into project {project_id}",
                   lambda: self._client.projects.import_predictions(project_id, request=cast(Any, body)))

    def add_prediction(self, project_id: int, task_id: int, prediction: Prediction) -> None:
        """Attach a prediction of another model version to an existing task."""
        self._call(
            f"add a prediction to task {task_id}",
            lambda: self._client.predictions.create(
                task=task_id, project=project_id, result=[dict(r) for r in prediction.result],
                score=float(prediction.score), model_version=prediction.model_version,
            ),
        )

    def _export(self, project_id: int) -> list[dict[str, Any]]:
        chunks = self._client.projects.exports.download_sync(project_id, export_type="JSON", download_all_tasks=True)
        data = json.loads(b"".join(chunks))
        if not isinstance(data, list):
            raise ReviewBackendRejected(f"Label Studio export of project {project_id} is not a list of tasks")
        return data

    def list_annotations(self, project_id: int) -> AnnotationSnapshot:
        """Every annotation of every task, from a JSON export of all tasks."""
        tasks = self._call(f"export project {project_id}", lambda: self._export(project_id))
        out: list[RemoteAnnotation] = []
        for task in tasks:
            for a in task.get("annotations") or []:
                by = a.get("completed_by")
                if isinstance(by, dict):
                    by = by.get("id", by.get("email"))
                pred = a.get("prediction") if isinstance(a.get("prediction"), dict) else {}
                out.append(RemoteAnnotation(
                    annotation_id=int(a["id"]),
                    task_id=int(task["id"]),
                    task_data=task.get("data") or {},
                    annotator=str(by),
                    result=a.get("result") or [],
                    created_at=str(a.get("created_at") or ""),
                    updated_at=str(a.get("updated_at") or a.get("created_at") or ""),
                    was_cancelled=bool(a.get("was_cancelled")),
                    model_version=(pred or {}).get("model_version"),
                ))
        return AnnotationSnapshot(annotations=out, task_ids=frozenset(int(t["id"]) for t in tasks))

    def ensure_webhook(self, project_id: int, url: str, headers: Mapping[str, str]) -> None:
        """Create (or fix) the project's webhook to `url` for annotation events with the shared-secret header."""
        hooks = self._call("list webhooks", lambda: list(self._client.webhooks.list(project=str(project_id))))
        mine = [h for h in hooks if h.url == url and h.project == project_id]
        # Webhooks this service registered before at another address (the API moved): they would only fail.
        for h in hooks:
            if h.project == project_id and h.url != url and set(headers) & set(h.headers or {}):
                self._delete_webhook(int(h.id or 0), h.url)
                logger.info("deleted stale webhook %s to %s", h.id, h.url)
        if mine:
            h = mine[0]
            if (set(h.actions or []) != set(WEBHOOK_ACTIONS) or (h.headers or {}) != dict(headers)
                    or not h.is_active or not h.send_payload):
                self._call(f"update webhook {h.id}", lambda: self._client.webhooks.update(
                    int(h.id or 0), url=url, actions=list(WEBHOOK_ACTIONS), headers=dict(headers),
                    is_active=True, send_payload=True, send_for_all_actions=False,
                ))
            return
        self._call(f"create webhook to {url}", lambda: self._client.webhooks.create(
            url=url, project=project_id, actions=list(WEBHOOK_ACTIONS), headers=dict(headers),
            send_payload=True, send_for_all_actions=False, is_active=True,
        ))
        logger.info("webhook for project %s -> %s", project_id, url)

    def find_project(self, title: str) -> int | None:
        """Id of the project called `title` (lowest id wins), or None."""
        found: list[Any] = self._call(
            "list projects", lambda: list(self._client.projects.list(title=title, page_size=100)))
        ids = sorted(int(p.id or 0) for p in found if p.title == title)
        return ids[0] if ids else None

    def webhooks(self, project_id: int) -> list[tuple[int, str]]:
        """(id, url) of the project's webhooks."""
        hooks = self._call("list webhooks", lambda: list(self._client.webhooks.list(project=str(project_id))))
        return sorted((int(h.id or 0), str(h.url)) for h in hooks if h.project == project_id)

    def _delete_webhook(self, webhook_id: int, url: str) -> None:
        self._call(f"delete stale webhook {webhook_id} to {url}", lambda: self._client.webhooks.delete(webhook_id))

    def connect_ml_backend(self, project_id: int, url: str, title: str) -> int:
        """Connect the model server at `url` (Label Studio calls its /health and /setup now)."""
        current = self._call("list ML backends", lambda: list(self._client.ml.list(project=project_id)))
        for m in current:
            if m.url.rstrip("/") == url.rstrip("/"):
                return int(m.id or 0)
        auth: dict[str, Any] = {} if self._ml_auth is None else {
            "auth_method": "BASIC_AUTH", "basic_auth_user": self._ml_auth[0], "basic_auth_pass": self._ml_auth[1]}
        created = self._call(f"connect ML backend {url}", lambda: self._client.ml.create(
            project=project_id, url=url, title=title, is_interactive=False, **auth,
        ))
        return int(created.id or 0)

    def retrieve_predictions(self, project_id: int, task_ids: Sequence[int]) -> None:
        """Ask Label Studio to fetch predictions for these tasks from the connected ML backend."""
        self._call(f"retrieve predictions for {len(task_ids)} tasks", lambda: self._client.actions.create(
            id="retrieve_tasks_predictions", project=project_id,
            selected_items={"all": False, "included": list(task_ids)},
        ))

    # ---- reviewer-side helpers (what a reviewer does in the UI), used by the demo and the integration tests

    def create_annotation(self, task_id: int, result: Sequence[Mapping[str, Any]]) -> int:
        """Submit an annotation as the token's user."""
        a = self._call(f"annotate task {task_id}",
                       lambda: self._client.annotations.create(task_id, result=[dict(r) for r in result]))
        return int(a.id or 0)

    def update_annotation(self, annotation_id: int, result: Sequence[Mapping[str, Any]]) -> None:
        """Change an annotation's result."""
        self._call(f"update annotation {annotation_id}",
                   lambda: self._client.annotations.update(annotation_id, result=[dict(r) for r in result]))

    def delete_annotation(self, annotation_id: int) -> None:
        """Delete an annotation."""
        self._call(f"delete annotation {annotation_id}", lambda: self._client.annotations.delete(annotation_id))

    def next_task(self, project_id: int) -> dict[str, Any]:
        """The task Label Studio serves next to the token's user (GET /api/projects/{id}/next); {} when none."""
        def get() -> dict[str, Any]:
            r = httpx.get(f"{self.url}/api/projects/{project_id}/next",
                          headers={"Authorization": f"Token {self._token}"}, timeout=self._timeout)
            if r.status_code == 404:  # "There are no tasks for <user>"
                return {}
            if r.status_code >= 400:
                raise ApiError(status_code=r.status_code, body=r.text)
            return dict(r.json())
        return self._call(f"get the next task of project {project_id}", get)

    def import_plain_tasks(self, project_id: int, data: Sequence[Mapping[str, Any]]) -> list[int]:
        """Import tasks without predictions (as a reviewer importing a file by hand); their ids."""
        resp = self._call("import tasks", lambda: self._client.projects.import_tasks(
            project_id, request=cast(Any, [{"data": dict(d)} for d in data]), return_task_ids=True))
        return [int(i) for i in getattr(resp, "task_ids", None) or []]

    def task_predictions(self, task_id: int) -> list[dict[str, Any]]:
        """Predictions attached to a task."""
        preds = self._call(f"list predictions of task {task_id}",
                           lambda: list(self._client.predictions.list(task=task_id)))
        return [{"model_version": p.model_version, "score": p.score, "result": p.result} for p in preds]

    def project_label_config(self, project_id: int) -> str:
        """The project's current labeling config."""
        return str(self._call(f"read project {project_id}",
                              lambda: self._client.projects.get(project_id)).label_config or "")

    def create_user(self, email: str, password: str) -> int:
        """Create a reviewer account (admin token needed); its user id."""
        u = self._call(f"create user {email}", lambda: self._client.users.create(
            email=email, username=email.split("@")[0], password=password))
        return int(u.id or 0)

    def create_annotation_as(self, task_id: int, user_id: int, result: Sequence[Mapping[str, Any]]) -> int:
        """Submit an annotation credited to another reviewer (admin token)."""
        a = self._call(f"annotate task {task_id} as user {user_id}", lambda: self._client.annotations.create(
            task_id, result=[dict(r) for r in result], completed_by=user_id))
        return int(a.id or 0)
