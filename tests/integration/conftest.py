"""Real services for integration tests: Label Studio started by the project's script, the API under uvicorn."""

from __future__ import annotations

import dataclasses
import os
import random
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "labelstudio.sh"


def free_port() -> int:
    """A TCP port nobody listens on now (and its +1 too: Label Studio takes port+1 when busy)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with socket.socket() as s2:
            try:
                s2.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return int(port)
    raise RuntimeError("no free port pair found")


@dataclass
class LabelStudioServer:
    """A Label Studio process run by scripts/labelstudio.sh, with what a client needs."""

    url: str
    token: str
    env: dict[str, str]
    start_seconds: float

    def _run(self, command: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(SCRIPT), command], env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def up(self) -> float:
        """Start (idempotent); seconds it took."""
        t0 = time.perf_counter()
        done = self._run("up")
        if done.returncode != 0:
            raise RuntimeError(f"labelstudio.sh up failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return time.perf_counter() - t0

    def down(self) -> None:
        """Stop it (SIGTERM, wait)."""
        done = self._run("down", timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"labelstudio.sh down failed:\n{done.stderr[-3000:]}")

    def healthy(self) -> bool:
        """GET /health says UP."""
        try:
            return httpx.get(f"{self.url}/health", timeout=2).json().get("status") == "UP"
        except (httpx.HTTPError, ValueError):
            return False


@pytest.fixture(scope="session")
def labelstudio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudioServer]:
    """Label Studio on a free port with its own data dir; installed first if its venv is missing."""
    port = free_port()
    data = tmp_path_factory.mktemp("labelstudio")
    token = f"it-{random.Random().getrandbits(64):016x}"
    env = {**{k: v for k, v in os.environ.items() if k != "TRIAGE_LS_PORT"},
           "TRIAGE_LABELSTUDIO__URL": f"http://127.0.0.1:{port}", "TRIAGE_LS_DATA": str(data), "TRIAGE_LS_TOKEN": token,
           "TRIAGE_LS_PASSWORD": "integration-password"}
    server = LabelStudioServer(f"http://127.0.0.1:{port}", token, env, 0.0)
    server.start_seconds = server.up()
    try:
        yield server
    finally:
        server.down()


# ---------------------------------------------------------------------------------------------- a real model


@dataclass
class StaticSource:
    """A ModelSource that serves one already-loaded model."""

    loaded: object

    def current_version(self) -> str | None:
        return str(self.loaded.version)  # type: ignore[attr-defined]

    def load(self) -> object:
        return self.loaded


@pytest.fixture(scope="session")
def trained_model() -> object:
    """A real baseline classifier, trained in seconds on a bounded sample of the shared datasets."""
    from training.baseline import BaselineParams, fit
    from triage.data.sources import load_all, load_examples
    from triage.models.base import LoadedModel
    from triage.settings import Settings
    from triage.taxonomy import load_policy

    policy = load_policy()
    datasets = Settings().datasets_dir
    if datasets is not None:
        examples = load_all(datasets, ["sms_spam", "smishing", "davidson", "openai_moderation", "ethos_multi"],
                            policy)
        random.Random(7).shuffle(examples)
        train, validation, held_out = examples[:2500], examples[2500:3000], examples[3000:]
    else:
        train = validation = held_out = load_examples(policy)
    # Small and single-threaded: the point is a real model, not a good one.
    wanted = {"max_word_features": 20_000, "max_char_features": 30_000, "n_jobs": 1}
    known = {f.name for f in dataclasses.fields(BaselineParams)}
    clf = fit(train, validation, policy, BaselineParams(**{k: v for k, v in wanted.items() if k in known}))
    loaded = LoadedModel(classifier=clf, name="triage-it", version="it-1", alias="champion", run_id=None,
                         metrics={})
    return {"loaded": loaded, "held_out": held_out, "policy": policy}


# ---------------------------------------------------------------------------------------------- the API


@dataclass
class RunningApi:
    """The real FastAPI app served by uvicorn in a thread, with its review service."""

    url: str
    app: object
    review: object
    server: object
    thread: threading.Thread

    def score(self, tickets: list[dict], client: httpx.Client | None = None) -> dict:
        """POST /v1/score."""
        c = client or httpx.Client(timeout=30)
        r = c.post(f"{self.url}/v1/score", json={"tickets": tickets})
        r.raise_for_status()
        return dict(r.json())


@pytest.fixture
def make_api(labelstudio: LabelStudioServer, trained_model: dict, tmp_path: Path
             ) -> Iterator[Callable[..., RunningApi]]:
    """Start the API against the test Label Studio: its own outbox and project title per call."""
    import uvicorn

    from serving.app import create_app
    from serving.routes import ml_backend, review
    from triage.review.service import build_review_service
    from triage.settings import LabelStudioSettings, MlflowSettings, ServingSettings, Settings

    started: list[RunningApi] = []

    def make(title: str, policy_path: Path | None = None, **ls_overrides: object) -> RunningApi:
        port = free_port()
        api = f"http://127.0.0.1:{port}"
        home = tmp_path / f"home-{len(started)}"
        ls = LabelStudioSettings(
            url=labelstudio.url, api_token=labelstudio.token, project_title=title, enabled=True,
            webhook_secret="it-webhook-secret", outbox_path=home / "review.db",
            webhook_url=f"{api}/v1/review/webhook", ml_backend_url=f"{api}/ml",
            sync_interval_s=0.2, backoff_initial_s=0.2, backoff_max_s=1.0, pull_interval_s=0,
            request_timeout_s=10.0, **ls_overrides,  # type: ignore[arg-type]
        )
        settings = Settings(home=home, policy=policy_path, labelstudio=ls,
                            serving=ServingSettings(host="127.0.0.1", port=port),
                            mlflow=MlflowSettings(tracking_uri=f"sqlite:///{home / 'mlflow.db'}"))
        app = create_app(settings, source=StaticSource(trained_model["loaded"]))  # type: ignore[arg-type]
        paths = {getattr(r, "path", "") for r in app.routes}
        if "/v1/review/webhook" not in paths:
            app.include_router(review.router)
        if "/ml/predict" not in paths:
            app.include_router(ml_backend.router)
        if app.state.review is None:
            app.state.review = build_review_service(settings, settings.load_policy())
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                               lifespan="on"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the API did not start")
            time.sleep(0.05)
        app.state.review.start()  # idempotent: the app's lifespan may have started it already
        running = RunningApi(api, app, app.state.review, server, thread)
        started.append(running)
        return running

    try:
        yield make
    finally:
        for r in started:
            r.review.stop()  # type: ignore[attr-defined]
            r.server.should_exit = True  # type: ignore[attr-defined]
            r.thread.join(timeout=15)
            r.review.outbox.close()  # type: ignore[attr-defined]
