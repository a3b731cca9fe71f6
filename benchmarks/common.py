"""What the benchmark scripts share: real texts from ../shared/datasets and a `triage serve` process."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from triage.data.sources import load_all  # noqa: E402
from triage.data.splits import Split, split_examples  # noqa: E402
from triage.settings import get_settings  # noqa: E402

TRIAGE = str(Path(sys.executable).parent / "triage")


def real_texts(n: int, seed: int, split: Split | None = None, max_chars: int = 20_000) -> list[str]:
    """`n` texts sampled from the shared datasets (one split of them when given); exits if the data is absent."""
    settings = get_settings()
    if settings.datasets_dir is None:
        sys.exit("benchmark: ../shared/datasets not found (set TRIAGE_DATASETS_DIR)")
    examples = load_all(settings.datasets_dir)
    pool = split_examples(examples)[split] if split else examples
    return [ex.text[:max_chars] for ex in random.Random(seed).sample(pool, min(n, len(pool)))]


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerNotReady(RuntimeError):
    """`triage serve` exited during start-up or did not answer GET /readyz in time."""


def wait_ready(proc: subprocess.Popen[Any], url: str, timeout_s: float) -> None:
    """Poll GET {url}/readyz until it answers 200; ServerNotReady if the process exits first or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise ServerNotReady(f"{proc.args} exited during start-up")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise ServerNotReady(f"{proc.args} was not ready within {timeout_s:.0f} s")
        time.sleep(0.3)


def stop_server(proc: subprocess.Popen[Any], timeout_s: float = 30) -> None:
    """SIGTERM (a clean shutdown drains the server's queues), SIGKILL if it has not exited within `timeout_s`."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def served(extra_env: Mapping[str, str] | None = None, ready_timeout_s: float = 180,
           args: Sequence[str] = (), command: Sequence[str] | None = None) -> Iterator[tuple[str, int]]:
    """`triage serve [args]` (or `command`, then `--port N`) on a free loopback port; yields (base URL, server
    pid) once GET /readyz answers 200; SIGTERM afterwards."""
    port = free_port()
    env = {**os.environ, "TRIAGE_LOG_LEVEL": "WARNING", **(extra_env or {})}
    proc = subprocess.Popen([*(command or [TRIAGE, "serve"]), "--port", str(port), *args], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_ready(proc, url, ready_timeout_s)
        except ServerNotReady as err:
            sys.exit(f"benchmark: {err}")
        yield url, proc.pid
    finally:
        stop_server(proc)
