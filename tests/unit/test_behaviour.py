"""The behaviour suite: loading and validation, scoring on hand-written probabilities, and the shipped suite."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest
import yaml

from triage.behaviour import ALL, GROUPS, BehaviourCase, balance, comparison_markdown, load_suite, run_suite
from triage.errors import DataError
from triage.models.base import ModelCard, Prediction
from triage.taxonomy import Policy


def _write(path: Path, cases: list[dict], **top: object) -> Path:
    path.write_text(yaml.safe_dump({"language": "en", **top, "cases": cases}, allow_unicode=True), encoding="utf-8")
    return path


def _case(cid: str = "c1", **kw: object) -> dict:
    return {"id": cid, "group": "negation", "text": "I don't hate anyone.", "expected": [], "must_flag": False, **kw}


# ---------------------------------------------------------------- loading and validation

def test_a_valid_file_loads_with_file_language_and_context_passages_in_order(tmp_path: Path, policy: Policy) -> None:
    path = _write(tmp_path / "s.yaml", [
        _case(),
        _case("c2", group="buried_threat", text="I will hurt you.", expected=["violence"], must_flag=True,
              min_severity="high", context=["b", "a"], language="pt"),
    ], passages={"a": "Alpha passage.", "b": "Beta passage."})
    cases = load_suite(path, policy)
    assert cases[0] == BehaviourCase("c1", "negation", "en", "I don't hate anyone.", (), False, None)
    assert cases[1].language == "pt"
    assert cases[1].text == "Beta passage.\n\nAlpha passage.\n\nI will hurt you."
    assert cases[1].expected == ("violence",) and cases[1].min_severity == "high"


def test_unknown_category_names_it_and_the_policy_categories(tmp_path: Path, policy: Policy) -> None:
    path = _write(tmp_path / "s.yaml", [_case(expected=["hatred"], must_flag=True)])
    with pytest.raises(DataError, match=r"case c1: unknown category 'hatred'; the policy 'default' has hate, "):
        load_suite(path, policy)


def test_duplicate_ids_across_files_are_refused(tmp_path: Path, policy: Policy) -> None:
    _write(tmp_path / "a.yaml", [_case("dup"), _case("ok-1")])
    _write(tmp_path / "b.yaml", [_case("dup")])
    with pytest.raises(DataError, match=r"duplicate case id\(s\): dup$"):
        load_suite(tmp_path, policy)


@pytest.mark.parametrize("text", ["", "   \n", None])
def test_empty_text_is_refused_with_the_case_id(tmp_path: Path, policy: Policy, text: str | None) -> None:
    path = _write(tmp_path / "s.yaml", [_case("blank-7", text=text)])
    with pytest.raises(DataError, match=r"s.yaml#1 case blank-7: empty text"):
        load_suite(path, policy)


@pytest.mark.parametrize(("override", "message"), [
    ({"group": "negations"}, r"unknown group 'negations'; known groups: negation, counter_speech"),
    ({"must_flag": True}, r"must_flag is true but expected is \[\]"),
    ({"expected": ["hate"]}, r"must_flag is false but expected is \['hate'\]"),
    ({"expected": "hate", "must_flag": True}, r"'expected' must be a list of category names"),
    ({"must_flag": "yes"}, r"'must_flag' must be true or false"),
    ({"expected": ["violence"], "must_flag": True, "min_severity": "severe"}, r"unknown min_severity 'severe'"),
    ({"min_severity": "high"}, r"min_severity only applies to must-flag cases"),
    ({"context": ["nowhere"]}, r"unknown context passage\(s\) nowhere"),
    ({"context": [{"a": 1}]}, r"context must be a list of passage names"),
    ({"label": "x"}, r"unknown field\(s\) label"),
    ({"id": ""}, r"case \(no id\): missing id"),
])
def test_each_bad_field_is_named(tmp_path: Path, policy: Policy, override: dict, message: str) -> None:
    path = _write(tmp_path / "s.yaml", [_case(**override)])
    with pytest.raises(DataError, match=message):
        load_suite(path, policy)


def test_every_problem_is_reported_at_once(tmp_path: Path, policy: Policy) -> None:
    path = _write(tmp_path / "s.yaml", [_case("a", text=""), _case("b", expected=["nope"], must_flag=True)])
    with pytest.raises(DataError, match=r"2 problem\(s\): .*case a: empty text; .*case b: unknown category 'nope'"):
        load_suite(path, policy)


def test_jsonl_files_load_and_need_a_language_per_case(tmp_path: Path, policy: Policy) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps({**_case(), "language": "ja"}) + "\n\n" + json.dumps(_case("c2")) + "\n")
    with pytest.raises(DataError, match=r"case c2: no language"):
        load_suite(path, policy)
    path.write_text(json.dumps({**_case(), "language": "ja"}) + "\n")
    assert [c.language for c in load_suite(path, policy)] == ["ja"]


def test_missing_or_unreadable_suites_say_so(tmp_path: Path, policy: Policy) -> None:
    with pytest.raises(DataError, match="no such suite file or directory"):
        load_suite(tmp_path / "absent.yaml", policy)
    with pytest.raises(DataError, match="no suite files"):
        load_suite(tmp_path, policy)
    (tmp_path / "bad.yaml").write_text("cases: [{id: a, text: 'x'\n")
    with pytest.raises(DataError, match="not valid YAML"):
        load_suite(tmp_path / "bad.yaml", policy)
    (tmp_path / "bad.yaml").write_text("- just a list\n")
    with pytest.raises(DataError, match="expected a mapping with a 'cases' list"):
        load_suite(tmp_path / "bad.yaml", policy)


# ---------------------------------------------------------------- scoring on hand-written probabilities

class TableClassifier:
    """Returns the probabilities written for each text (categories not named get 0.01)."""

    def __init__(self, policy: Policy, table: Mapping[str, tuple[Mapping[str, float], str]],
                 thresholds: Mapping[str, float]) -> None:
        self.policy = policy
        self.table = table
        self.card = ModelCard(kind="table", categories=list(policy.category_names),
                              severity_levels=list(policy.severity_names), policy_name=policy.name,
                              policy_version=policy.version, policy_digest=policy.digest,
                              thresholds=dict(thresholds))

    def predict(self, texts: Sequence[str]) -> Prediction:
        cats = np.full((len(texts), len(self.card.categories)), 0.01)
        sev = np.zeros((len(texts), len(self.card.severity_levels)))
        for i, t in enumerate(texts):
            probs, level = self.table[t]
            for name, p in probs.items():
                cats[i, self.card.categories.index(name)] = p
            sev[i, self.card.severity_levels.index(level)] = 1.0
        return Prediction(cats, sev)

    def save(self, directory: Path) -> None:  # pragma: no cover - never saved
        raise NotImplementedError


def _c(cid: str, group: str, expected: tuple[str, ...], min_sev: str | None = None, lang: str = "en") -> BehaviourCase:
    return BehaviourCase(cid, group, lang, f"text of {cid}", expected, bool(expected), min_sev)


def test_scoring_follows_the_decision_thresholds_and_reports_review_separately(policy: Policy) -> None:
    cases = [
        _c("hit", "direct_threat", ("violence",), "high"),        # violence 0.95 >= 0.6: flagged, severity high
        _c("below-card", "direct_threat", ("violence",), "high"),  # 0.55 >= policy 0.5 but < card 0.6: missed
        _c("wrong-cat", "polite_hate", ("hate",)),                  # harassment predicted, not hate: missed, reviewed
        _c("clean", "negation", ()),                                # nothing near a threshold: left alone, auto
        _c("clean-unsure", "negation", ()),                         # hate 0.4 < 0.5: left alone, but reviewed
        _c("clean-flagged", "spam_phishing", (), lang="pt"),        # spam 0.99: flagged where it must not be
    ]
    table = {
        "text of hit": ({"violence": 0.95}, "high"),
        "text of below-card": ({"violence": 0.55}, "low"),
        "text of wrong-cat": ({"harassment": 0.97, "hate": 0.3}, "medium"),
        "text of clean": ({}, "none"),
        "text of clean-unsure": ({"hate": 0.4}, "none"),
        "text of clean-flagged": ({"spam": 0.99}, "low"),
    }
    clf = TableClassifier(policy, table, {"violence": 0.6})
    report = run_suite(clf, cases, policy, batch_size=4)
    by_id = {r.id: r for r in report.results}

    assert by_id["hit"].passed and by_id["hit"].predicted == ("violence",) and by_id["hit"].severity_ok
    assert not by_id["below-card"].passed and by_id["below-card"].predicted == ()
    assert by_id["below-card"].severity_ok is False
    assert not by_id["wrong-cat"].passed and by_id["wrong-cat"].predicted == ("harassment",)
    assert by_id["wrong-cat"].reviewed  # hate 0.3: 70% sure of "no" < the 75% it needs, so a person sees it
    assert by_id["clean"].passed and by_id["clean"].route == "auto"
    assert by_id["clean-unsure"].passed and by_id["clean-unsure"].reviewed
    assert not by_id["clean-flagged"].passed

    overall = report.slice()
    assert (overall.must_flag, overall.flagged, overall.must_not_flag, overall.left_alone) == (3, 1, 3, 2)
    assert overall.flag_accuracy == pytest.approx(1 / 3) and overall.clean_accuracy == pytest.approx(2 / 3)
    assert overall.caught == sum(r.passed or r.reviewed for r in report.results if r.must_flag)
    assert overall.clean_reviewed == 1 + int(by_id["clean-flagged"].reviewed)
    assert (overall.severity_cases, overall.severity_met) == (2, 1)

    threats = report.slice("direct_threat")
    assert (threats.must_flag, threats.flagged, threats.must_not_flag) == (2, 1, 0)
    assert threats.clean_accuracy is None
    assert report.slice(ALL, "pt").clean_accuracy == 0.0
    assert report.groups == ["negation", "polite_hate", "direct_threat", "spam_phishing"]


def test_report_files_and_metrics_hold_every_slice(policy: Policy, tmp_path: Path) -> None:
    cases = [_c("a", "negation", ()), _c("b", "negation", ("hate",), lang="ja")]
    table = {"text of a": ({}, "none"), "text of b": ({"hate": 0.9}, "medium")}
    report = run_suite(TableClassifier(policy, table, {}), cases, policy)
    js, cs = report.write(tmp_path)
    data = json.loads(js.read_text())
    assert data["cases_total"] == 2 and {c["id"] for c in data["cases"]} == {"a", "b"}
    slices = {(s["group"], s["language"]): s for s in data["slices"]}
    assert set(slices) == {("negation", "en"), ("negation", "ja"), ("negation", ALL), (ALL, "en"), (ALL, "ja"),
                           (ALL, ALL)}
    assert slices[(ALL, ALL)]["flag_accuracy"] == 1.0 and slices[(ALL, ALL)]["clean_accuracy"] == 1.0
    lines = cs.read_text().splitlines()
    assert lines[0].startswith("group,language,must_flag,flagged") and len(lines) == 1 + len(slices)
    metrics = report.flat_metrics()
    assert metrics["suite.negation.ja.flag_accuracy"] == 1.0 and "suite.negation.ja.clean_accuracy" not in metrics
    md = (tmp_path / "behaviour_suite.md").read_text()
    assert "| negation | 1 | 100% | 100% | 1 | 100% | 0% | - |" in md
    assert "| negation | - of 0 / 100% of 1 | 100% of 1 / - of 0 |" in md


def test_comparison_puts_models_side_by_side(policy: Policy) -> None:
    cases = [_c("a", "negation", ()), _c("b", "negation", ("hate",)), _c("c", "obfuscation", ("hate",))]
    good = {"text of a": ({}, "none"), "text of b": ({"hate": 0.9}, "medium"), "text of c": ({"hate": 0.9}, "high")}
    bad = {"text of a": ({"hate": 0.9}, "none"), "text of b": ({}, "none"), "text of c": ({"hate": 0.9}, "low")}
    md = comparison_markdown([run_suite(TableClassifier(policy, good, {}), cases, policy, name="good"),
                              run_suite(TableClassifier(policy, bad, {}), cases, policy, name="bad")])
    assert md.splitlines()[0] == "| behaviour | good: flagged / left alone | bad: flagged / left alone |"
    assert "| negation | 100% / 100% | 0% / 0% |" in md
    assert "| obfuscation | 100% / - | 100% / - |" in md
    assert "| **all** | 100% / 100% | 50% / 0% |" in md


# ---------------------------------------------------------------- the shipped suite

@pytest.fixture(scope="module")
def shipped(policy: Policy) -> list[BehaviourCase]:
    return load_suite(policy=policy)


def test_shipped_suite_is_large_covers_every_group_and_language(shipped: list[BehaviourCase]) -> None:
    assert len(shipped) >= 400
    langs = Counter(c.language for c in shipped)
    assert set(langs) == {"en", "ja", "pt"} and langs["ja"] >= 60 and langs["pt"] >= 60
    for lang in langs:
        assert {c.group for c in shipped if c.language == lang} == set(GROUPS), lang


def test_shipped_suite_is_balanced_overall_and_has_both_sides_in_every_group(shipped: list[BehaviourCase]) -> None:
    counts = balance(shipped)
    assert 0.4 <= counts["must_flag_share"] <= 0.6
    assert sum(sum(sides.values()) for sides in counts["groups"].values()) == counts["cases"] == len(shipped)
    for lang in ("en", "ja", "pt"):
        assert 0.35 <= np.mean([c.must_flag for c in shipped if c.language == lang]) <= 0.65, lang
    for group in GROUPS:
        sides = Counter(c.must_flag for c in shipped if c.group == group)
        assert sides[True] >= 4 and sides[False] >= 4, (group, sides)


def test_shipped_buried_threats_are_long_and_end_with_the_case_text(shipped: list[BehaviourCase]) -> None:
    buried = [c for c in shipped if c.group == "buried_threat"]
    for c in buried:
        size = len(c.text.split()) if c.language != "ja" else len(c.text)
        assert size >= (300 if c.language != "ja" else 600), (c.id, size)
    assert sum(c.must_flag for c in buried) >= 10


def test_shipped_obfuscations_use_zero_width_and_homoglyph_characters(shipped: list[BehaviourCase]) -> None:
    texts = [c.text for c in shipped if c.group == "obfuscation"]
    assert sum("\u200b" in t for t in texts) >= 5
    assert sum(any("\u0400" <= ch <= "\u04ff" for ch in t) for t in texts) >= 3


def _tokens(text: str) -> set[str]:
    """Words of a space-separated text, characters of a Japanese one (no spaces to split on)."""
    import re

    if re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", text):
        return set(text)
    return set(re.findall(r"\w+", text.lower()))


def test_no_training_ticket_is_a_near_copy_of_a_suite_case(shipped: list[BehaviourCase]) -> None:
    # The suite measures behaviour on texts the model never saw: the shipped training tickets (examples and written
    # ones) must not paraphrase its cases closely (token Jaccard at most 0.5; the closest today is about 0.45).
    from triage.data.sources import load_examples

    tickets = [e.text for e in load_examples()]
    cases = [(c.id, _tokens(c.text)) for c in shipped]
    close = []
    for text in tickets:
        mine = _tokens(text)
        for cid, theirs in cases:
            if len(mine & theirs) / max(1, len(mine | theirs)) > 0.5:
                close.append((cid, text))
    assert not close, close[:5]
