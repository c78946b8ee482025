"""The keyspace's replication: what the settings ask for, what the cluster has, and changing it.

``CREATE KEYSPACE IF NOT EXISTS`` only acts once, so a changed ``PARLEY_CASSANDRA_REPLICATION`` used to
be ignored without a word. Now a process whose keyspace replicates differently from its settings
refuses to start (``refuse_mismatch``), and one explicit command (``parley cassandra replication``)
ALTERs the keyspace; Cassandra then needs ``nodetool repair -full`` on every node before the new
replicas hold the old data (until then a read there can miss history, which sync would skip).
"""

from __future__ import annotations

import re

from cassandra.cluster import Session as CqlSession

from parley.errors import ParleyError

KEYSPACE_RE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
STRATEGY_PACKAGE = "org.apache.cassandra.locator."
REPAIR_ADVICE = ("run `nodetool repair -full {ks}` on every node, one at a time, before relying on the new "
                 "replicas (until it finishes a read there can miss history)")


def replication_map(spec: str) -> dict[str, str | int]:
    """``SimpleStrategy:1`` or ``NetworkTopologyStrategy:dc1=3,dc2=3`` → a CQL replication map."""
    strategy, _, rest = spec.partition(":")
    try:
        if strategy == "SimpleStrategy":
            return {"class": "SimpleStrategy", "replication_factor": int(rest)}
        if strategy == "NetworkTopologyStrategy":
            pairs = [item.split("=") for item in rest.split(",")]
            return {"class": "NetworkTopologyStrategy", **{dc.strip(): int(rf) for dc, rf in pairs}}
    except ValueError:
        pass
    raise ParleyError(
        f"PARLEY_CASSANDRA_REPLICATION={spec!r}: use SimpleStrategy:<rf> or NetworkTopologyStrategy:<dc>=<rf>,...",
        code="bad_setting")


def checked_keyspace(keyspace: str) -> str:
    if not KEYSPACE_RE.match(keyspace):
        raise ParleyError(f"PARLEY_CASSANDRA_KEYSPACE={keyspace!r} is not a valid keyspace name", code="bad_setting")
    return keyspace


def cql_map(spec: str) -> str:
    """The replication map as CQL: ``{'class': 'SimpleStrategy', 'replication_factor': 1}``."""
    options = ", ".join(f"'{k}': {v!r}" if isinstance(v, str) else f"'{k}': {v}"
                        for k, v in replication_map(spec).items())
    return f"{{{options}}}"


def normalized(stored: dict[str, str | int]) -> dict[str, str]:
    """A map as Cassandra stores it (full class name, factors as text), minus zero factors."""
    out = {k: str(v) for k, v in stored.items() if k == "class" or str(v) != "0"}
    out["class"] = out.get("class", "").removeprefix(STRATEGY_PACKAGE)
    return out


def differs(spec: str, stored: dict[str, str | int]) -> bool:
    return normalized(replication_map(spec)) != normalized(stored)


def alter_statement(keyspace: str, spec: str) -> str:
    return f"ALTER KEYSPACE {checked_keyspace(keyspace)} WITH replication = {cql_map(spec)}"


def stored_replication(session: CqlSession, keyspace: str) -> dict[str, str | int] | None:
    """Blocking: the keyspace's replication map as the cluster has it, or None if there is no keyspace."""
    row = session.execute("SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s",
                          (keyspace,)).one()
    return dict(row.replication) if row is not None else None


def refuse_mismatch(session: CqlSession, keyspace: str, spec: str) -> None:
    """Blocking: a keyspace that exists with other replication than the settings ask for stops start-up."""
    stored = stored_replication(session, keyspace)
    if stored is not None and differs(spec, stored):
        raise ParleyError(
            f"keyspace {keyspace} replicates as {normalized(stored)} but PARLEY_CASSANDRA_REPLICATION={spec} "
            f"asks for {normalized(replication_map(spec))}: run `parley cassandra replication` with these "
            f"settings to change it (then {REPAIR_ADVICE.format(ks=keyspace)}), or set "
            "PARLEY_CASSANDRA_REPLICATION to what the keyspace has", code="bad_setting")


def alter(session: CqlSession, keyspace: str, spec: str, timeout: float = 60) -> dict[str, str | int] | None:
    """Blocking: ALTER the keyspace to ``spec`` if it differs; returns what it was (None: nothing done)."""
    stored = stored_replication(session, keyspace)
    if stored is None:
        raise ParleyError(f"keyspace {keyspace} does not exist: start any Parley process once to create it "
                          "(it is created with PARLEY_CASSANDRA_REPLICATION)", code="bad_setting")
    if not differs(spec, stored):
        return None
    session.execute(alter_statement(keyspace, spec), timeout=timeout)
    return stored
