"""`triage serve --engine ray --replicas 2` answers the same contract tests as `triage serve`."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.api_server import TRIAGE, running_api
from tests.unit.serving import test_api

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
# The contract tests that only need a client of a server serving `triage` version 1 (test_health_ready_model
# also pins the fixture's made-up metrics, so it is left to the in-process suite).
CONTRACT: list[Callable[..., None]] = [
    test_api.test_score_contract, test_api.test_empty_text, test_api.test_whitespace_text,
    test_api.test_text_over_limit, test_api.test_too_many_tickets, test_api.test_no_tickets,
    test_api.test_duplicate_ids, test_api.test_malformed_json, test_api.test_wrong_types,
    test_api.test_missing_and_unknown_fields, test_api.test_tickets_not_a_list,
    test_api.test_concurrent_requests_keep_their_results,
]


def _wait_for_replicas(count: int, timeout_s: float = 600) -> dict[str, int]:
    """Block until the app's deployment is HEALTHY with `count` running replicas; returns the replica states."""
    import ray
    from ray import serve

    ray.init(address="auto", ignore_reinit_error=True, log_to_driver=False)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            app = serve.status().applications.get("triage")
            deployment = app.deployments.get("triage") if app else None
            states = {str(k): int(v) for k, v in (deployment.replica_states if deployment else {}).items()}
            if deployment and deployment.status == "HEALTHY" and states.get("RUNNING") == count:
                return states
            assert time.monotonic() < deadline, f"replicas not running after {timeout_s:.0f} s: {states}"
            time.sleep(2)
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def ray_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    pytest.importorskip("ray.serve")
    home = tmp_path_factory.mktemp("ray-serve-home")
    env = {**os.environ, "TRIAGE_HOME": str(home), "TRIAGE_DATASETS_DIR": str(home / "none"),
           "TRIAGE_LOG_LEVEL": "WARNING", "TRIAGE_LABELSTUDIO__ENABLED": "false", "RAY_AUTH_MODE": "disabled"}
    trained = subprocess.run([TRIAGE, "train", "--model", "baseline"], env=env, cwd=ROOT, capture_output=True,
                             text=True, timeout=600, check=False)
    assert trained.returncode == 0, trained.stderr[-3000:]
    with running_api(env, ready_timeout_s=600, args=["--engine", "ray", "--replicas", "2"]) as url, \
            httpx.Client(base_url=url, timeout=60) as client:
        assert _wait_for_replicas(2)["RUNNING"] == 2  # the contract runs against both replicas
        yield client


@pytest.mark.parametrize("contract", CONTRACT, ids=lambda f: f.__name__)
def test_contract_on_ray_serve(ray_server: httpx.Client, contract: Callable[..., None]) -> None:
    contract(ray_server)


def test_model_info_on_ray_serve(ray_server: httpx.Client) -> None:
    info = ray_server.get("/v1/model").json()
    assert info["name"] == "triage" and info["version"] == "1" and info["kind"] == "baseline"
