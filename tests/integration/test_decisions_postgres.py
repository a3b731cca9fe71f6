"""The decision log on a real PostgreSQL server and on SQLite: same migrations, same report tables."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from tests.integration.postgres import postgres_server
from tests.unit.decisions.synthetic import START, fill
from triage.decisions.analytics import Period, report_tables
from triage.decisions.store import DecisionStore
from triage.taxonomy import Policy

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


def _canonical(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for col in out.columns:
        out[col] = out[col].map(lambda v: tuple(v) if isinstance(v, list) else v)
    return out.sort_values(list(out.columns)).reset_index(drop=True) if len(out) else out


def test_same_report_tables_on_postgresql_and_sqlite(pg_url: str, tmp_path: Path, policy: Policy) -> None:
    pg = DecisionStore(pg_url)
    lite = DecisionStore(f"sqlite:///{tmp_path / 'd.db'}")
    for store in (pg, lite):
        store.migrate()
        store.migrate()
        until = fill(store, policy, n=700, weeks=3, seed=3)
    assert pg.count() == lite.count() == 700
    period = Period(START, until)
    a, b = report_tables(pg, period, policy), report_tables(lite, period, policy)
    for name in a:
        assert len(a[name]) > 0, name
        pd.testing.assert_frame_equal(_canonical(a[name]), _canonical(b[name]), check_dtype=False, obj=name)
    # The analyst views answer the same on both.
    for store in (pg, lite):
        with store.engine.connect() as conn:
            daily = conn.execute(sa.text("SELECT SUM(decisions) FROM daily_volume")).scalar_one()
            reviewed = conn.execute(sa.text("SELECT COUNT(*) FROM reviews WHERE decision_id IS NOT NULL")).scalar_one()
            assert daily == 700 and reviewed > 50
    # Audit reads and purge behave the same.
    for store in (pg, lite):
        page = store.page(category="spam", limit=5)
        assert len(page.items) == 5 and page.next_cursor and all(r["category"] == "spam" for r in page.items)
        assert store.purge_texts(timedelta(days=1), now=until) == 0  # texts were never stored
    pg.close()
    lite.close()
