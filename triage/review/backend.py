"""The narrow interface the review queue needs from a labeling tool, and the records that cross it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Prediction:
    """A model's pre-annotation for one task; `score` is its confidence (lowest is served first)."""

    result: Sequence[Mapping[str, Any]]
    score: float
    model_version: str


@dataclass(frozen=True)
class TaskDraft:
    """One ticket as a labeling task: its data (text, ticket_id, priority, ...) and the model's prediction."""

    ticket_id: str
    data: Mapping[str, Any]
    prediction: Prediction | None = None
    overlap: int = 1  # how many reviewers Label Studio should collect for the task


@dataclass(frozen=True)
class RemoteAnnotation:
    """One annotation as the labeling tool holds it, with the task it belongs to."""

    annotation_id: int
    task_id: int
    task_data: Mapping[str, Any]
    annotator: str
    result: Sequence[Mapping[str, Any]]
    created_at: str
    updated_at: str
    was_cancelled: bool = False
    model_version: str | None = None


@dataclass(frozen=True)
class AnnotationSnapshot:
    """Every annotation of a project, and every task looked at (so missing annotations count as deleted)."""

    annotations: Sequence[RemoteAnnotation]
    task_ids: frozenset[int] = field(default_factory=frozenset)


class ReviewBackend(Protocol):
    """What the review service asks of Label Studio; the SDK adapter and an in-memory double implement it."""

    def healthy(self) -> bool:
        """True when the tool answers its health check."""
        ...

    def ensure_project(self, title: str, label_config: str, model_version: str,
                       options: Mapping[str, Any] | None = None) -> int:
        """Id of the project called `title`, created if missing; its config, model_version and `options` (project
        fields: maximum_annotations, expert_instruction, show_instruction) brought up to date."""
        ...

    def set_model_version(self, project_id: int, model_version: str) -> None:
        """Make `model_version` the project's, so uncertainty sampling uses predictions of that version."""
        ...

    def task_ids_by_ticket(self, project_id: int) -> dict[str, int]:
        """Task id of every task in the project that carries a ticket_id, by ticket id."""
        ...

    def push_tasks(self, project_id: int, tasks: Sequence[TaskDraft]) -> dict[str, int]:
        """Create one task per draft (with its prediction and overlap); the new task ids by ticket id."""
        ...

    def add_predictions(self, project_id: int, predictions: Sequence[tuple[int, Prediction]]) -> None:
        """Attach newer models' predictions to existing tasks (task id, prediction), in bulk."""
        ...

    def add_prediction(self, project_id: int, task_id: int, prediction: Prediction) -> None:
        """Attach a newer model's prediction to an existing task."""
        ...

    def list_annotations(self, project_id: int) -> AnnotationSnapshot:
        """All annotations of the project (the safety-net pull)."""
        ...

    def ensure_webhook(self, project_id: int, url: str, headers: Mapping[str, str]) -> None:
        """One webhook to `url` for annotation created/updated/deleted events, sending `headers`."""
        ...

    def connect_ml_backend(self, project_id: int, url: str, title: str) -> int:
        """Connect a model server speaking the ML-backend protocol; returns its id (reused when connected)."""
        ...
