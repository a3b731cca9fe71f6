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


@contextmanager
def served(extra_env: Mapping[str, str] | None = None, ready_timeout_s: float = 180,
           args: Sequence[str] = (), command: Sequence[str] | None = None) -> Iterator[tuple[str, int]]:
    """`triage serve [args]` (or `command`, then `--port N`) on a free loopback port; yields (base URL, server
    pid) once GET /readyz answers 200; SIGTERM afterwards."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {**os.environ, "TRIAGE_LOG_LEVEL": "WARNING", **(extra_env or {})}
    proc = subprocess.Popen([*(command or [TRIAGE, "serve"]), "--port", str(port), *args], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout_s
        while True:
            if proc.poll() is not None:
                sys.exit(f"benchmark: {proc.args} exited during start-up")
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                sys.exit(f"benchmark: {proc.args} not ready")
            time.sleep(0.3)
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
