"""A new category from 10 seed examples, end to end: `triage serve` scores it at start-up (real encoder), its
tickets go to review; experts label; `retrain --heads-only --promote` fits a light head; hot reload serves it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.api_server import running_api
from tests.seeded import NEW, PARAPHRASE, UNRELATED, write_seeded_policy
from training.heads import retrain_heads
from training.pipeline import train
from triage.data.schema import Example
from triage.data.sources import load_examples
from triage.settings import ServingSettings, Settings

pytestmark = pytest.mark.integration

# Expert labels written for this test (not seeds): offers of fake branded goods, and ordinary tickets.
LABELLED_POSITIVES = (
    "dm me for cheap copies of designer belts with the brand logo, nobody can tell",
    "we sell replica luxury handbags, same stitching as the real brand, shipped worldwide",
    "selling fake branded trainers as originals, 80% off retail",
    "perfect copies of a famous watch brand, serial numbers included",
    "counterfeit cosmetics with the brand packaging, looks genuine, bulk orders",
    "knock-off branded jackets passed off as the real thing, message for price",
    "replica designer scarves with fake authenticity cards",
    "unofficial copies of branded earbuds sold as genuine, sealed box",
)


def _wait_for(url: str, check, timeout_s: float = 120) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = httpx.get(f"{url}/v1/model", timeout=10).json()
        if check(body):
            return body
        time.sleep(0.2)
    raise AssertionError(f"the API did not reach the expected model within {timeout_s} s")


def test_new_category_is_scored_from_examples_then_learns_a_light_head(tmp_path: Path) -> None:
    policy = write_seeded_policy(tmp_path)
    home = tmp_path / "home"
    settings = Settings(home=home, policy=policy, datasets_dir=home / "no-datasets", env="test",
                        serving=ServingSettings(reload_interval_s=0.5))
    assert train(settings, "baseline").promoted  # v1: no head for the new category
    env = {**os.environ, "TRIAGE_HOME": str(home), "TRIAGE_DATASETS_DIR": str(home / "no-datasets"),
           "TRIAGE_POLICY": str(policy), "TRIAGE_LOG_LEVEL": "WARNING", "TRIAGE_LABELSTUDIO__ENABLED": "false",
           "TRIAGE_SERVING__RELOAD_INTERVAL_S": "0.5", "HF_HUB_OFFLINE": "1"}

    with running_api(env) as url:
        info = httpx.get(f"{url}/v1/model").json()
        assert info["version"] == "1" and NEW in info["categories"]
        assert info["example_heads"][NEW]["runs_on"] == "examples"

        r = httpx.post(f"{url}/v1/score", json={"tickets": [
            {"id": "para", "text": PARAPHRASE}, *({"id": f"u{i}", "text": t} for i, t in enumerate(UNRELATED)),
            {"id": "spam", "text": "Congratulations! You won a $1000 gift card, claim at bit.ly/xyz"}]}, timeout=30)
        assert r.status_code == 200, r.text
        para, *others = r.json()["results"]
        assert para["categories"][NEW] > max(o["categories"][NEW] for o in others)
        assert para["category"] == NEW and para["route"] == "review"
        assert any(f"{NEW} runs on seed examples only" in reason for reason in para["reasons"])

        # Experts label 8 positives and 25 ordinary tickets (33 >= the policy's 30); heads-only retrain + promote.
        negatives = [ex.text for ex in load_examples()][:25]
        expert = [Example(t, {NEW: 1}, "medium", "expert") for t in LABELLED_POSITIVES] + \
                 [Example(t, {NEW: 0}, None, "expert") for t in negatives]
        started = time.perf_counter()
        result = retrain_heads(settings, expert, promote=True)
        assert result.promoted and result.version == "2" and [h.name for h in result.heads] == [NEW]
        info = _wait_for(url, lambda b: b["version"] == "2")
        last_label_to_serving = time.perf_counter() - started
        assert info["example_heads"][NEW]["runs_on"] == "light_head"
        assert info["example_heads"][NEW]["labels"] == 10 + 1 + len(expert)  # seeds, counter-example, labels
        assert info["kind"] == "heads" and "macro_f1" in info["metrics"]  # the base's test metrics carried over
        assert last_label_to_serving < 300, f"{last_label_to_serving:.0f} s from the last label to serving"

        r = httpx.post(f"{url}/v1/score", json={"tickets": [
            {"id": "para", "text": PARAPHRASE}, {"id": "u", "text": UNRELATED[0]}]}, timeout=30)
        para, other = r.json()["results"]
        assert para["categories"][NEW] > other["categories"][NEW]
