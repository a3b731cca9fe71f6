"""The retraining loop against a real SQLite MLflow store and a running API: retrain, gate, promote, hot reload,
rollback; and a deliberately worse challenger refused by the gate."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.integration.api_server import running_api
from training.baseline import BaselineParams
from training.pipeline import train
from training.retrain import promote, retrain, rollback
from triage.data.schema import Example
from triage.data.sources import load_examples
from triage.settings import ServingSettings, Settings
from triage.taxonomy import default_policy_path

pytestmark = pytest.mark.integration

EXPERT = [
    Example("Seller is offering cracked copies of the new Photoshop for $5 via DM", {"ip_infringement": 1, "spam": 0},
            "medium", "expert"),
    Example("Account posts full episodes of the show re-uploaded without permission", {"ip_infringement": 1},
            "medium", "expert"),
    Example("They shared my home address and my kids' school in the group chat", {"privacy": 1, "harassment": 1},
            "high", "expert"),
    Example("Posted a photo of my driver's licence with my address visible", {"privacy": 1}, "high", "expert"),
    Example("Just a normal review: the headphones are good value", {"spam": 0, "fraud": 0, "privacy": 0}, "none",
            "expert"),
]


def _env_for(home: Path, policy: Path) -> dict[str, str]:
    return {**os.environ, "TRIAGE_HOME": str(home), "TRIAGE_DATASETS_DIR": str(home / "no-datasets"),
            "TRIAGE_POLICY": str(policy), "TRIAGE_LOG_LEVEL": "WARNING", "TRIAGE_LABELSTUDIO__ENABLED": "false",
            "TRIAGE_SERVING__RELOAD_INTERVAL_S": "0.5"}


@pytest.fixture
def lenient(tmp_path: Path) -> tuple[Settings, dict[str, str]]:
    """A store whose policy allows any drop, so the e2e path is deterministic; the strict gate is tested below."""
    raw = yaml.safe_load(default_policy_path().read_text())
    raw["promotion"] = {"max_macro_f1_drop": 100.0, "max_category_recall_drop": 100.0,
                        "max_critical_recall_drop": 100.0}
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(raw))
    home = tmp_path / "home"
    settings = Settings(home=home, policy=policy, datasets_dir=home / "no-datasets", env="test",
                        serving=ServingSettings(reload_interval_s=0.5))
    return settings, _env_for(home, policy)


def _load(url: str, stop: threading.Event, seen: Counter[str], failures: list[str]) -> None:
    with httpx.Client(base_url=url, timeout=10) as c:
        i = 0
        while not stop.is_set() and i < 5000:
            i += 1
            try:
                r = c.post("/v1/score", json={"tickets": [{"id": f"t{i}", "text": f"win cash now {i}"}]})
                if r.status_code != 200:
                    failures.append(f"{r.status_code}: {r.text[:200]}")
                else:
                    seen[r.json()["model"]["version"]] += 1
            except httpx.HTTPError as err:
                failures.append(repr(err))


def _wait_for_version(url: str, version: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if httpx.get(f"{url}/v1/model", timeout=5).json()["version"] == version:
            return
        time.sleep(0.2)
    raise AssertionError(f"the API did not switch to version {version} within {timeout_s} s")


def test_retrain_gate_promote_hot_reload_rollback(lenient: tuple[Settings, dict[str, str]]) -> None:
    settings, env = lenient
    champion = train(settings, "baseline")
    assert champion.version == "1" and champion.promoted

    with running_api(env) as url:
        assert httpx.get(f"{url}/v1/model").json()["version"] == "1"

        result = retrain(settings, "baseline", expert=EXPERT, expert_weight=3.0)
        assert result.challenger_version == "2"
        assert result.comparison.gate.passed
        assert "golden/macro_f1" in result.comparison.champion and "golden/macro_f1" in result.comparison.challenger
        assert "golden/severity_qwk" in result.comparison.challenger
        assert httpx.get(f"{url}/v1/model").json()["version"] == "1"  # a challenger is not served

        # Hot reload under load: 4 concurrent clients while @champion moves; none may fail.
        stop, seen, failures = threading.Event(), Counter[str](), []
        workers = [threading.Thread(target=_load, args=(url, stop, seen, failures)) for _ in range(4)]
        for w in workers:
            w.start()
        time.sleep(1.5)
        outcome = promote(settings, by="test-suite")
        assert outcome.promoted and outcome.previous == "1" and outcome.version == "2"
        _wait_for_version(url, "2")
        time.sleep(1.5)
        stop.set()
        for w in workers:
            w.join(timeout=30)
        assert failures == []
        assert seen["1"] > 0 and seen["2"] > 0, seen
        info = httpx.get(f"{url}/v1/model").json()
        assert "ip_infringement" in info["categories"] or "privacy" in info["categories"] or info["version"] == "2"

        previous, current = rollback(settings, reason="test rollback", by="test-suite")
        assert (previous, current) == ("2", "1")
        _wait_for_version(url, "1")


def test_worse_challenger_is_refused_with_reasons(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home, datasets_dir=home / "no-datasets", env="test")
    base = load_examples()
    assert train(settings, "baseline", examples=base).promoted
    # Crippled: a tiny vocabulary and heavy regularisation lose most of the signal.
    worse = BaselineParams(max_word_features=20, max_char_features=20, C=0.01, severity_C=0.01, min_df=1)
    result = retrain(settings, "baseline", expert=[], params=worse, base=base)
    gate = result.comparison.gate
    assert not gate.passed
    assert any(r.rule == "golden/macro_f1" for r in gate.failures)
    assert all("champion" in r.detail and "challenger" in r.detail for r in gate.failures)
    outcome = promote(settings, base=base, expert=[])
    assert not outcome.promoted and outcome.previous == "1"
    with pytest.raises(ValueError, match="needs --reason"):
        promote(settings, force=True, base=base, expert=[])
    forced = promote(settings, force=True, reason="incident hotfix", by="alice", base=base, expert=[])
    assert forced.promoted and forced.forced
    from mlflow import MlflowClient

    uri = f"sqlite:///{home / 'mlflow.db'}"
    tags = MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version("triage", forced.version).tags
    assert tags["promoted_by"] == "alice" and tags["promotion_reason"] == "incident hotfix"
    assert tags["promotion_forced"] == "true"


@pytest.fixture(autouse=True)
def _quiet_mlflow() -> Iterator[None]:
    import logging

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    yield
