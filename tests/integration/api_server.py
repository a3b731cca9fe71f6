"""Run `triage serve` as a real uvicorn process on a free loopback port, for integration tests."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from benchmarks.common import ServerNotReady, free_port, stop_server, wait_ready

ROOT = Path(__file__).resolve().parents[2]
TRIAGE = str(Path(sys.executable).parent / "triage")

__all__ = ["ROOT", "TRIAGE", "cli", "free_port", "running_api"]


@contextmanager
def running_api(env: Mapping[str, str], ready_timeout_s: float = 120, args: Sequence[str] = (),
                log: Path | None = None) -> Iterator[str]:
    """Start `triage serve [args]`, wait for /readyz, yield its base URL, stop it (SIGTERM) afterwards.

    The server's output goes to `log` (a temporary file by default, never an unread pipe that could fill and block
    the server) and is quoted when the server fails to start.
    """
    port = free_port()
    with (log.open("w+") if log else tempfile.TemporaryFile("w+")) as out:
        proc = subprocess.Popen([TRIAGE, "serve", "--port", str(port), *args], env=dict(env), cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT, text=True)
        url = f"http://127.0.0.1:{port}"
        try:
            try:
                wait_ready(proc, url, ready_timeout_s)
            except ServerNotReady as err:
                out.seek(0)
                raise RuntimeError(f"{err}: {out.read()}") from err
            yield url
        finally:
            stop_server(proc, timeout_s=20)


def cli(env: Mapping[str, str], *args: str, timeout: float = 600) -> str:
    """Run `triage args...` to completion; its stdout, or an assertion error with its output."""
    done = subprocess.run([TRIAGE, *args], env=dict(env), cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          check=False)
    assert done.returncode == 0, f"triage {' '.join(args)}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout
