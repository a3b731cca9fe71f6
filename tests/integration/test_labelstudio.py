"""The review loop against a real Label Studio (started by scripts/labelstudio.sh) and the real API."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml

from tests.integration.conftest import LabelStudioServer, RunningApi
from triage.adapters.labelstudio import LabelStudioBackend
from triage.decisions.recorder import in_audit_sample
from triage.review.annotations import result_for
from triage.review.outbox import Outbox
from triage.review.service import ReviewService
from triage.scorer import Scorer
from triage.settings import DecisionsSettings, LabelStudioSettings
from triage.taxonomy import default_policy_path, load_policy
from triage.tickets import Ticket

pytestmark = pytest.mark.integration


def wait_until(check: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def review_tickets(model: dict, prefix: str, n: int, skip: int = 0) -> list[dict]:
    """`n` real tickets from the shared datasets that the model routes to review."""
    scorer = Scorer(model["loaded"].classifier, model["policy"])
    out: list[dict] = []
    pool = model["held_out"][skip:]
    for start in range(0, len(pool), 200):
        batch = [Ticket(f"{prefix}-{skip + start + i}", ex.text, {"source": ex.source})
                 for i, ex in enumerate(pool[start:start + 200]) if ex.text.strip()]
        for s in scorer.score(batch):
            if s.decision.route == "review":
                out.append({"id": s.ticket.id, "text": s.ticket.text, "metadata": dict(s.ticket.metadata)})
        if len(out) >= n:
            return out[:n]
    raise AssertionError(f"only {len(out)} of {n} tickets need review")


def client(ls: LabelStudioServer) -> LabelStudioBackend:
    return LabelStudioBackend(ls.url, ls.token)


def test_label_studio_started_by_the_script(labelstudio: LabelStudioServer) -> None:
    assert labelstudio.healthy()
    print(f"\nLabel Studio up in {labelstudio.start_seconds:.1f} s at {labelstudio.url}")
    # Signup is closed and the API needs the token.
    assert httpx.get(f"{labelstudio.url}/api/projects/", timeout=5).status_code in (401, 403)
    again = labelstudio.up()  # idempotent: already up is a no-op
    assert again < 5 and labelstudio.healthy()


def test_push_with_predictions_serves_the_least_certain_first(
        make_api: Callable[..., RunningApi], labelstudio: LabelStudioServer, trained_model: dict) -> None:
    api = make_api("it push")
    tickets = [{"id": f"push-{i}", "text": ex.text, "metadata": {"source": ex.source}}
               for i, ex in enumerate(trained_model["held_out"][:80])]
    body = api.score(tickets)
    # What reaches the experts: the review tickets and the decision log's random audit sample of auto decisions.
    audit_rate = DecisionsSettings().audit_rate
    review_ids = {r["id"] for r in body["results"]
                  if r["route"] == "review" or in_audit_sample(r["id"], audit_rate)}
    assert len(review_ids) >= 5, "the sample should hold tickets that need review"
    wait_until(lambda: api.review.status()["sent"] == len(review_ids), what="delivery")
    pid = api.review.status()["project_id"]
    ls = client(labelstudio)

    tickets_in_ls = [t for _, t in ls.task_tickets(pid)]
    assert sorted(tickets_in_ls) == sorted(review_ids)

    by_ticket = ls.task_ids_by_ticket(pid)
    scores = {}
    for ticket, task_id in by_ticket.items():
        (pred,) = ls.task_predictions(task_id)
        assert pred["model_version"] == "it-1"
        # Severity is pre-filled only when consistent with the categories (else the reviewer chooses it).
        assert "category" in {r["from_name"] for r in pred["result"]} <= {"category", "severity"}
        scores[ticket] = pred["score"]
    served = ls.next_task(pid)
    lowest = min(scores.values())
    assert scores[served["data"]["ticket_id"]] == pytest.approx(lowest)
    assert served["data"]["priority"] >= 0 and served["data"]["metadata"]["source"]
    print(f"\n{len(review_ids)} of {len(tickets)} tickets pushed; /next served score {lowest:.3f} "
          f"(highest {max(scores.values()):.3f})")

    # Re-scoring the same tickets never makes a second task.
    api.score(tickets)
    api.review.sync_now()
    assert len(ls.task_tickets(pid)) == len(review_ids)


def test_annotations_reach_the_label_store_by_webhook(
        make_api: Callable[..., RunningApi], labelstudio: LabelStudioServer, trained_model: dict,
        tmp_path: Path) -> None:
    api = make_api("it labels")
    api.score(review_tickets(trained_model, "lab", 6))
    wait_until(lambda: api.review.status()["sent"] == 6, what="delivery")
    pid = api.review.status()["project_id"]
    ls = client(labelstudio)
    tasks = sorted(ls.task_ids_by_ticket(pid).items())
    store = api.review.outbox

    def example_of(ticket: str) -> object:
        return next((e for e in api.review.examples() if e.meta["ticket_id"] == ticket), None)

    (t1, task1), (t2, task2) = tasks[0], tasks[1]
    aid = ls.create_annotation(task1, result_for(["fraud"], "medium", "asks for a card number"))
    wait_until(lambda: example_of(t1) is not None, what="webhook of the new annotation")
    (rec,) = [a for a in store.annotations() if a.annotation_id == aid]
    assert rec.via == "webhook" and rec.model_version == "it-1"
    assert rec.policy_version == load_policy().version and rec.annotator and rec.updated_at
    ex = example_of(t1)
    assert ex.labels["fraud"] == 1 and sum(ex.labels.values()) == 1 and ex.severity == "medium"

    ls.update_annotation(aid, result_for(["spam"], "low"))
    wait_until(lambda: example_of(t1) is not None and example_of(t1).labels["spam"] == 1, what="update webhook")
    assert example_of(t1).labels["fraud"] == 0 and example_of(t1).severity == "low"

    ls.delete_annotation(aid)
    wait_until(lambda: example_of(t1) is None, what="deletion webhook")
    assert api.review.status()["annotations_deleted"] == 1

    # Two reviewers on one task: kept apart, agreement computed; they disagree, so no label until adjudicated.
    reviewer = ls.create_user(f"reviewer-{time.time_ns()}@example.com", "reviewer-password-1")
    ls.create_annotation(task2, result_for(["spam"], "low"))
    ls.create_annotation_as(task2, reviewer, result_for(["spam", "fraud"], "low"))
    wait_until(lambda: api.review.status()["agreement"]["tasks"] == 1, what="two reviewers")
    assert example_of(t2) is None
    wait_until(lambda: api.review.status()["adjudication_sent"] == 1, what="the adjudication task")
    st = api.review.status()
    assert st["annotators"] == 2 and st["agreement"]["tasks"] == 1
    assert st["agreement"]["category_pairwise"]["spam"] == 1.0
    assert st["agreement"]["category_pairwise"]["fraud"] == 0.0

    # The sync command is a safety net: a fresh store pulls the same live annotations.
    fresh = ReviewService(Outbox(tmp_path / "fresh.db"), ls, load_policy(),
                          LabelStudioSettings(url=labelstudio.url, api_token=labelstudio.token,
                                              project_title="it labels"))
    report = fresh.pull()
    assert report.created == 2
    assert sorted(a.annotation_id for a in fresh.outbox.annotations()) == \
        sorted(a.annotation_id for a in store.annotations())
    again = fresh.pull()
    assert (again.created, again.updated, again.deleted) == (0, 0, 0)
    # The live store saw everything by webhook; a pull over it changes nothing either.
    assert api.review.pull().created == 0
    fresh.outbox.close()


def test_policy_change_updates_the_config_and_keeps_annotations(
        make_api: Callable[..., RunningApi], labelstudio: LabelStudioServer, trained_model: dict,
        tmp_path: Path) -> None:
    api = make_api("it policy")
    api.score(review_tickets(trained_model, "pol", 3))
    wait_until(lambda: api.review.status()["sent"] == 3, what="delivery")
    pid = api.review.status()["project_id"]
    ls = client(labelstudio)
    task = next(iter(ls.task_ids_by_ticket(pid).values()))
    aid = ls.create_annotation(task, result_for(["hate"], "high"))

    raw = yaml.safe_load(default_policy_path().read_text())
    raw["version"] = "2026.12.0-it"
    raw["categories"].append({"name": "extremism", "title": "Violent extremism",
                              "definition": "Praise, support or recruitment for violent extremist groups."})
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(raw))
    changed = load_policy(path)
    svc = ReviewService(Outbox(tmp_path / "p.db"), ls, changed,
                        LabelStudioSettings(url=labelstudio.url, api_token=labelstudio.token,
                                            project_title="it policy"))
    assert svc.ensure_project() == pid
    config = ls.project_label_config(pid)
    assert 'value="extremism"' in config and "2026.12.0-it" in config
    kept = [a.annotation_id for a in ls.list_annotations(pid).annotations]
    assert kept == [aid]
    svc.outbox.close()


def test_outage_every_item_arrives_exactly_once(
        make_api: Callable[..., RunningApi], labelstudio: LabelStudioServer, trained_model: dict) -> None:
    api = make_api("it outage")
    warm = review_tickets(trained_model, "warm", 20)
    outage = review_tickets(trained_model, "out", 100, skip=1500)
    http = httpx.Client(timeout=30)

    def timed(ticket: dict) -> float:
        t0 = time.perf_counter()
        body = api.score([ticket], http)
        assert body["results"][0]["route"] == "review"
        return time.perf_counter() - t0

    up_latencies = [timed(t) for t in warm]
    wait_until(lambda: api.review.status()["sent"] == 20, what="warm-up delivery")

    labelstudio.down()
    assert not labelstudio.healthy()
    down_latencies = [timed(t) for t in outage]
    time.sleep(1.5)  # the background sync keeps failing meanwhile
    st = api.review.status()
    assert st["waiting"] == 100 and st["sent"] == 20
    t0 = time.perf_counter()
    restart_s = labelstudio.up()
    wait_until(lambda: api.review.status()["sent"] == 120, timeout=120, what="delivery after the outage")
    caught_up_s = time.perf_counter() - t0

    pid = api.review.status()["project_id"]
    tickets = Counter(t for _, t in client(labelstudio).task_tickets(pid))
    assert sum(tickets.values()) == 120 and max(tickets.values()) == 1
    assert {t["id"] for t in outage} <= set(tickets)

    up_med, down_med = statistics.median(up_latencies), statistics.median(down_latencies)
    print(f"\noutage: 100/100 tasks arrived once each; score latency median {1000 * up_med:.1f} ms with Label "
          f"Studio up, {1000 * down_med:.1f} ms while down (max {1000 * max(down_latencies):.1f} ms); "
          f"restart {restart_s:.1f} s, all delivered {caught_up_s:.1f} s after restart began")
    # Scoring never waits for Label Studio: a connection attempt alone would add the 10 s request timeout
    # or at least a refused-connection round trip per request.
    assert down_med < max(3 * up_med, up_med + 0.05)
    assert max(down_latencies) < 2.0


def test_ml_backend_predicts_for_hand_imported_tasks(
        make_api: Callable[..., RunningApi], labelstudio: LabelStudioServer, trained_model: dict) -> None:
    api = make_api("it ml backend")
    pid = api.review.ensure_project()
    ml_id = api.review.connect_ml_backend()
    assert ml_id > 0
    ls = client(labelstudio)
    texts = [ex.text for ex in trained_model["held_out"][:3]]
    ids = ls.import_plain_tasks(pid, [{"text": t} for t in texts])
    assert all(ls.task_predictions(i) == [] for i in ids)
    ls.retrieve_predictions(pid, ids)
    for task_id in ids:
        preds = ls.task_predictions(task_id)
        assert len(preds) == 1, f"task {task_id} got {len(preds)} predictions"
        assert preds[0]["model_version"] == "it-1"
        assert 0.0 <= preds[0]["score"] <= 1.0
        cats = next(r for r in preds[0]["result"] if r["from_name"] == "category")["value"]["choices"]
        assert set(cats) <= {*load_policy().category_names, "none"}
