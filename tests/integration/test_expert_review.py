"""Expert review against a real Label Studio: ticket identity, label validity, overlap, adjudication, one
prediction per model version."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import ROOT, LabelStudioServer, RunningApi, free_port
from tests.integration.test_labelstudio import review_tickets, wait_until
from triage.adapters.labelstudio import LabelStudioBackend
from triage.data.imports import read_tickets_file
from triage.errors import DataError
from triage.review.annotations import result_for
from triage.review.outbox import Outbox
from triage.review.service import ReviewService
from triage.scorer import Scorer
from triage.settings import LabelStudioSettings
from triage.taxonomy import load_policy
from triage.tickets import ScoredTicket, Ticket

pytestmark = pytest.mark.integration


def _service(ls: LabelStudioServer, outbox: Path, title: str) -> ReviewService:
    settings = LabelStudioSettings(url=ls.url, api_token=ls.token, project_title=title, batch_size=50)
    return ReviewService(Outbox(outbox), LabelStudioBackend(ls.url, ls.token), load_policy(), settings)


def _score(model: dict, rows: list[tuple[str, str, dict]]) -> list[ScoredTicket]:
    scorer = Scorer(model["loaded"].classifier, model["policy"])
    return scorer.score([Ticket(i, t, m) for i, t, m in rows])


def _forced_review(items: list[ScoredTicket]) -> list[ScoredTicket]:
    """The same tickets, all routed to review (which tickets the small test model routes is not under test)."""
    return [replace(s, decision=replace(s.decision, route="review")) for s in items]


def test_identity_validity_overlap_and_adjudication(labelstudio: LabelStudioServer, trained_model: dict,
                                                    tmp_path: Path) -> None:
    held = [ex.text for ex in trained_model["held_out"] if ex.text.strip() and "," not in ex.text
            and "\n" not in ex.text and '"' not in ex.text][:12]
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text("text,channel\n" + "".join(f"{t},sms\n" for t in held[:6]))
    second.write_text("text,channel\n" + "".join(f"{t},email\n" for t in held[6:]))

    # Files without ids are refused, naming their columns.
    for f in (first, second):
        with pytest.raises(DataError, match="the file has the columns 'text', 'channel'"):
            read_tickets_file(f, missing_ids="refuse")

    # With namespaced ids both files are queued, none lost.
    svc = _service(labelstudio, tmp_path / "review.db", "it expert review")
    ls = svc.backend
    assert isinstance(ls, LabelStudioBackend)
    rows = read_tickets_file(first, missing_ids="namespace") + read_tickets_file(second, missing_ids="namespace")
    scored = _forced_review(_score(trained_model, rows))
    high = replace(scored[0], decision=replace(scored[0].decision, severity="high"))
    low = replace(scored[1], decision=replace(scored[1].decision, severity="low", category="spam"))
    scored = [high, low, *scored[2:]]
    assert svc.enqueue(scored, "triage-it", "it-1").new == 12
    assert svc.sync_now().delivered == 12
    pid = svc.ensure_project()
    by_ticket = ls.task_ids_by_ticket(pid)
    assert sorted(by_ticket) == sorted(i for i, _, _ in rows)

    # Overlap through Label Studio's own setting: 2 for a high-severity ticket, 1 for a low one.
    assert ls.task_overlap(by_ticket[high.ticket.id]) == 2
    assert ls.task_overlap(by_ticket[low.ticket.id]) == 1
    config = ET.fromstring(ls.project_label_config(pid))
    required = {c.get("name"): c.get("required") for c in config.iter("Choices")}
    assert required["category"] == "true" and required["severity"] == "true"

    # An id re-sent with another text is a conflict: the task keeps its text and its own model's predictions.
    victim = rows[2][0]
    other = _forced_review(_score(trained_model, [(victim, "a completely different ticket text", {})]))
    result = svc.enqueue(other, "triage-it", "it-2")
    assert result.conflicts == (victim,)
    svc.sync_now()
    task = ls.task_predictions(by_ticket[victim])
    assert [p["model_version"] for p in task] == ["it-1"]
    assert svc.status()["id_conflicts"] == 1

    # A new model version (same texts), pushed by two processes sharing the outbox: one prediction per version.
    twin = _service(labelstudio, tmp_path / "review.db", "it expert review")
    svc.enqueue(_forced_review(_score(trained_model, rows)), "triage-it", "it-3")
    twin.enqueue(_forced_review(_score(trained_model, rows)), "triage-it", "it-3")
    assert twin.sync_now().predictions_updated + svc.sync_now().predictions_updated == 12
    for task_id in by_ticket.values():
        versions = Counter(p["model_version"] for p in ls.task_predictions(task_id))
        assert versions == {"it-1": 1, "it-3": 1}, versions

    # An empty and an inconsistent annotation, sent through Label Studio's API, are rejected with a reason.
    t_empty, t_odd, t_split = (by_ticket[rows[k][0]] for k in (3, 4, 5))
    ls.create_annotation(t_empty, [])
    ls.create_annotation(t_odd, result_for(["none"], "high"))
    # A 1-1 disagreement on a high-severity ticket (two reviewers wanted).
    reviewer = ls.create_user(f"second-{tmp_path.name}@example.com", "reviewer-password-2")
    t_high = by_ticket[high.ticket.id]
    ls.create_annotation(t_high, result_for(["none"], "none"))
    ls.create_annotation_as(t_high, reviewer, result_for(["harassment"], "medium"))
    # An agreeing pair on another ticket is a label straight away.
    ls.create_annotation(t_split, result_for(["spam"], "low"))
    ls.create_annotation_as(t_split, reviewer, result_for(["spam"], "low"))
    svc.pull()
    reasons = {a.task_id: a.rejected_reason for a in svc.outbox.annotations()}
    assert reasons[t_empty] is not None and reasons[t_empty].startswith("no category chosen")
    assert reasons[t_odd] == "no violation ('none') with severity high"
    exported = {ex.meta["task_id"] for ex in svc.examples()}
    assert exported == {str(t_split)}  # not the rejected ones, not the split one
    audit = svc.audit_items(trained_model["loaded"].classifier, min_per_class=1)
    assert any(a.item_id == high.ticket.id and a.kind == "annotator_disagreement"
               and a.reason.startswith("reviewers disagree") for a in audit)

    # The disagreement lands in the adjudication project, showing both answers.
    assert svc.sync_now().sent_to_adjudication == 1
    adj = svc.ensure_adjudication_project()
    (adj_task,) = ls.task_ids_by_ticket(adj).values()
    adj_config = ls.project_label_config(adj)
    assert 'value="$answers"' in adj_config
    adj_data = ls.next_task(adj)["data"]
    assert adj_data["adjudicates_task"] == t_high
    assert "none / none" in adj_data["answers"] and "harassment / medium" in adj_data["answers"]
    ls.create_annotation(adj_task, result_for(["harassment"], "high"))
    svc.pull()
    settled = {ex.meta["task_id"]: ex for ex in svc.examples()}
    assert set(settled) == {str(t_split), str(t_high)}
    ex = settled[str(t_high)]
    assert ex.labels["harassment"] == 1 and ex.severity == "high" and ex.meta["adjudicated_by"]
    st = svc.status()
    assert st["annotations_rejected"] == 2 and st["adjudication_sent"] == 1
    assert st["agreement"]["category_pairwise"]["harassment"] == pytest.approx(0.5)  # 1 of 2 pairs agree
    print(f"\nexpert review: 12 tickets from two id-less files queued, 1 id conflict refused, "
          f"{sum(1 for _ in by_ticket)} tasks with one prediction per version, 2 annotations rejected, "
          f"1 disagreement adjudicated; agreement {st['agreement']['exact_match']}")
    twin.outbox.close()
    svc.outbox.close()


def _serve_env(ls: LabelStudioServer, home: Path, title: str, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRIAGE_HOME": str(home),
           "TRIAGE_LABELSTUDIO__ENABLED": "true", "TRIAGE_LABELSTUDIO__URL": ls.url,
           "TRIAGE_LABELSTUDIO__API_TOKEN": ls.token, "TRIAGE_LABELSTUDIO__PROJECT_TITLE": title,
           "TRIAGE_LABELSTUDIO__WEBHOOK_SECRET": "it-serve-secret", "TRIAGE_SERVING__PORT": "8000",
           "TRIAGE_LABELSTUDIO__PULL_INTERVAL_S": "0", **extra}
    env.pop("TRIAGE_LABELSTUDIO__WEBHOOK_URL", None)
    return env


CLI = [sys.executable, "-c", "from triage_cli.main import app; app()"]


def test_serve_registers_the_webhook_on_the_bound_port_and_a_failed_start_touches_nothing(
        labelstudio: LabelStudioServer, tmp_path: Path) -> None:
    port = free_port()
    title = f"it serve {port}"
    env = _serve_env(labelstudio, tmp_path / "home", title)
    cli = [*CLI, "serve", "--port", str(port)]
    ls = LabelStudioBackend(labelstudio.url, labelstudio.token)
    log = tmp_path / "serve.log"
    first = subprocess.Popen(cli, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300  # start-up imports the ML stack: slow on a busy 2-core machine
        hooks: list[tuple[int, str]] = []
        while time.monotonic() < deadline:
            pid = ls.find_project(title)
            hooks = ls.webhooks(pid) if pid is not None else []
            if hooks:
                break
            assert first.poll() is None, f"the first server exited:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
        assert [url for _, url in hooks] == [f"http://127.0.0.1:{port}/v1/review/webhook"], log.read_text()[-3000:]

        second = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert second.returncode == 2
        assert f"cannot listen on 127.0.0.1:{port}" in second.stdout + second.stderr
        time.sleep(1.0)
        assert pid is not None and ls.webhooks(pid) == hooks  # same id and URL: the failed start touched nothing
        assert first.poll() is None
    finally:
        first.terminate()
        first.wait(timeout=30)


def test_promotion_while_the_server_runs_and_a_push_runs_one_prediction_per_version(
        make_api: Callable[..., RunningApi], labelstudio: LabelStudioServer, trained_model: dict) -> None:
    api = make_api("it promotion")
    tickets = review_tickets(trained_model, "promo", 40)
    api.score(tickets)
    wait_until(lambda: api.review.status()["sent"] == 40, 60, "delivery")
    # The same outbox, as `triage review push` opens it beside the running server.
    push = ReviewService(Outbox(api.review.outbox.path), LabelStudioBackend(labelstudio.url, labelstudio.token),
                         load_policy(), api.review.settings)
    rows = [(t["id"], t["text"], t["metadata"]) for t in tickets]
    rescored = _forced_review(_score(trained_model, rows))
    # A promotion: the server and the push both re-score every ticket with model it-2 and deliver at once.
    workers = [threading.Thread(target=api.review.enqueue, args=(rescored, "triage-it", "it-2")),
               threading.Thread(target=lambda: (push.enqueue(rescored, "triage-it", "it-2"), push.sync_now()))]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    wait_until(lambda: api.review.status()["prediction_updates"] == 0, 60, "prediction updates")
    push.sync_now()
    ls = LabelStudioBackend(labelstudio.url, labelstudio.token)
    pid = api.review.status()["project_id"]
    tasks = ls.task_ids_by_ticket(pid)
    assert len(tasks) == 40
    for task_id in tasks.values():
        versions = Counter(p["model_version"] for p in ls.task_predictions(task_id))
        assert versions == {"it-1": 1, "it-2": 1}, (task_id, versions)
    push.outbox.close()


def test_kill_9_of_a_push_then_a_rerun_delivers_every_ticket_exactly_once(
        labelstudio: LabelStudioServer, tmp_path: Path) -> None:
    n, title, outbox = 300, f"it kill {tmp_path.name}", tmp_path / "kill.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, str(ROOT / "tests" / "integration" / "review_push_child.py"),
                              labelstudio.url, labelstudio.token, str(outbox), title, str(n)], env=env)
    ls = LabelStudioBackend(labelstudio.url, labelstudio.token)
    try:
        deadline = time.monotonic() + 180
        while True:
            pid = ls.find_project(title)
            if pid is not None and len(ls.task_tickets(pid)) >= 30:
                break
            assert child.poll() is None, "the push finished before it could be killed: raise n"
            assert time.monotonic() < deadline, "the push delivered nothing"
            time.sleep(0.05)
    finally:
        child.kill()  # SIGKILL, mid-delivery
        child.wait(30)
    before = len(ls.task_tickets(pid))
    assert before < n, "the push finished before the kill"
    time.sleep(7)  # the killed process's leases (3 x the 2 s request timeout) expire
    rerun = ReviewService(Outbox(outbox), LabelStudioBackend(labelstudio.url, labelstudio.token), load_policy(),
                          LabelStudioSettings(url=labelstudio.url, api_token=labelstudio.token, project_title=title,
                                              batch_size=50))
    report = rerun.sync_now()
    tickets = Counter(t for _, t in ls.task_tickets(pid))
    assert sum(tickets.values()) == n and max(tickets.values()) == 1
    assert rerun.status()["waiting"] == 0 and rerun.status()["sent"] == n
    print(f"\nkill -9 of a push after {before} of {n} tasks: the re-run delivered {report.delivered}, found "
          f"{report.already_there} already there; {n} tasks, one per ticket")
    rerun.outbox.close()


def test_reviewers_get_first_what_the_strategy_ranks_first(
        make_api: Callable[..., RunningApi], labelstudio: LabelStudioServer, trained_model: dict) -> None:
    # severity_weighted is not the model's least-confident order: Label Studio must still serve its ranking.
    api = make_api("it order", strategy="severity_weighted")
    api.score(review_tickets(trained_model, "order", 30))
    wait_until(lambda: api.review.status()["sent"] == 30, 60, "delivery")
    pid = api.review.status()["project_id"]
    ls = LabelStudioBackend(labelstudio.url, labelstudio.token)
    usefulness = {t: api.review.outbox.queued(t).usefulness for t in ls.task_ids_by_ticket(pid)}  # type: ignore[union-attr]
    confidence = {}
    served = []
    for _ in range(5):
        task = ls.next_task(pid)
        served.append(task["data"]["ticket_id"])
        confidence[task["data"]["ticket_id"]] = task["data"]["confidence"]
        ls.create_annotation(int(task["id"]), result_for(["spam"], "low"))
    best = sorted(usefulness.values(), reverse=True)[:5]
    assert [usefulness[t] for t in served] == pytest.approx(best)
    print(f"\nLabel Studio served the strategy's top 5 (usefulness {', '.join(f'{u:.3f}' for u in best)}); their "
          f"model confidence {', '.join(f'{confidence[t]:.3f}' for t in served)}")


def test_kill_9_of_the_server_mid_delivery_then_a_restart_delivers_every_ticket_once(
        labelstudio: LabelStudioServer, trained_model: dict, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    trained_model["loaded"].classifier.save(model_dir)
    title = f"it server kill {tmp_path.name}"
    env = _serve_env(labelstudio, tmp_path / "home", title, TRIAGE_SERVING__MODEL_DIR=str(model_dir),
                     TRIAGE_LABELSTUDIO__BATCH_SIZE="10", TRIAGE_LABELSTUDIO__REQUEST_TIMEOUT_S="2")
    tickets = review_tickets(trained_model, "srvkill", 150)
    ls = LabelStudioBackend(labelstudio.url, labelstudio.token)

    def start() -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        proc = subprocess.Popen([*CLI, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _ready(url) or proc.poll() is not None, 300, "the server")
        assert proc.poll() is None, "the server exited"
        return proc, url

    first, url = start()
    try:
        with httpx.Client(timeout=60) as http:
            for i in range(0, len(tickets), 50):
                assert http.post(f"{url}/v1/score", json={"tickets": tickets[i:i + 50]}).status_code == 200
        wait_until(lambda: (ls.find_project(title) is not None
                            and len(ls.task_tickets(ls.find_project(title) or 0)) >= 20), 120, "first tasks")
    finally:
        first.kill()  # SIGKILL while the background sync delivers
        first.wait(30)
    pid = ls.find_project(title)
    assert pid is not None
    before = len(ls.task_tickets(pid))
    time.sleep(7)  # the killed server's leases (3 x the 2 s request timeout) expire
    second, _ = start()
    try:
        wait_until(lambda: len(ls.task_tickets(pid)) >= 150, 180, "delivery after the restart")
        time.sleep(2)
        tickets_in_ls = Counter(t for _, t in ls.task_tickets(pid))
        assert sum(tickets_in_ls.values()) == 150 and max(tickets_in_ls.values()) == 1
        assert set(tickets_in_ls) == {t["id"] for t in tickets}
    finally:
        second.terminate()
        second.wait(30)
    print(f"\nkill -9 of the server after {before} of 150 tasks: after a restart 150 tasks, one per ticket")


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
