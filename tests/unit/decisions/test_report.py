"""The report's tables on hand-made decisions, and the whole report on a synthetic month."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from tests.unit.decisions.synthetic import START, fill
from tests.unit.review.conftest import scored
from triage.data.sources import load_examples
from triage.decisions.analytics import Period, report_tables
from triage.decisions.drift import DriftReference
from triage.decisions.recorder import Recorder
from triage.decisions.report import SECTIONS, write_report
from triage.decisions.store import DecisionStore, ExpertLabel
from triage.models.base import Classifier
from triage.settings import DecisionsSettings
from triage.taxonomy import Policy

T0 = datetime(2026, 11, 2, 9)


@pytest.fixture
def store(tmp_path: Path) -> DecisionStore:
    s = DecisionStore(f"sqlite:///{tmp_path / 'decisions.db'}")
    s.migrate()
    return s


def test_tables_on_hand_made_decisions(store: DecisionStore, policy: Policy) -> None:
    rec = Recorder(store, DecisionsSettings(audit_rate=0.0), policy.version)
    rec.record([scored("a", 0.9, route="auto", category="spam")], "m", "1", None, T0)
    rec.record([scored("b", 0.9, route="auto", category="spam")], "m", "1", None, T0)
    rec.record([scored("c", 0.4, route="review", category="fraud")], "m", "1", None, T0 + timedelta(days=1))
    rec.flush()
    store.record_labels([
        ExpertLabel(1, "a", "x", ("spam",), "low", T0 + timedelta(hours=1), "webhook"),
        ExpertLabel(2, "b", "x", ("fraud",), "low", T0 + timedelta(hours=3), "webhook"),
        ExpertLabel(3, "c", "x", ("fraud",), "low", T0 + timedelta(days=1, hours=2), "webhook"),
        ExpertLabel(4, "c", "y", ("fraud", "spam"), "low", T0 + timedelta(days=1, hours=4), "webhook"),
    ])
    t = report_tables(store, Period(T0 - timedelta(days=1), T0 + timedelta(days=2)), policy)
    vol = t["volume"].set_index(["day", "category"])["decisions"].to_dict()
    assert vol == {("2026-11-02", "spam"): 2, ("2026-11-03", "fraud"): 1}
    share = t["route_share"].set_index("category")
    assert share.loc["spam", "auto_share"] == 1.0 and share.loc["fraud", "auto_share"] == 0.0
    (row,) = t["review_time"].to_dict("records")  # every decision here is severity "low"
    assert row["reviewed"] == 3 and row["median_hours"] == 2.0
    conf = t["confusion"].set_index("category")
    assert conf.loc["spam", ["tp", "fp", "fn"]].tolist() == [1, 1, 1]  # c: 1 of 2 said spam, the latest: a tie won
    assert conf.loc["fraud", ["tp", "fp", "fn"]].tolist() == [1, 0, 1]
    prec = t["auto_precision"]
    assert prec.to_dict("records") == [{"category": "spam", "measured_against": "expert labels", "labelled": 2,
                                        "correct": 1, "precision": 0.5,
                                        "target_precision": policy.category("spam").target_precision}]
    agr = t["expert_agreement"].set_index("category")
    assert agr.loc["fraud", "tickets"] == 1 and agr.loc["fraud", "pairwise_agreement"] == 1.0
    assert agr.loc["spam", "pairwise_agreement"] == 0.0


def test_report_html_and_csv(store: DecisionStore, policy: Policy, tmp_path: Path) -> None:
    until = fill(store, policy, n=900)
    page = write_report(store, Period(START, until), policy, tmp_path / "out", drift=False)
    text = page.read_text()
    assert "<section id='drift'>" not in text
    for s in SECTIONS:
        block = re.search(rf"<section id='{s.key}'>(.*?)</section>", text, re.S)
        assert block is not None, s.key
        assert "data:image/png;base64," in block.group(1), f"{s.key} has no chart"
        df = pd.read_csv(tmp_path / "out" / f"{s.key}.csv")
        assert len(df) > 0, s.key
    assert "http://" not in text and "https://" not in text and "<script" not in text  # self-contained
    rising = pd.read_csv(tmp_path / "out" / "rising.csv")
    top_category = rising[rising["kind"] == "category"].iloc[0]
    assert top_category["name"] == "spam" and top_category["change"] > 0
    prec = pd.read_csv(tmp_path / "out" / "auto_precision.csv")
    assert set(prec["measured_against"]) == {"expert labels", "audit sample"}
    pooled = prec[prec["measured_against"] == "expert labels"]
    assert 0.75 < pooled["correct"].sum() / pooled["labelled"].sum() < 0.95  # synthetic experts agree 85% of the time


def test_report_drift_section(store: DecisionStore, policy: Policy, tmp_path: Path,
                              tiny_classifier: Classifier) -> None:
    until = fill(store, policy, n=400, weeks=2)
    texts = [e.text for e in load_examples()]
    ref = DriftReference.build("triage/7", tiny_classifier.card.categories, texts,
                               tiny_classifier.predict(texts).categories)
    text = write_report(store, Period(START, until), policy, tmp_path / "out", reference=ref).read_text()
    block = re.search(r"<section id='drift'>(.*?)</section>", text, re.S)
    assert block is not None and "data:image/png;base64," in block.group(1)
    drift = pd.read_csv(tmp_path / "out" / "drift.csv")
    assert {"score:spam", "text_length", "script_mix"} <= set(drift["feature"])
    # Without a reference cached for the model, the section says how to get one instead of failing.
    text = write_report(store, Period(START, until), policy, tmp_path / "out2", home=tmp_path / "h").read_text()
    assert "no drift reference for model triage v7 yet" in text
