"""The review queue as a service: enqueue fast, deliver in the background, take labels back."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from triage import selection
from triage.audit import AuditItem, annotator_disagreements, audit_queue, suspected_label_errors
from triage.data.schema import Example, label_matrix
from triage.errors import ReviewBackendRejected, ReviewBackendUnavailable, ReviewError, WebhookPayloadError
from triage.review.agreement import Agreement
from triage.review.annotations import (
    annotation_problem,
    draft_from_json,
    draft_to_json,
    escalated,
    parse_result,
    task_draft,
)
from triage.review.backend import Prediction, RemoteAnnotation, ReviewBackend, TaskDraft
from triage.review.labeling_config import ANSWERS, instructions, labeling_config
from triage.review.labels import disagreements, labelled_examples, reviewer_agreement
from triage.review.outbox import AnnotationRecord, EnqueueResult, Outbox, QueueItem
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
    sent_to_adjudication: int = 0


@dataclass(frozen=True)
class PullReport:
    """What one safety-net pull changed in the label store."""

    seen: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0


def review_strategy(name: str, policy: Policy | None = None) -> selection.Strategy:
    """The configured selection strategy for the review push; ReviewError names the known ones.

    A `diverse_*` strategy needs embeddings, which the serving model does not expose: its base strategy is used.
    """
    try:
        strategy = selection.get_strategy(name, policy)
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
    if isinstance(strategy, selection.ExampleGuided):
        return strategy.score(proba_categories, rng)
    if isinstance(strategy, selection.RandomSelection):
        gen = rng if rng is not None else np.random.default_rng()
        return gen.random(len(proba_categories))
    n = len(proba_categories)
    order = strategy.select(proba_categories, proba_severity, n, None, rng)
    out = np.zeros(n)
    out[order] = 1.0 - np.arange(len(order)) / max(n, 1)
    return out


def queue_scores(usefulness: np.ndarray) -> np.ndarray:
    """The prediction scores Label Studio sorts on (it serves the LOWEST first): decreasing in the strategy's
    usefulness, in (0, 1), so what the strategy ranks first is what a reviewer gets first."""
    return np.asarray(1.0 / (1.0 + np.exp(np.clip(usefulness, -50.0, 50.0))), dtype=np.float64)


def _draft(item: QueueItem) -> TaskDraft:
    """A queued item as the task to create, with the reviewers it needs as its overlap."""
    return replace(draft_from_json(item.payload), overlap=item.reviewers)


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
        self.adjudication_config = labeling_config(policy, adjudication=True)
        self._adjudication_pid: int | None = None
        self.strategy_name = settings.strategy
        self.strategy = review_strategy(settings.strategy, policy)
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
        # Told of every stored annotation and retraction (the decision log joins them to its decisions).
        self.on_label: Callable[[AnnotationRecord], None] | None = None
        self.on_retract: Callable[[Sequence[int]], None] | None = None

    # ------------------------------------------------------------------------------------------ in

    def enqueue(self, items: Sequence[ScoredTicket], model_name: str, model_version: str) -> EnqueueResult:
        """Persist the tickets routed to review (one SQLite transaction, no network): how many are new, and the
        ids refused because they arrived with another text than the one queued under them (never merged).

        Each gets the selection strategy's usefulness, stored for delivery order (most useful first), sent as
        task data (`usefulness`) and written into the prediction score Label Studio serves by (`queue_scores`),
        so reviewers get first what the strategy ranks first; the model's confidence stays in the task data.
        """
        if self.policy.review.withdraw_auto_routed:
            self._withdraw([it for it in items if it.decision.route == "auto"], model_name, model_version)
        review = [it for it in items if it.decision.route == "review"]
        if not review:
            return EnqueueResult()
        cats, sev = selection.scores_to_matrices([it.scores for it in review], self.policy)
        useful = usefulness_scores(self.strategy, cats, sev, self._rng)
        served_by = queue_scores(useful)
        queued = []
        for it, u, score in zip(review, useful.tolist(), served_by.tolist(), strict=True):
            usefulness = round(u, 6)
            draft = task_draft(it, self.policy, model_name, model_version, score=score,
                               extra={"usefulness": usefulness, "selection_strategy": self.strategy_name})
            queued.append(QueueItem(ticket_id=it.ticket.id, payload=draft_to_json(draft), model_version=model_version,
                                    priority=float(it.decision.priority), score=float(it.decision.confidence),
                                    usefulness=usefulness, text_sha=draft.data["text_sha"],
                                    reviewers=int(draft.data["reviewers"])))
        result = self.outbox.enqueue(queued)
        if result.conflicts:
            shown = ", ".join(result.conflicts[:10]) + (" ..." if len(result.conflicts) > 10 else "")
            logger.warning("%d ticket id(s) arrived with another text than the one queued under them, left out "
                           "(a ticket is its id plus its text): %s", len(result.conflicts), shown)
        self._model_version = model_version
        self._wake.set()
        return result

    def _withdraw(self, auto: Sequence[ScoredTicket], model_name: str, model_version: str) -> None:
        """After a model change, tickets the new model routes automatically leave the review queue when still
        waiting; sent ones get its prediction scored 1.0, so Label Studio serves them last (policy switch
        review.withdraw_auto_routed)."""
        queued = self.outbox.queued_ids([it.ticket.id for it in auto]) if auto else set()
        if not queued:  # most tickets routed automatically were never queued: no task to render
            return
        items = []
        for it in (it for it in auto if it.ticket.id in queued):
            draft = task_draft(it, self.policy, model_name, model_version, score=1.0,
                               extra={"auto_routed_by": model_version})
            items.append(QueueItem(ticket_id=it.ticket.id, payload=draft_to_json(draft), model_version=model_version,
                                   priority=float(it.decision.priority), score=float(it.decision.confidence),
                                   text_sha=draft.data["text_sha"]))
        removed, marked = self.outbox.withdraw(items)
        if removed or marked:
            logger.info("model %s routes %d queued ticket(s) automatically: %d left the review queue, %d already "
                        "in Label Studio are served last", model_version, len(removed) + len(marked), len(removed),
                        len(marked))
            self._wake.set()

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
        pid = self.backend.ensure_project(self.settings.project_title, self.label_config, version,
                                          self._project_options())
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

    def _project_options(self) -> dict[str, Any]:
        """Project fields from the policy: reviewers per task (the usual number; the adapter gives the few tasks
        that need more their own overlap, one request each) and the definitions and rubric as instructions."""
        rules = self.policy.review
        return {"maximum_annotations": rules.reviewers,
                "overlap_cohort_percentage": 100, "expert_instruction": instructions(self.policy),
                "show_instruction": True}

    @property
    def adjudication_title(self) -> str:
        """Title of the Label Studio project where disagreements are settled."""
        return f"{self.settings.project_title} - adjudication"

    def ensure_adjudication_project(self) -> int:
        """The adjudication project (one adjudicator per task, the reviewers' answers on screen), with the webhook."""
        if self._adjudication_pid is not None:
            return self._adjudication_pid
        pid = self.backend.ensure_project(self.adjudication_title, self.adjudication_config, "",
                                          {"maximum_annotations": 1, "expert_instruction": instructions(self.policy),
                                           "show_instruction": True})
        if self.webhook_url:
            self.backend.ensure_webhook(
                pid, self.webhook_url, {self.settings.webhook_header: self.settings.webhook_secret.get_secret_value()}
            )
        self.outbox.set_meta("adjudication_project_id", str(pid))
        self._adjudication_pid = pid
        return pid

    def sync_now(self) -> SyncReport:
        """Deliver every waiting item (batches, oldest first); each ticket becomes exactly one task."""
        with self._sync_lock:
            try:
                report = self._deliver()
            except ReviewError as err:
                self._ensured = None
                self._adjudication_pid = None
                self._last_error = str(err)
                raise
            self._last_ok = time.time()
            self._last_error = None
            return report

    def _deliver(self) -> SyncReport:
        counts = self.outbox.counts()
        if counts["waiting"] == 0 and counts["prediction_updates"] == 0 and counts["adjudication_waiting"] == 0:
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
                sent = self.backend.push_tasks(pid, [_draft(i) for i in todo])
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
        adjudicate = self._send_adjudications()
        version = self._desired_model_version()
        if version and (delivered or already or updated) and self._version_set != (pid, version):
            # Uncertainty sampling only looks at predictions of the project's model_version.
            self.backend.set_model_version(pid, version)
            self._version_set = (pid, version)
        if delivered or already or updated or adjudicate:
            logger.info("review sync: %d delivered, %d already in Label Studio, %d rejected, %d predictions updated, "
                        "%d sent to adjudication", delivered, already, rejected, updated, adjudicate)
        return SyncReport(delivered, already, rejected, updated, adjudicate)

    def _push_one_by_one(self, pid: int, items: Sequence[QueueItem]) -> tuple[dict[str, int], int]:
        """After a refused batch: send items singly so one bad task cannot hold back the others."""
        sent: dict[str, int] = {}
        bad = 0
        for it in items:
            try:
                sent.update(self.backend.push_tasks(pid, [_draft(it)]))
            except ReviewBackendRejected as err:
                logger.error("Label Studio refused the task of ticket %s: %s", it.ticket_id, err)
                self.outbox.reject(it.ticket_id, str(err))
                bad += 1
        return sent, bad

    def _update_predictions(self, pid: int) -> int:
        """Attach re-scored tickets' new predictions: claimed like deliveries (one writer per task), sent in bulk."""
        n = 0
        lease = 3 * self.settings.request_timeout_s
        while items := self.outbox.claim_prediction_updates(self.settings.batch_size, lease):
            pairs: list[tuple[QueueItem, Prediction]] = []
            for it in items:
                draft = draft_from_json(it.payload)
                if draft.prediction is not None and it.task_id is not None:
                    pairs.append((it, draft.prediction))
            try:
                self.backend.add_predictions(pid, [(int(it.task_id or 0), p) for it, p in pairs])
            except ReviewError:
                self.outbox.release_prediction_updates([it.ticket_id for it in items])
                raise
            for it in items:
                self.outbox.clear_prediction_update(it.ticket_id, it.payload)
            n += len(pairs)
        return n

    def _send_adjudications(self) -> int:
        """Create an adjudication task for each review task whose reviewers disagree (claimed, once each)."""
        lease = 3 * self.settings.request_timeout_s
        n = 0
        while claimed := self.outbox.claim_adjudications(self.settings.batch_size, lease):
            drafts = [draft_from_json(payload) for _, payload in claimed]
            try:
                pid = self.ensure_adjudication_project()
                created = self.backend.push_tasks(pid, drafts)
            except ReviewError:
                self.outbox.release_adjudications([t for t, _ in claimed])
                raise
            self.outbox.mark_adjudication_sent({t: created[d.ticket_id] for (t, _), d in zip(claimed, drafts,
                                                                                             strict=True)})
            n += len(created)
        return n

    def _check_disagreement(self, task_id: int) -> None:
        """Queue the task for adjudication when its reviewers' valid answers differ (once per task)."""
        records = [r for r in self.outbox.annotations(task_id=task_id) if r.adjudicates_task is None]
        split = disagreements(records, self.policy).get(task_id)
        if not split:
            return
        answers = "; ".join(f"reviewer {r.annotator}: {', '.join(r.categories) or '-'} / {r.severity or '-'}"
                            for r in split)
        last = split[-1]
        draft = TaskDraft(ticket_id=f"adjudicate-{task_id}", data={
            "text": last.text, "ticket_id": last.ticket_id or "", "adjudicates_task": task_id,
            ANSWERS: f"Answers: {answers}", "policy_version": last.policy_version or self.policy.version,
        })
        if self.outbox.open_adjudication(task_id, last.ticket_id, draft_to_json(draft)):
            logger.info("reviewers disagree on task %s (%s): sent to adjudication", task_id, answers)
            self._wake.set()

    # ------------------------------------------------------------------------------------------ labels back

    def _record(self, a: RemoteAnnotation, via: str) -> str:
        """Store one annotation; an empty or inconsistent one is kept with the reason it is not a label."""
        cats, sev, rationale = parse_result(a.result)
        data = a.task_data or {}
        ticket = data.get("ticket_id")
        ticket_id = None if ticket is None or ticket == "" else str(ticket)
        problem = None if a.was_cancelled else annotation_problem(cats, sev, self.policy)
        settles = data.get("adjudicates_task")
        if problem is not None:
            logger.warning("annotation %s of task %s rejected: %s", a.annotation_id, a.task_id, problem)
        version = a.model_version
        if not version and ticket_id is not None:
            row = self.outbox.queued(ticket_id)
            version = row.model_version if row else None
        rec = AnnotationRecord(
            annotation_id=a.annotation_id, task_id=a.task_id, ticket_id=ticket_id,
            text=str(data.get("text") or ""), annotator=a.annotator, categories=tuple(cats), severity=sev,
            rationale=rationale, result=json.dumps(list(a.result)), created_at=a.created_at,
            updated_at=a.updated_at, model_version=version,
            policy_version=str(data.get("policy_version") or self.policy.version),
            was_cancelled=a.was_cancelled, via=via, rejected_reason=problem, escalate=escalated(a.result),
            adjudicates_task=int(settles) if isinstance(settles, int | str) and str(settles).isdigit() else None,
        )
        outcome = self.outbox.record_annotation(rec)
        if outcome in ("created", "updated"):
            if settles is None and problem is None:
                self._check_disagreement(a.task_id)
            self._tell_decision_log(rec, problem)
        return outcome if problem is None else f"{outcome} (rejected: {problem})"

    def _tell_decision_log(self, rec: AnnotationRecord, problem: str | None) -> None:
        """Hand a stored annotation to the decision log: a valid one is a label; a rejected one judges nothing
        (an earlier valid version of it is withdrawn there)."""
        if problem is None:
            if self.on_label is not None:
                self.on_label(rec)
        elif self.on_retract is not None:
            self.on_retract([rec.annotation_id])

    def _retract(self, annotation_ids: Sequence[int], via: str) -> int:
        n = self.outbox.retract(annotation_ids, via=via)
        if self.on_retract is not None:
            self.on_retract(annotation_ids)
        return n

    def record_webhook(self, payload: Mapping[str, Any]) -> str:
        """Record one Label Studio event (annotation created/updated/deleted); never trains. Returns the outcome."""
        if not isinstance(payload, Mapping):
            raise WebhookPayloadError(f"expected a JSON object, got {type(payload).__name__}")
        action = payload.get("action")
        if not isinstance(action, str):
            raise WebhookPayloadError("missing 'action' (a Label Studio webhook event name)")
        ours = self.outbox.get_meta("project_id")
        theirs = _project_id(payload.get("project"))
        adjudication = self.outbox.get_meta("adjudication_project_id")
        if ours is not None and theirs is not None and str(theirs) not in (ours, adjudication):
            return f"ignored: event of project {theirs}, this queue uses project {ours}"
        if action in DELETE_ACTIONS:
            raw = payload.get("annotations")
            if not isinstance(raw, list) or not all(isinstance(a, Mapping) and "id" in a for a in raw):
                raise WebhookPayloadError(f"{action}: 'annotations' must be a list of objects with an 'id'")
            n = self._retract([int(a["id"]) for a in raw], via="webhook")
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
            pids = [self.ensure_project()]
            if self.outbox.get_meta("adjudication_project_id") is not None:
                pids.append(self.ensure_adjudication_project())
            snaps = [self.backend.list_annotations(pid) for pid in pids]
        outcomes: list[str] = []
        present: set[int] = set()
        deleted = 0
        for snap in snaps:
            outcomes += [self._record(a, via="sync").split(" ")[0] for a in snap.annotations]
            here = {a.annotation_id for a in snap.annotations}
            present |= here
            gone = sorted(self.outbox.live_annotation_ids(sorted(snap.task_ids)) - here)
            deleted += self._retract(gone, via="sync") if gone else 0
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
        state = self.outbox.adjudications()
        votes: dict[str, list[tuple[frozenset[str], str | None]]] = {}
        where: dict[str, str] = {}
        for task_id, records in disagreements(self.outbox.annotations(), self.policy).items():
            item = records[-1].ticket_id or f"task-{task_id}"
            votes[item] = [(frozenset(c for c in r.categories if c in names), r.severity) for r in records]
            where[item] = state.get(task_id, "waiting")
        split = [replace(a, reason=f"reviewers disagree (adjudication {where.get(a.item_id, 'waiting')}): "
                                   f"{a.reason}") for a in annotator_disagreements(votes, names)]
        return audit_queue(errors, split, limit=limit)

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


def build_review_service(settings: Settings, policy: Policy, serving: bool = True) -> ReviewService | None:
    """The configured review service (SQLite outbox + real Label Studio), or None when review is disabled.

    Only the server (`serving`) derives its webhook address from the port it bound; a command-line process
    (`triage review push`) registers a webhook only when one is configured explicitly (webhook_url or
    api_public_url), so it never points Label Studio at a port nobody listens on.
    """
    ls = settings.labelstudio
    if not ls.enabled:
        return None
    from triage.adapters.labelstudio import LabelStudioBackend

    host = "127.0.0.1" if settings.serving.host in ("0.0.0.0", "::") else settings.serving.host
    # `triage serve` puts the port it actually bound into the settings; a public URL overrides it.
    api = (ls.api_public_url or f"http://{host}:{settings.serving.port}").rstrip("/")
    webhook = ls.webhook_url or (f"{api}/v1/review/webhook" if serving or ls.api_public_url else "")
    outbox = Outbox(ls.outbox_path or settings.home / "review.db")
    keys = settings.named_api_keys()  # with keys on, Label Studio calls /ml/* with the first one (basic auth)
    backend = LabelStudioBackend(ls.url, ls.api_token.get_secret_value(), timeout_s=ls.request_timeout_s,
                                 ml_backend_auth=(keys[0][0], keys[0][1].get_secret_value()) if keys else None)
    return ReviewService(outbox, backend, policy, ls, webhook_url=webhook,
                         ml_backend_url=ls.ml_backend_url or f"{api}/ml")


def report_dict(report: SyncReport | PullReport) -> dict[str, int]:
    """A report as a plain dict (for JSON and the CLI)."""
    return asdict(report)
