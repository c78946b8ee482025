"""Presence partitions: assignment by user, the fair-share plan, leases, and a takeover's grace."""

from __future__ import annotations

import pytest

from parley.presence import PresenceBook
from parley.presence_partitions import (
    LeaseBook,
    Plan,
    fair_share,
    parse_partition_key,
    partition_key,
    partition_of,
    plan,
)


def test_a_user_always_lands_in_the_same_partition_and_users_spread():
    assert partition_of("u123", 16) == partition_of("u123", 16)
    counts = [0] * 16
    for i in range(16000):
        counts[partition_of(f"user{i}", 16)] += 1
    assert min(counts) > 800 and max(counts) < 1200  # roughly 1000 each


def test_partition_keys_round_trip_and_others_are_not_partitions():
    assert parse_partition_key(partition_key(7)) == 7
    assert parse_partition_key("w.worker-1") is None
    assert parse_partition_key("p.x") is None


@pytest.mark.parametrize(("partitions", "workers", "share"), [(16, 1, 16), (16, 2, 8), (16, 3, 6), (4, 8, 1)])
def test_fair_share(partitions, workers, share):
    assert fair_share(partitions, workers) == share


def test_a_lone_worker_takes_every_free_partition():
    assert sorted(plan("a", 4, {}, set()).take) == [0, 1, 2, 3]


def test_a_worker_over_its_share_releases_its_highest_partitions():
    owners = {p: "a" for p in range(8)}
    assert plan("a", 8, owners, {"a", "b"}) == Plan(take=(), release=(4, 5, 6, 7))


def test_a_worker_never_takes_a_partition_someone_holds():
    owners = {0: "a", 1: "a", 2: "a", 3: "a"}
    assert plan("b", 4, owners, {"a", "b"}) == Plan(take=(), release=())


def settle(partitions: int, workers: list[str], owners: dict[int, str], rounds: int = 5) -> dict[int, str]:
    """Every worker runs the plan in turn against the shared bucket, as the real ones do each round."""
    for _ in range(rounds):
        for w in workers:
            moves = plan(w, partitions, owners, set(workers))
            for p in moves.release:
                del owners[p]
            for p in moves.take:
                owners.setdefault(p, w)
    return owners


def shares(owners: dict[int, str]) -> list[int]:
    counts: dict[str, int] = {}
    for w in owners.values():
        counts[w] = counts.get(w, 0) + 1
    return sorted(counts.values())


def test_a_joining_worker_gets_a_fair_share_and_every_partition_stays_owned():
    owners = settle(16, ["a"], {})
    assert shares(owners) == [16]
    owners = settle(16, ["a", "b"], owners)
    assert shares(owners) == [8, 8] and len(owners) == 16
    owners = settle(16, ["a", "b", "c"], owners)
    assert len(owners) == 16 and max(shares(owners)) == 6


def test_a_dead_workers_partitions_are_taken_by_the_others_once_its_leases_expire():
    owners = settle(16, ["a", "b"], {})
    owners = {p: w for p, w in owners.items() if w != "b"}  # b's keys expired
    owners = settle(16, ["a"], owners)
    assert owners == {p: "a" for p in range(16)}


def test_a_lease_not_renewed_in_time_is_given_up_before_it_can_expire():
    book = LeaseBook(lease_s=6.0)
    book.took(3, revision=10, now=100.0)
    book.took(4, revision=11, now=100.0)
    book.renewed(4, revision=12, now=103.0)
    assert book.expiring(now=103.9, margin=2.0) == []
    assert book.expiring(now=104.0, margin=2.0) == [3]
    book.lost(3)
    assert book.owned() == [4] and book.held[4].revision == 12


def test_renewing_a_lease_we_no_longer_hold_does_not_bring_it_back():
    book = LeaseBook(lease_s=6.0)
    book.renewed(1, revision=5, now=1.0)
    assert book.owned() == []


def test_a_taken_over_user_gets_a_full_timeout_to_beat_again():
    book = PresenceBook(timeout_ms=3000)
    book.restore("u", 1000, now_ms=10_000)  # last active long ago (the old owner's last write)
    assert book.tick(12_999) == []
    assert book.heartbeat("u", "d1", 12_000) is None  # beating: still online, no second "online"
    assert book.tick(14_999) == []
    gone = book.tick(15_000)
    assert [(t.user, t.online, t.last_active_at) for t in gone] == [("u", False, 12_000)]


def test_a_taken_over_user_who_never_beats_goes_offline_with_the_last_time_known():
    book = PresenceBook(timeout_ms=3000)
    book.restore("u", 1000, now_ms=10_000)
    assert [(t.online, t.last_active_at) for t in book.tick(13_000)] == [(False, 1000)]


def test_forgetting_users_announces_nothing():
    book = PresenceBook(timeout_ms=3000)
    book.heartbeat("u", "d", 0)
    book.forget(["u"])
    assert book.tick(10_000) == [] and not book.is_online("u")
