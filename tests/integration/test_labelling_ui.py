"""A reviewer labels one task in Label Studio's own UI, in a real headless browser (Playwright + Debian's
chromium); the label arrives in the label store exactly once. Screenshots go to docs/img/ for the README."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import ROOT, LabelStudioServer, RunningApi
from tests.integration.test_labelstudio import review_tickets

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "docs" / "img"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ADMIN = "admin@example.com"


def ensure_chromium() -> Path:
    """Debian's chromium, installed with apt on a fresh machine (CI runs as root); Playwright downloads nothing."""
    if not CHROMIUM.exists() and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], check=True, timeout=600, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, timeout=1200,
                       capture_output=True, env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/bin:/bin"})
    if not CHROMIUM.exists():
        pytest.fail("chromium is missing and could not be installed with apt-get")
    return CHROMIUM


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    path = ensure_chromium()
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(path), args=ARGS)
        try:
            yield b
        finally:
            b.close()


def choice(name: str) -> re.Pattern[str]:
    """A choice's accessible name: its value, then the hotkey Label Studio shows after it (e.g. "spam[7]")."""
    return re.compile(rf"^{re.escape(name)}(\[.\])?$")


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def test_a_reviewer_labels_a_task_in_the_browser(
        browser: Any, make_api: Callable[..., RunningApi], labelstudio: LabelStudioServer, trained_model: dict
) -> None:
    api = make_api("it browser")
    (ticket,) = review_tickets(trained_model, "ui", 1)
    ticket["metadata"] = {"channel": "chat", "reporter": "user-77"}
    body = api.score([ticket])
    assert body["results"][0]["route"] == "review"
    wait_until(lambda: api.review.status()["sent"] == 1, 60, "delivery")
    pid = api.review.status()["project_id"]
    SHOTS.mkdir(parents=True, exist_ok=True)

    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    try:
        page.goto(f"{labelstudio.url}/user/login/")
        page.fill("input[name=email]", ADMIN)
        page.fill("input[name=password]", labelstudio.env["TRIAGE_LS_PASSWORD"])
        page.click("button[type=submit], input[type=submit]")
        page.wait_for_url(lambda url: "/login" not in url, timeout=30_000)
        task_id = api.review.outbox.queued(ticket["id"]).task_id
        page.goto(f"{labelstudio.url}/projects/{pid}/data?task={task_id}")
        category = page.get_by_role("checkbox", name=choice("harassment"))
        category.wait_for(timeout=60_000)
        page.get_by_text("Model view (a guess, not a decision)").wait_for(timeout=10_000)
        # The policy's definitions and rubric are the project's instructions.
        page.get_by_role("button", name="Instructions").click()
        page.get_by_text("Choose every category that applies").wait_for(timeout=10_000)
        page.wait_for_timeout(1000)  # the dialog fades in
        page.screenshot(path=str(SHOTS / "labelling-instructions.png"))
        page.keyboard.press("Escape")
        page.get_by_text("Choose every category that applies").wait_for(state="hidden", timeout=10_000)
        # The model's guess is pre-selected: clear it, then give our answer.
        for box in page.get_by_role("checkbox").all():
            if box.is_checked():
                box.uncheck()
        category.check()
        page.get_by_role("radio", name=choice("medium")).check()
        page.get_by_role("checkbox", name=choice("escalate")).check()
        page.screenshot(path=str(SHOTS / "labelling-view.png"), full_page=True)
        page.get_by_role("button", name="Submit").click()
        wait_until(lambda: api.review.status()["annotations"] >= 1, 60, "the webhook of the submitted label")
    except Exception:
        page.screenshot(path=str(ROOT / "results" / "labelling-failure.png"), full_page=True)
        raise
    finally:
        page.close()

    time.sleep(1.0)  # a second delivery of the same event would show up here
    records = api.review.outbox.annotations(include_deleted=True)
    assert len(records) == 1
    (rec,) = records
    assert rec.categories == ("harassment",) and rec.severity == "medium"
    assert rec.escalate and rec.rejected_reason is None and rec.via == "webhook"
    (ex,) = api.review.examples()
    assert ex.labels["harassment"] == 1 and sum(ex.labels.values()) == 1 and ex.severity == "medium"
    assert api.review.pull().created == 0  # the safety-net pull finds the same one annotation
