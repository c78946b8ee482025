"""The multi-DC runner's configuration: one node per datacenter on 127.0.0.1, every node a seed."""

from pathlib import Path

from parley.tools import cassandra_cluster
from parley.tools.cassandra_runner import cassandra_yaml, write_config


def test_a_datacenter_node_gossips_its_dc_and_seeds_every_node(tmp_path: Path):
    conf = write_config(tmp_path / "dc2", 9143, 7101, seeds=(7100, 7101), dc="dc2")
    yaml = (conf / "cassandra.yaml").read_text()
    assert "endpoint_snitch: GossipingPropertyFileSnitch" in yaml
    assert 'seeds: "127.0.0.1:7100,127.0.0.1:7101"' in yaml
    assert "native_transport_port: 9143" in yaml and "storage_port: 7101" in yaml
    assert (conf / "cassandra-rackdc.properties").read_text() == "dc=dc2\nrack=rack1\n"


def test_alone_it_is_the_single_node_config_it_was(tmp_path: Path):
    yaml = cassandra_yaml(tmp_path, 9042, 7000)
    assert "endpoint_snitch: SimpleSnitch" in yaml and 'seeds: "127.0.0.1:7000"' in yaml
    conf = write_config(tmp_path / "dc1", 9042, 7000, dc="dc1")
    write_config(tmp_path / "dc1", 9042, 7000)  # rewritten alone: no datacenter file left behind
    assert not (conf / "cassandra-rackdc.properties").exists()


def test_plan_puts_each_dc_in_its_own_directory_on_distinct_ports(tmp_path: Path):
    nodes = cassandra_cluster.plan(tmp_path, ("eu", "us"))
    assert [n.dc for n in nodes] == ["eu", "us"]
    assert [n.dir for n in nodes] == [(tmp_path / "eu").resolve(), (tmp_path / "us").resolve()]
    ports = [p for n in nodes for p in (n.cql_port, n.storage_port)]
    assert len(set(ports)) == 4
