"""Request validation (pure)."""

from __future__ import annotations

import pytest
from parley.api import validation as v

from parley.errors import BadRequest


@pytest.mark.parametrize(("raw", "want"), [(None, 50), ("0", 0), ("7", 7), (str(2**53 - 1), 2**53 - 1)])
def test_an_integer_query_parameter(raw, want):
    assert v.int_query(raw, "after", low=0, high=2**53 - 1, default=50) == want


@pytest.mark.parametrize("raw", ["", " ", "x", "1.5", "-1", str(2**53), "0x10"])
def test_an_integer_query_parameter_is_refused_naming_it(raw):
    """``""`` included: found by the HTTP fuzzer (``?after=`` was taken as absent; openapi says integer)."""
    with pytest.raises(BadRequest) as err:
        v.int_query(raw, "after", low=0, high=2**53 - 1, default=50)
    assert (err.value.code, err.value.details.get("field")) == ("bad_field", "after")
