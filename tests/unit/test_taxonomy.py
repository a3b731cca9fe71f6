"""The policy file: the default is valid; a broken one fails naming the field and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from triage.errors import PolicyError
from triage.settings import Settings
from triage.taxonomy import default_policy_path, load_policy, parse_policy


def _raw() -> dict:
    return yaml.safe_load(default_policy_path().read_text())


def test_default_policy_has_the_required_taxonomy() -> None:
    p = load_policy()
    assert set(p.category_names) >= {"hate", "harassment", "violence", "sexual", "child_safety", "self_harm",
                                      "spam", "fraud", "ip_infringement", "privacy"}
    assert p.severity_names == ("none", "low", "medium", "high", "critical")
    assert p.category("child_safety").always_review
    assert all(c.definition for c in p.categories)
    assert len(p.digest) == 12


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda r: r["categories"][0].update(threshold=1.5), "categories.0.threshold: Input should be less than 1"),
        (lambda r: r["categories"][1].pop("definition"), "categories.1.definition: Field required"),
        (lambda r: r["categories"].append(dict(r["categories"][0])), "duplicate names: hate"),
        (lambda r: r["categories"][0].update(name="Hate Speech"), "categories.0.name: String should match pattern"),
        (lambda r: r["categories"][0].update(name="none"), "'none' is reserved"),
        (lambda r: r.update(severity=[r["severity"][0]]), "severity: Tuple should have at least 2 items"),
        (lambda r: r["categories"][2].update(colour="red"), "categories.2.colour: Extra inputs are not permitted"),
        (lambda r: r["routing"].update(ambiguity_margin=-1), "routing.ambiguity_margin"),
    ],
)
def test_invalid_policy_names_field_and_reason(tmp_path: Path, mutate, fragment: str) -> None:  # type: ignore[no-untyped-def]
    raw = _raw()
    mutate(raw)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert str(path) in str(err.value)
    assert fragment in str(err.value)


def test_unreadable_and_non_yaml_policy(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("categories: [unclosed")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(bad)
    with pytest.raises(PolicyError, match="expected a mapping"):
        parse_policy(["a list"])


def test_triage_policy_env_points_at_a_custom_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = _raw()
    raw["name"] = "custom"
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("TRIAGE_POLICY", str(path))
    assert Settings().load_policy().name == "custom"


def test_app_refuses_to_start_with_an_invalid_policy(tmp_path: Path) -> None:
    from serving.app import create_app

    raw = _raw()
    raw["categories"][0]["weight"] = 7
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(PolicyError, match=r"categories\.0\.weight: Input should be less than or equal to 1"):
        create_app(Settings(home=tmp_path, policy=path))
