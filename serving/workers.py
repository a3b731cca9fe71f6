"""Several server processes on one machine: what they share and who does the once-per-machine work.

Every worker process loads its own model and writes review items into the same SQLite outbox (WAL, BEGIN
IMMEDIATE writes and leased claims make that safe across processes). Background delivery to Label Studio must run
once, though: two loops would race to create the project and register the webhook. The process that holds an
exclusive lock on a file beside the outbox runs it; the lock dies with its process, and the supervisor's
replacement process takes it over.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)


class LeaderLock:
    """A non-blocking exclusive `flock` on `path`: held by at most one process at a time."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: IO[bytes] | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._file is not None

    def try_acquire(self) -> bool:
        """Take the lock if no other process holds it; True when this process now holds it."""
        if self._file is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("ab")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        handle.truncate(0)
        handle.write(str(os.getpid()).encode())
        handle.flush()
        self._file = handle
        return True

    def release(self) -> None:
        """Give the lock back (closing the file releases it)."""
        if self._file is not None:
            self._file.close()
            self._file = None
