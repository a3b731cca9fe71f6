"""`triage train --param name=value`: overrides reach the hyperparameter dataclass; bad ones are refused clearly."""

from __future__ import annotations

import pytest
import typer

from training.baseline import BaselineParams
from training.transformer import TransformerParams
from triage_cli.main import Kind, _params


def test_no_overrides_means_the_defaults() -> None:
    assert _params(Kind.transformer, None) is None and _params(Kind.baseline, []) is None


def test_overrides_are_parsed_as_json_and_reach_the_right_dataclass() -> None:
    p = _params(Kind.transformer, ["encoder_layers=3", "frozen_layers=1", "time_budget_s=null", "encoder_dir=/x/y"])
    assert isinstance(p, TransformerParams)
    assert (p.encoder_layers, p.frozen_layers, p.time_budget_s, p.encoder_dir) == (3, 1, None, "/x/y")
    assert isinstance(_params(Kind.baseline, ["seed=5"]), BaselineParams)


@pytest.mark.parametrize(("item", "message"), [
    ("nope=1", "name one of"),
    ("encoder_layers", "expected name=value"),
    ("encoder_layers=99", "encoder_layers=99"),
    ("frozen_layers=4", "frozen_layers=4"),
])
def test_bad_overrides_name_what_is_wrong(item: str, message: str) -> None:
    with pytest.raises(typer.BadParameter, match=message):
        _params(Kind.transformer, [item])
