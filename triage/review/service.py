"""The review queue as a service: enqueue fast, deliver in the background, take labels back."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from triage import selection
from triage.audit import AuditItem, annotator_disagreements, audit_queue, suspected_label_errors
from triage.data.schema import Example, label_matrix
from triage.errors import ReviewBackendRejected, ReviewBackendUnavailable, ReviewError, WebhookPayloadError
from triage.review.agreement import Agreement
from triage.review.annotations import draft_from_json, draft_to_json, parse_result, task_draft
from triage.review.backend import RemoteAnnotation, ReviewBackend
from triage.review.labeling_config import labeling_config
from triage.review.labels import labelled_examples, reviewer_agreement
from triage.review.outbox import AnnotationRecord, Outbox, QueueItem
from triage.taxonomy import Policy
from triage.tickets import ScoredTicket

if TYPE_CHECKING:
    from triage.models.base import Classifier
    from triage.settings import LabelStudioSettings, Settings

logger = logging.getLogger(__name__)

UPSERT_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATIONS_CREATED", "ANNOTATION_UPDATED")
DELETE_ACTIONS = ("ANNOTATIONS_DELETED",)


@dataclass(frozen=True)
class SyncReport:
    """What one delivery pass did."""

    delivered: int = 0
    already_there: int = 0
    rejected: int = 0
    predictions_updated: int = 0


@dataclass(frozen=True)
class PullReport:
    """What one safety-net pull changed in the label store."""

    seen: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0


def review_strategy(name: str) -> selection.Strategy:
    """The configured selection strategy for the review push; ReviewError names the known ones.

    A `diverse_*` strategy needs embeddings, which the serving model does not expose: its base strategy is used.
    """
    try:
        strategy = selection.get_strategy(name)
    except ValueError as err:
        raise ReviewError(f"TRIAGE_LABELSTUDIO__STRATEGY: {err}") from None
    if isinstance(strategy, selection.Diverse):
        logger.warning("selection strategy %r needs embeddings the serving model does not expose; "
                       "the review queue uses its base strategy %s instead", name, type(strategy.base).__name__)
        return strategy.base
    return strategy


def usefulness_scores(strategy: selection.Strategy, proba_categories: np.ndarray, proba_severity: np.ndarray,
                      rng: np.random.Generator | None = None) -> np.ndarray:
    """(n,) usefulness of labelling each row under `strategy`, higher = more useful; comparable across batches
    for the score-based strategies, a batch-local rank (1 = first, towards 0 = last) for any other."""
    if isinstance(strategy, selection.LeastConfidence):
        return selection.least_confidence(proba_categories)
    if isinstance(strategy, selection.Margin):
        return selection.margin(proba_categories)
    if isinstance(strategy, selection.Entropy):
        return selection.entropy(proba_categories)
    if isinstance(strategy, selection.SeverityWeighted):
        return selection.severity_weighted(proba_categories, proba_severity, strategy.weight)
    if isinstance(strategy, selection.RandomSelection):
        gen = rng if rng is not None else np.random.default_rng()
        return gen.random(len(proba_categories))
    n = len(proba_categories)
    order = strategy.select(proba_categories, proba_severity, n, None, rng)
    out = np.zeros(n)
    out[order] = 1.0 - np.arange(len(order)) / max(n, 1)
    return out


def _project_id(value: Any) -> int | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else None


class ReviewService:
    """Owns the outbox and talks to the labeling tool through a ReviewBackend (injected)."""

    def __init__(self, outbox: Outbox, backend: ReviewBackend, policy: Policy, settings: LabelStudioSettings,
                 webhook_url: str | None = None, ml_backend_url: str | None = None) -> None:
        self.outbox = outbox
        self.backend = backend
        self.policy = policy
        self.settings = settings
        self.webhook_url = webhook_url if webhook_url is not None else settings.webhook_url
        self.ml_backend_url = ml_backend_url if ml_backend_url is not None else settings.ml_backend_url
        self.label_config = labeling_config(policy)
        self.strategy_name = settings.strategy
        self.strategy = review_strategy(settings.strategy)
        self._rng = np.random.default_rng()
        self._model_version: str | None = None
        self._ensured: tuple[int, str] | None = None  # (project id, model version) ensured in this process
        self._version_set: tuple[int, str] | None = None
        self._sync_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_ok: float | None = None
        self._last_error: str | None = None

    # ------------------------------------------------------------------------------------------ in

    def enqueue(self, items: Sequence[ScoredTicket], model_name: str, model_version: str) -> int:
        """Persist the tickets routed to review (one SQLite transaction, no network); returns how many are new.

        Each gets the selection strategy's usefulness score, stored for delivery order (most useful first) and
        sent as task data (`usefulness`) so reviewers can sort by it; the prediction score stays the confidence.
        """
        review = [it for it in items if it.decision.route == "review"]
        if not review:
            return 0
        cats, sev = selection.scores_to_matrices([it.scores for it in review], self.policy)
        useful = usefulness_scores(self.strategy, cats, sev, self._rng)
        queued = []
        for it, u in zip(review, useful, strict=True):
            draft = task_draft(it, self.policy, model_name, model_version)
            usefulness = round(float(u), 6)
            draft = replace(draft, data={**draft.data, "usefulness": usefulness,
                                         "selection_strategy": self.strategy_name})
            queued.append(QueueItem(ticket_id=it.ticket.id, payload=draft_to_json(draft), model_version=model_version,
                                    priority=float(it.decision.priority), score=float(it.decision.confidence),
                                    usefulness=usefulness))
        new = self.outbox.enqueue(queued)
        self._model_version = model_version
        self._wake.set()
        return new

    # ------------------------------------------------------------------------------------------ out

    def _desired_model_version(self) -> str:
        if self._model_version:
            return self._model_version
        waiting = self.outbox.waiting_model_versions()
        return waiting[0] if waiting else (self.outbox.get_meta("model_version") or "")

    def ensure_project(self) -> int:
        """The Label Studio project, created or brought up to date (config from the policy, model version, webhook)."""
        version = self._desired_model_version()
        if self._ensured and self._ensured[1] == version:
            return self._ensured[0]
        pid = self.backend.ensure_project(self.settings.project_title, self.label_config, version)
        if self.webhook_url:
            self.backend.ensure_webhook(
                pid, self.webhook_url, {self.settings.webhook_header: self.settings.webhook_secret.get_secret_value()}
            )
        self.outbox.set_meta("project_id", str(pid))
        self.outbox.set_meta("policy_version", self.policy.version)
        if version:
            self.outbox.set_meta("model_version", version)
        self._ensured = (pid, version)
        return pid

    def sync_now(self) -> SyncReport:
        """Deliver every waiting item (batches, oldest first); each ticket becomes exactly one task."""
        with self._sync_lock:
            try:
                report = self._deliver()
            except ReviewError as err:
                self._ensured = None
                self._last_error = str(err)
                raise
            self._last_ok = time.time()
            self._last_error = None
            return report

    def _deliver(self) -> SyncReport:
        counts = self.outbox.counts()
        if counts["waiting"] == 0 and counts["prediction_updates"] == 0:
            return SyncReport()
        pid = self.ensure_project()
        delivered = already = rejected = 0
        lease = 3 * self.settings.request_timeout_s
        while items := self.outbox.claim(self.settings.batch_size, lease):
            found: dict[str, int] = {}
            if any(i.attempts > 1 for i in items):
                # A previous attempt may have reached Label Studio before failing: never create a second task.
                existing = self.backend.task_ids_by_ticket(pid)
                found = {i.ticket_id: existing[i.ticket_id] for i in items if i.ticket_id in existing}
                if found:
                    self.outbox.mark_sent(found)
                    already += len(found)
            todo = [i for i in items if i.ticket_id not in found]
            try:
                sent = self.backend.push_tasks(pid, [draft_from_json(i.payload) for i in todo])
            except ReviewBackendRejected as err:
                self.outbox.release([i.ticket_id for i in todo], str(err))
                sent, bad = self._push_one_by_one(pid, todo)
                rejected += bad
            except ReviewError as err:
                self.outbox.release([i.ticket_id for i in todo], str(err))
                raise
            self.outbox.mark_sent(sent)
            delivered += len(sent)
        updated = self._update_predictions(pid)
        version = self._desired_model_version()
        if version and (delivered or already or updated) and self._version_set != (pid, version):
            # Uncertainty sampling only looks at predictions of the project's model_version.
            self.backend.set_model_version(pid, version)
            self._version_set = (pid, version)
        if delivered or already or updated:
            logger.info("review sync: %d delivered, %d already in Label Studio, %d rejected, %d predictions updated",
                        delivered, already, rejected, updated)
        return SyncReport(delivered, already, rejected, updated)

    def _push_one_by_one(self, pid: int, items: Sequence[QueueItem]) -> tuple[dict[str, int], int]:
        """After a refused batch: send items singly so one bad task cannot hold back the others."""
        sent: dict[str, int] = {}
        bad = 0
        for it in items:
            try:
                sent.update(self.backend.push_tasks(pid, [draft_from_json(it.payload)]))
            except ReviewBackendRejected as err:
                logger.error("Label Studio refused the task of ticket %s: %s", it.ticket_id, err)
                self.outbox.reject(it.ticket_id, str(err))
                bad += 1
        return sent, bad

    def _update_predictions(self, pid: int) -> int:
        n = 0
        for it in self.outbox.prediction_updates(self.settings.batch_size):
            draft = draft_from_json(it.payload)
            if draft.prediction is not None and it.task_id is not None:
                self.backend.add_prediction(pid, it.task_id, draft.prediction)
            self.outbox.clear_prediction_update(it.ticket_id, it.payload)
            n += 1
        return n

    # ------------------------------------------------------------------------------------------ labels back

    def _record(self, a: RemoteAnnotation, via: str) -> str:
        cats, sev, rationale = parse_result(a.result)
        data = a.task_data or {}
        ticket = data.get("ticket_id")
        ticket_id = None if ticket is None else str(ticket)
        version = a.model_version
        if not version and ticket_id is not None:
            row = self.outbox.queued(ticket_id)
            version = row.model_version if row else None
        return self.outbox.record_annotation(AnnotationRecord(
            annotation_id=a.annotation_id, task_id=a.task_id, ticket_id=ticket_id,
            text=str(data.get("text") or ""), annotator=a.annotator, categories=tuple(cats), severity=sev,
            rationale=rationale, result=json.dumps(list(a.result)), created_at=a.created_at,
            updated_at=a.updated_at, model_version=version,
            policy_version=str(data.get("policy_version") or self.policy.version),
            was_cancelled=a.was_cancelled, via=via,
        ))

    def record_webhook(self, payload: Mapping[str, Any]) -> str:
        """Record one Label Studio event (annotation created/updated/deleted); never trains. Returns the outcome."""
        if not isinstance(payload, Mapping):
            raise WebhookPayloadError(f"expected a JSON object, got {type(payload).__name__}")
        action = payload.get("action")
        if not isinstance(action, str):
            raise WebhookPayloadError("missing 'action' (a Label Studio webhook event name)")
        ours = self.outbox.get_meta("project_id")
        theirs = _project_id(payload.get("project"))
        if ours is not None and theirs is not None and str(theirs) != ours:
            return f"ignored: event of project {theirs}, this queue uses project {ours}"
        if action in DELETE_ACTIONS:
            raw = payload.get("annotations")
            if not isinstance(raw, list) or not all(isinstance(a, Mapping) and "id" in a for a in raw):
                raise WebhookPayloadError(f"{action}: 'annotations' must be a list of objects with an 'id'")
            n = self.outbox.retract([int(a["id"]) for a in raw], via="webhook")
            return f"deleted {n}"
        if action not in UPSERT_ACTIONS:
            return f"ignored: {action}"
        anns = payload.get("annotation")
        tasks = payload.get("task")
        anns_list = anns if isinstance(anns, list) else [anns]
        tasks_list = tasks if isinstance(tasks, list) else [tasks]
        task_by_id = {t.get("id"): t for t in tasks_list if isinstance(t, Mapping)}
        outcomes = []
        for ann in anns_list:
            if not isinstance(ann, Mapping) or not isinstance(ann.get("id"), int):
                raise WebhookPayloadError(f"{action}: 'annotation' must be an object with an integer 'id'")
            task_id = ann.get("task")
            task = task_by_id.get(task_id)
            if task is None and len(task_by_id) == 1:
                task = next(iter(task_by_id.values()))
            if task is None or not isinstance(task.get("data"), Mapping):
                raise WebhookPayloadError(f"{action}: no 'task' with 'data' for annotation {ann['id']} "
                                          "(enable 'send payload' on the webhook)")
            result = ann.get("result") or []
            if not isinstance(result, list):
                raise WebhookPayloadError(f"{action}: annotation {ann['id']}: 'result' must be a list")
            by = ann.get("completed_by")
            if isinstance(by, Mapping):
                by = by.get("id", by.get("email"))
            pred = ann.get("prediction") if isinstance(ann.get("prediction"), Mapping) else {}
            outcomes.append(self._record(RemoteAnnotation(
                annotation_id=int(ann["id"]), task_id=int(task.get("id") or task_id or 0),
                task_data=task["data"], annotator=str(by), result=result,
                created_at=str(ann.get("created_at") or ""),
                updated_at=str(ann.get("updated_at") or ann.get("created_at") or ""),
                was_cancelled=bool(ann.get("was_cancelled")), model_version=(pred or {}).get("model_version"),
            ), via="webhook"))
        return ", ".join(outcomes)

    def pull(self) -> PullReport:
        """Fetch every annotation from Label Studio (safety net for missed webhooks); deletions are retracted."""
        with self._sync_lock:
            pid = self.ensure_project()
            snap = self.backend.list_annotations(pid)
        outcomes = [self._record(a, via="sync") for a in snap.annotations]
        present = {a.annotation_id for a in snap.annotations}
        gone = sorted(self.outbox.live_annotation_ids(sorted(snap.task_ids)) - present)
        deleted = self.outbox.retract(gone, via="sync") if gone else 0
        return PullReport(seen=len(present), created=outcomes.count("created"),
                          updated=outcomes.count("updated"), deleted=deleted)

    def connect_ml_backend(self, url: str | None = None) -> int:
        """Connect this API's ML backend (at `url`, default the configured one) to the project."""
        target = url or self.ml_backend_url
        if not target:
            raise ReviewError("no ML backend URL: pass one or set TRIAGE_LABELSTUDIO__ML_BACKEND_URL")
        pid = self.ensure_project()
        return self.backend.connect_ml_backend(pid, target, "triage")

    def examples(self) -> list[Example]:
        """Reviewed tasks as training examples (one per task; rule in triage.review.labels)."""
        return labelled_examples(self.outbox.annotations(), self.policy)

    def audit_items(self, classifier: Classifier, limit: int | None = None,
                    min_per_class: int = 5) -> list[AuditItem]:
        """The label-audit queue over the label store, most suspicious first: expert labels `classifier`
        confidently contradicts, and tasks whose reviewers disagree. Item ids are ticket ids (`task-<id>` without).

        The model's probabilities must be out-of-sample for these labels (see triage.audit): audit with a model
        that did not train on them, or its flags only show where it failed to fit.
        """
        examples = self.examples()
        ids = [ex.meta.get("ticket_id") or f"task-{ex.meta.get('task_id', '')}" for ex in examples]
        names = list(self.policy.category_names)
        errors: list[AuditItem] = []
        if examples:
            texts = [ex.text for ex in examples]
            proba = np.concatenate([classifier.predict(texts[i:i + 256]).categories  # bounded memory per call
                                    for i in range(0, len(texts), 256)])
            column = {c: j for j, c in enumerate(classifier.card.categories)}
            known = [c for c in names if c in column]
            if len(known) < len(names):
                logger.warning("the model has no score for %s: not audited",
                               ", ".join(c for c in names if c not in column))
            p = np.asarray(proba, dtype=np.float64)[:, [column[c] for c in known]]
            errors = suspected_label_errors(label_matrix(examples, known), p, known, ids, min_per_class)
        votes: dict[str, list[tuple[frozenset[str], str | None]]] = {}
        for item, ex in zip(ids, examples, strict=True):
            reviewers = json.loads(ex.meta.get("by_annotator") or "{}")
            votes[item] = [(frozenset(v.get("categories") or ()), v.get("severity")) for v in reviewers.values()]
        return audit_queue(errors, annotator_disagreements(votes, names), limit=limit)

    def agreement(self) -> Agreement:
        """Agreement between reviewers on tasks several of them labelled."""
        return reviewer_agreement(self.outbox.annotations(), self.policy)

    def status(self) -> dict[str, Any]:
        """Counts (waiting, sent, labelled, ...), agreement, and the health of the sync."""
        project = self.outbox.get_meta("project_id")
        return {
            **self.outbox.counts(),
            "agreement": self.agreement().as_dict(),
            "project_id": int(project) if project else None,
            "label_studio_url": self.settings.url,
            "model_version": self._desired_model_version() or None,
            "policy_version": self.policy.version,
            "sync_running": self.running,
            "last_sync_ok_at": self._last_ok,
            "last_error": self._last_error or self.outbox.last_error(),
        }

    # ------------------------------------------------------------------------------------------ background

    @property
    def running(self) -> bool:
        """True while the background sync thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the background delivery thread (idempotent)."""
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="review-sync", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the background thread; waiting items stay in the outbox."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._thread = None

    def _run(self) -> None:
        backoff = self.settings.backoff_initial_s
        next_pull = time.monotonic() + self.settings.pull_interval_s if self.settings.pull_interval_s else None
        down_since: float | None = None
        while not self._stop.is_set():
            self._wake.clear()
            try:
                if self._ensured is None:
                    # Register the webhook as soon as Label Studio answers, even with nothing to deliver.
                    with self._sync_lock:
                        self.ensure_project()
                self.sync_now()
                if next_pull is not None and time.monotonic() >= next_pull:
                    self.pull()
                    next_pull = time.monotonic() + self.settings.pull_interval_s
            except ReviewBackendUnavailable as err:
                if down_since is None:
                    down_since = time.monotonic()
                    logger.warning("Label Studio unavailable, review items wait in the outbox: %s", err)
                self._stop.wait(backoff)
                backoff = min(2 * backoff, self.settings.backoff_max_s)
                continue
            except Exception:
                logger.exception("review sync failed; retrying in %.0f s", backoff)
                self._stop.wait(backoff)
                backoff = min(2 * backoff, self.settings.backoff_max_s)
                continue
            if down_since is not None:
                logger.info("Label Studio back after %.0f s", time.monotonic() - down_since)
                down_since = None
            backoff = self.settings.backoff_initial_s
            self._wake.wait(self.settings.sync_interval_s)


def build_review_service(settings: Settings, policy: Policy) -> ReviewService | None:
    """The configured review service (SQLite outbox + real Label Studio), or None when review is disabled."""
    ls = settings.labelstudio
    if not ls.enabled:
        return None
    from triage.adapters.labelstudio import LabelStudioBackend

    host = "127.0.0.1" if settings.serving.host in ("0.0.0.0", "::") else settings.serving.host
    api = f"http://{host}:{settings.serving.port}"
    outbox = Outbox(ls.outbox_path or settings.home / "review.db")
    keys = settings.named_api_keys()  # with keys on, Label Studio calls /ml/* with the first one (basic auth)
    backend = LabelStudioBackend(ls.url, ls.api_token.get_secret_value(), timeout_s=ls.request_timeout_s,
                                 ml_backend_auth=(keys[0][0], keys[0][1].get_secret_value()) if keys else None)
    return ReviewService(outbox, backend, policy, ls,
                         webhook_url=ls.webhook_url or f"{api}/v1/review/webhook",
                         ml_backend_url=ls.ml_backend_url or f"{api}/ml")


def report_dict(report: SyncReport | PullReport) -> dict[str, int]:
    """A report as a plain dict (for JSON and the CLI)."""
    return asdict(report)
