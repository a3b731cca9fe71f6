"""The labeling config is generated from the policy, escaped, and names the controls the parser reads."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from triage.review.labeling_config import CATEGORY, RATIONALE, SEVERITY, TEXT, labeling_config
from triage.taxonomy import Policy, parse_policy


def test_every_category_and_severity_is_a_choice(policy: Policy) -> None:
    root = ET.fromstring(labeling_config(policy))
    controls = {c.get("name"): c for c in root.iter("Choices")}
    cats = [c.get("value") for c in controls[CATEGORY].iter("Choice")]
    sevs = [c.get("value") for c in controls[SEVERITY].iter("Choice")]
    assert cats == [*policy.category_names, "none"]
    assert sevs == list(policy.severity_names)
    assert controls[CATEGORY].get("choice") == "multiple"
    assert controls[SEVERITY].get("choice") == "single-radio"
    assert all(c.get("toName") == TEXT for c in controls.values())
    assert [t.get("name") for t in root.iter("TextArea")] == [RATIONALE]


def test_definitions_and_rubrics_are_shown(policy: Policy) -> None:
    text = ET.tostring(ET.fromstring(labeling_config(policy)), encoding="unicode")
    for c in policy.categories:
        assert c.definition.replace('"', "&quot;") in text or c.definition in text
    for s in policy.severity:
        assert s.rubric in text


def test_special_characters_are_escaped(policy: Policy) -> None:
    raw = policy.model_dump()
    raw["categories"][0]["definition"] = 'Says "no" & <script>alert(1)</script> \'quoted\''
    raw["version"] = 'v<1>&"2"'
    tricky = parse_policy(raw)
    root = ET.fromstring(labeling_config(tricky))  # parses: nothing broke out of its attribute
    hints = [c.get("hint") for c in root.iter("Choice")]
    assert any('Says "no" & <script>alert(1)</script> \'quoted\'' in (h or "") for h in hints)
    assert not list(root.iter("script"))


def test_config_changes_with_the_policy(policy: Policy) -> None:
    raw = policy.model_dump()
    raw["categories"] = [*raw["categories"], {"name": "extremism", "title": "Violent extremism",
                                              "definition": "Support for groups."}]
    bigger = parse_policy(raw)
    root = ET.fromstring(labeling_config(bigger))
    cats = [c.get("value") for ch in root.iter("Choices") if ch.get("name") == CATEGORY for c in ch.iter("Choice")]
    assert "extremism" in cats
    assert labeling_config(bigger) != labeling_config(policy)
