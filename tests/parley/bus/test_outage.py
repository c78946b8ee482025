"""Which NATS failures are an election or a reconnect (retryable ``bus_unavailable``) and which are bugs."""

from __future__ import annotations

import pytest
from nats.errors import ConnectionClosedError, NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import APIError, NoStreamResponseError, NotFoundError, ServiceUnavailableError

from parley.bus.outage import as_unavailable, is_transient
from parley.errors import Unavailable


@pytest.mark.parametrize(("err", "transient"), [
    (NoStreamResponseError(), True),  # a publish during a leader election
    (ServiceUnavailableError(), True),  # a fetch during one: a bare 503 status, no codes
    (NatsTimeout(), True),
    (TimeoutError(), True),
    (NoRespondersError(), True),
    (ConnectionClosedError(), True),
    (ServiceUnavailableError(code=503, err_code=10008, description="JetStream system temporarily unavailable"), True),
    (APIError(code=500, err_code=10009, description="JetStream cluster can not handle request"), True),
    (APIError(code=503, err_code=10118, description="stream is offline"), True),
    (NotFoundError(code=404, err_code=10059, description="stream not found"), False),
    (APIError(code=400, err_code=10071, description="wrong last sequence: 4"), False),
    (ValueError("a bug"), False),
])
def test_elections_and_reconnects_are_transient_bugs_are_not(err, transient):
    assert is_transient(err) is transient
    mapped = as_unavailable(err, "publishing")
    if transient:
        assert isinstance(mapped, Unavailable) and mapped.code == "bus_unavailable" and mapped.retryable
        assert mapped.as_dict()["retryable"] is True
    else:
        assert mapped is None
