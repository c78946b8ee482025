"""Replication settings: parsing, the CQL they become, and comparing them with what a keyspace has."""

import pytest

from parley.errors import ParleyError
from parley.store.cassandra.replication import alter_statement, differs, normalized, replication_map


@pytest.mark.parametrize(("spec", "expected"), [
    ("SimpleStrategy:1", {"class": "SimpleStrategy", "replication_factor": 1}),
    ("NetworkTopologyStrategy:eu=3,us=3", {"class": "NetworkTopologyStrategy", "eu": 3, "us": 3}),
])
def test_replication_settings(spec, expected):
    assert replication_map(spec) == expected


@pytest.mark.parametrize("spec", ["", "SimpleStrategy", "SimpleStrategy:x", "Other:1", "NetworkTopologyStrategy:eu"])
def test_bad_replication_names_the_setting(spec):
    with pytest.raises(ParleyError, match="PARLEY_CASSANDRA_REPLICATION"):
        replication_map(spec)


def test_stored_maps_compare_by_meaning():
    stored = {"class": "org.apache.cassandra.locator.NetworkTopologyStrategy", "dc1": "1", "dc2": "1"}
    assert not differs("NetworkTopologyStrategy:dc1=1,dc2=1", stored)
    assert not differs("NetworkTopologyStrategy:dc2=1,dc1=1,dc3=0", stored)  # order, zero factors
    assert differs("NetworkTopologyStrategy:dc1=1", stored)
    assert differs("NetworkTopologyStrategy:dc1=1,dc2=3", stored)
    assert differs("SimpleStrategy:1", stored)
    assert normalized(stored) == {"class": "NetworkTopologyStrategy", "dc1": "1", "dc2": "1"}


def test_alter_statement():
    assert alter_statement("parley", "NetworkTopologyStrategy:dc1=1,dc2=1") == (
        "ALTER KEYSPACE parley WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 1, 'dc2': 1}")
    with pytest.raises(ParleyError, match="PARLEY_CASSANDRA_KEYSPACE"):
        alter_statement("x; DROP", "SimpleStrategy:1")
