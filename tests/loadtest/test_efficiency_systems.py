"""``loadtest.efficiency --systems``: which systems run, in which order; the default is the recorded run's."""

from __future__ import annotations

import pytest
from parley.loadtest.efficiency import BARE, Picows, parse_args


def test_the_default_runs_the_baseline_then_parley() -> None:
    args, _ = parse_args(["--no-save"])
    assert args.systems == ["baseline", "parley"]


def test_picows_runs_beside_the_baseline_in_the_order_given() -> None:
    args, _ = parse_args(["--no-save", "--systems", "picows,baseline"])
    assert args.systems == ["picows", "baseline"]
    assert BARE["picows"] == (Picows, "parley.loadtest.baseline_picows")


@pytest.mark.parametrize("value", ["", "nodejs", "baseline,baseline"])
def test_an_unknown_or_repeated_system_is_a_usage_error(value: str) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--no-save", "--systems", value])


def test_the_durable_floor_runs_beside_the_baseline_and_parley() -> None:
    args, _ = parse_args(["--no-save", "--systems", "baseline,durable,parley"])
    assert args.systems == ["baseline", "durable", "parley"]
