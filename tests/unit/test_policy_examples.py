"""Seed examples in the policy: valid ones load; bad ones fail naming the category and the example."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.seeded import NEW, SEEDS, seeded_policy_dict, write_seeded_policy
from triage.errors import PolicyError
from triage.models.base import ModelCard
from triage.taxonomy import parse_policy


def test_seeded_category_loads_with_its_examples() -> None:
    p = parse_policy(seeded_policy_dict())
    assert p.seeded_categories == (NEW,)
    assert p.category(NEW).examples == SEEDS
    assert p.new_categories.min_labels_for_head == 30


@pytest.mark.parametrize(("examples", "counter", "fragment"), [
    (["a fake bag", "  ", "a fake watch"], [], f"category '{NEW}': examples[1] is empty"),
    (["a fake bag", "a fake watch"], [], f"category '{NEW}': 2 example(s); at least 3 are needed"),
    (["a fake bag", "A  fake bag", "a fake watch"], [], f"category '{NEW}': examples lists 'A fake bag' twice"),
    (["a fake bag", "a fake watch", "fake shoes"], ["Fake shoes"],
     f"category '{NEW}': 'Fake shoes' is both an example and a counter-example"),
    (["a fake bag", "a fake watch", "fake shoes"], [""], f"category '{NEW}': counter_examples[0] is empty"),
])
def test_bad_seed_examples_are_refused_naming_category_and_example(examples: list[str], counter: list[str],
                                                                    fragment: str) -> None:
    with pytest.raises(PolicyError) as err:
        parse_policy(seeded_policy_dict(examples, counter), "p.yaml")
    assert fragment.lower() in str(err.value).lower()
    assert str(err.value).startswith("p.yaml: invalid policy")


def test_an_example_listed_under_two_categories_is_refused() -> None:
    raw = seeded_policy_dict()
    raw["categories"][0]["examples"] = ["people like them are vermin", "Knockoff branded sneakers, copies of "
                                        "the famous brand, cheap", "they should all be deported"]
    with pytest.raises(PolicyError, match="'knockoff branded sneakers.*' is listed under both 'hate' and "
                                          f"'{NEW}'"):
        parse_policy(raw)


def test_counter_examples_need_examples() -> None:
    raw = seeded_policy_dict()
    raw["categories"][0]["counter_examples"] = ["a harmless text"]
    with pytest.raises(PolicyError, match="category 'hate': counter_examples need examples too"):
        parse_policy(raw)


def _cli(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    from triage_cli.main import app

    result = CliRunner().invoke(app, args, env=env)
    return result.exit_code, result.output


def test_policy_command_says_what_scores_each_category(tmp_path: Path) -> None:
    path = write_seeded_policy(tmp_path)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    ModelCard("baseline", ["hate", "spam"], ["none", "low", "medium", "high", "critical"], "default", "1",
              "x").write(model_dir)
    code, out = _cli(["policy", str(path)], env={"TRIAGE_SERVING__MODEL_DIR": str(model_dir), "COLUMNS": "200"})
    assert code == 0, out
    lines = {line.split()[1]: line for line in out.splitlines() if line.startswith("│ ")}
    assert "trained head" in lines["hate"] and "trained head" in lines["spam"]
    assert "examples only (10 examples, 1 counter-examples)" in lines[NEW]
    assert "nothing yet" in lines["privacy"]


def test_policy_command_reports_a_bad_example_with_exit_code_2(tmp_path: Path) -> None:
    path = write_seeded_policy(tmp_path, examples=SEEDS[:2])
    code, out = _cli(["policy", str(path), "--no-model"])
    assert code == 2
    assert f"category '{NEW}': 2 example(s); at least 3 are needed" in " ".join(out.split())


def test_the_marketplace_example_policy_has_three_seeded_categories() -> None:
    from triage.taxonomy import load_policy

    p = load_policy(Path(__file__).resolve().parents[2] / "examples" / "policies" / "marketplace.yaml")
    assert set(p.seeded_categories) == {"counterfeit_goods", "off_platform_payment", "misleading_claims"}
    assert all(10 <= len(p.category(n).examples) <= 20 for n in p.seeded_categories)
    assert {"spam", "fraud", "harassment"} <= set(p.category_names)
