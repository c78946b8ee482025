"""Consistency levels against replication maps: reads in every datacenter must meet the archiver's writes."""

import pytest

from parley.errors import ParleyError
from parley.settings import Settings
from parley.store.cassandra.consistency import always_overlap, check, demand, missed_pair, replicas_by_dc
from parley.store.cassandra.cql import check_consistency, write_level

TWO_DCS = "NetworkTopologyStrategy:eu=3,us=3"


@pytest.mark.parametrize(("replication", "read", "write", "ok"), [
    ("SimpleStrategy:1", "ONE", "", True),
    ("SimpleStrategy:3", "ONE", "", False),
    ("SimpleStrategy:3", "LOCAL_QUORUM", "", True),
    ("SimpleStrategy:2", "QUORUM", "", True),
    ("SimpleStrategy:3", "ONE", "ALL", True),  # write everywhere, read anywhere
    ("SimpleStrategy:1", "SOMETIMES", "", False),
    ("SimpleStrategy:1", "ANY", "", False),  # not a read level
    ("NetworkTopologyStrategy:dc1=3", "LOCAL_QUORUM", "", True),  # one datacenter is the old rule
    # the bug: LOCAL_QUORUM writes through eu say nothing about us
    (TWO_DCS, "LOCAL_QUORUM", "", False),
    (TWO_DCS, "LOCAL_QUORUM", "LOCAL_QUORUM", False),
    (TWO_DCS, "LOCAL_QUORUM", "QUORUM", False),  # 4 of 6 can all be... 3 in eu and 1 in us
    (TWO_DCS, "LOCAL_QUORUM", "EACH_QUORUM", True),
    (TWO_DCS, "LOCAL_ONE", "EACH_QUORUM", False),  # 2 of 3 written, 1 read: can miss
    (TWO_DCS, "LOCAL_ONE", "ALL", True),
    (TWO_DCS, "QUORUM", "QUORUM", True),  # global quorums overlap (at the price of cross-DC reads)
    (TWO_DCS, "ONE", "EACH_QUORUM", False),
    ("NetworkTopologyStrategy:dc1=1,dc2=1", "LOCAL_QUORUM", "EACH_QUORUM", True),
    ("NetworkTopologyStrategy:dc1=1,dc2=1", "LOCAL_ONE", "EACH_QUORUM", True),
    ("NetworkTopologyStrategy:dc1=1,dc2=1", "LOCAL_QUORUM", "LOCAL_QUORUM", False),
    ("NetworkTopologyStrategy:a=3,b=3,c=3", "LOCAL_QUORUM", "EACH_QUORUM", True),
    ("NetworkTopologyStrategy:a=3,b=3,c=3", "LOCAL_QUORUM", "QUORUM", False),
    ("NetworkTopologyStrategy:eu=3,us=0", "LOCAL_QUORUM", "LOCAL_QUORUM", True),  # us holds nothing
])
def test_reads_must_meet_writes(replication, read, write, ok):
    settings = Settings(cassandra_replication=replication, cassandra_consistency=read,
                        cassandra_write_consistency=write)
    if ok:
        check_consistency(settings)
    else:
        with pytest.raises(ParleyError, match="PARLEY_CASSANDRA_CONSISTENCY") as err:
            check_consistency(settings)
        assert err.value.code == "bad_setting"


def test_the_refusal_names_the_datacenters_and_the_fix():
    with pytest.raises(ParleyError, match=r"a read in us can miss a message written through eu.*EACH_QUORUM"):
        check({"class": "NetworkTopologyStrategy", "eu": 3, "us": 3}, "LOCAL_QUORUM", "")


def test_a_bad_write_level_names_its_setting():
    with pytest.raises(ParleyError, match="PARLEY_CASSANDRA_WRITE_CONSISTENCY='LOCAL_SERIAL'"):
        check({"class": "SimpleStrategy", "replication_factor": 1}, "ONE", "LOCAL_SERIAL")


def test_demands():
    rf = {"eu": 3, "us": 5}
    assert demand("LOCAL_QUORUM", rf, "us") == ({"us": 3}, 0)
    assert demand("EACH_QUORUM", rf, "us") == ({"eu": 2, "us": 3}, 0)
    assert demand("QUORUM", rf, "eu") == ({}, 5)
    assert demand("ALL", rf, "eu") == ({"eu": 3, "us": 5}, 0)
    assert replicas_by_dc({"class": "SimpleStrategy", "replication_factor": 3}) == {"*": 3}


def test_overlap_is_per_datacenter():
    rf = {"eu": 3, "us": 3}
    assert always_overlap(({"eu": 2, "us": 2}, 0), ({"us": 2}, 0), rf)
    assert not always_overlap(({"eu": 2}, 0), ({"us": 2}, 0), rf)
    assert not always_overlap(({}, 4), ({"us": 2}, 0), rf)  # a global quorum may leave us with 1
    assert missed_pair("LOCAL_QUORUM", "LOCAL_QUORUM", rf) == ("eu", "us")


def test_write_level_defaults_to_the_read_level():
    assert write_level(Settings(cassandra_consistency="LOCAL_QUORUM")) == write_level(
        Settings(cassandra_consistency="ONE", cassandra_write_consistency="local_quorum"))
