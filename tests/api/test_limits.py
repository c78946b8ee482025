"""The API's limits without a server: whose address a request counts against, and how attempts add up
against counters (here a dict: the NATS KV adapter itself runs in tests/integration/test_limits.py)."""

from unittest import mock

import pytest
from aiohttp.test_utils import make_mocked_request
from parley.api.limits import AuthLimits, client_address

from parley.errors import RateLimited
from parley.settings import Settings


def request(peer: str, forwarded: str | None = None):
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (peer, 40000) if name == "peername" else default
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    return make_mocked_request("GET", "/v1/me", headers=headers, transport=transport)


@pytest.mark.parametrize(("peer", "forwarded", "trusted", "expected"), [
    ("203.0.113.9", "10.0.0.1", set(), "203.0.113.9"),  # not a proxy: the header is the client's say-so
    ("127.0.0.1", "10.0.0.1", {"127.0.0.1"}, "10.0.0.1"),
    ("127.0.0.1", "6.6.6.6, 10.0.0.1", {"127.0.0.1"}, "10.0.0.1"),  # the rightmost: what our proxy saw
    ("127.0.0.1", "10.0.0.1, 127.0.0.2", {"127.0.0.1", "127.0.0.2"}, "10.0.0.1"),  # proxies in a chain
    ("127.0.0.1", None, {"127.0.0.1"}, "127.0.0.1"),
])
def test_client_address(peer, forwarded, trusted, expected):
    assert client_address(request(peer, forwarded), frozenset(trusted)) == expected


class DictCounters:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    async def read(self, keys: list[str]) -> list[int]:
        return [self.counts.get(k, 0) for k in keys]

    async def add(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1


async def test_failures_add_up_per_subject_until_refused_then_fade():
    now = [1000.0]
    limits = AuthLimits(DictCounters(), Settings(login_account_failures=3, login_account_window_s=60.0),
                        clock=lambda: now[0])
    alice, bob = [(limits.login_account, "alice")], [(limits.login_account, "bob")]
    for _ in range(3):
        await limits.check(alice)
        await limits.count(alice)
    with pytest.raises(RateLimited) as refused:
        await limits.check(alice)
    await limits.check(bob)  # another account
    now[0] += refused.value.details["retry_after_ms"] / 1000
    await limits.check(alice)  # waiting as told is enough


def test_presence_reads_take_from_the_account_per_user_asked_and_refusals_are_told():
    from parley.api.limits import RequestBudget

    budget, told = RequestBudget(Settings(presence_rate_per_s=0.001, presence_rate_burst=500)), []
    budget.refused = told.append
    for _ in range(5):
        budget.take_presence("alice", 100)
    with pytest.raises(RateLimited) as refused:
        budget.take_presence("alice", 1)
    assert refused.value.details["retry_after_ms"] > 0 and told == ["presence_account"]
    budget.take_presence("bob", 100)  # another account: its own budget
    budget.take_presence("carol", 501)  # more than the burst: taken from a full bucket (it empties it)
    with pytest.raises(RateLimited):
        budget.take_presence("carol", 1)
