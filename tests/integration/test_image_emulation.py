"""The Docker image without Docker: its ENV and CMD from the Dockerfile, a non-root user, the model directory
read-only (owned by root), the data volume the only writable place; /readyz must answer 200 within 30 s."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from triage.models.base import Classifier

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534


def dockerfile_env_and_cmd(path: Path) -> tuple[dict[str, str], list[str]]:
    """ENV assignments (continuation lines joined) and the exec-form CMD of a Dockerfile."""
    lines, current = [], ""
    for raw in path.read_text().splitlines():
        if raw.lstrip().startswith("#"):
            continue
        current += raw.rstrip("\\").strip() + " "
        if not raw.rstrip().endswith("\\"):
            lines.append(current.strip())
            current = ""
    env: dict[str, str] = {}
    cmd: list[str] = []
    for line in lines:
        if line.startswith("ENV "):
            for pair in line[4:].split():
                key, _, value = pair.partition("=")
                env[key] = value.strip('"')
        elif line.startswith("CMD "):
            cmd = json.loads(line[4:])
    return env, cmd


@pytest.fixture
def image_dirs(tiny_classifier: Classifier) -> Iterator[tuple[Path, Path]]:
    """(model dir read-only and root-owned, data dir owned by the non-root user), outside root-only temp dirs."""
    if os.geteuid() != 0:
        pytest.skip("switching to a non-root user needs root")
    base = Path(tempfile.mkdtemp(prefix="triage-image-"))
    base.chmod(0o755)
    model, data = base / "models" / "triage", base / "data"
    model.mkdir(parents=True)
    tiny_classifier.save(model)
    for p in [model, *model.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    (base / "models").chmod(0o555)
    data.mkdir()
    os.chown(data, NOBODY, NOBODY)
    try:
        yield model, data
    finally:
        for p in [base / "models", model, *model.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.integration
def test_image_reaches_ready_as_non_root_with_a_read_only_model(image_dirs: tuple[Path, Path]) -> None:
    model, data = image_dirs
    env, cmd = dockerfile_env_and_cmd(ROOT / "Dockerfile")
    assert cmd == ["triage", "serve"] and env["TRIAGE_ENV"] == "prod"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    before = sorted((p.name, p.stat().st_mtime) for p in model.rglob("*"))
    run_env = {
        "PATH": os.environ["PATH"], "HOME": str(data), "PYTHONPATH": str(ROOT),
        **env,
        # what the image's volumes and `docker run -e` provide
        "TRIAGE_HOME": str(data), "TRIAGE_SERVING__MODEL_DIR": str(model), "TRIAGE_SERVING__PORT": str(port),
        "TRIAGE_API_KEYS": "ops:image-test-key-1", "TRIAGE_LABELSTUDIO__API_TOKEN": "ls-token-for-the-test",
        "TRIAGE_LABELSTUDIO__WEBHOOK_SECRET": "webhook-secret-for-the-test",
    }
    exe = [str(Path(sys.executable).parent / cmd[0]), *cmd[1:]]
    started = time.monotonic()
    proc = subprocess.Popen(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *exe],
                            env=run_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        ready = None
        while time.monotonic() - started < 30 and proc.poll() is None:
            try:
                ready = httpx.get(f"{url}/readyz", timeout=1)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        assert ready is not None and ready.status_code == 200, (ready and ready.text, proc.poll())
        assert elapsed < 30
        key = {"X-API-Key": "image-test-key-1"}
        assert httpx.post(f"{url}/v1/score", json={"tickets": [{"id": "A", "text": "hello"}]}).status_code == 401
        scored = httpx.post(f"{url}/v1/score", json={"tickets": [{"id": "A", "text": "hello"}]}, headers=key)
        assert scored.status_code == 200, scored.text
        assert httpx.get(f"{url}/docs").status_code == 404  # docs off in prod
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert sorted((p.name, p.stat().st_mtime) for p in model.rglob("*")) == before  # nothing written to the model
    outbox = data / "review.db"
    assert outbox.stat().st_uid == NOBODY and stat.S_IMODE(outbox.stat().st_mode) == 0o600
    first = next(line for line in out.splitlines() if line.startswith("{"))
    assert json.loads(first)["level"]  # JSON logs, as the image sets
    print(f"ready in {elapsed:.1f} s")
