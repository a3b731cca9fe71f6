"""Unit-test defaults: the decision log writes from a thread (a writer process per in-process app would double
these tests' time); tests/unit/decisions/test_writer.py and the integration tests' real servers use the process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _decision_writer_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TRIAGE_DECISIONS__WRITER", "thread")
    yield
