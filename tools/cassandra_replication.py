"""``parley cassandra replication``: make the keyspace replicate as PARLEY_CASSANDRA_REPLICATION says.

Processes never change replication at start (they refuse a keyspace that differs from their
settings); this command does, explicitly: it shows what the keyspace has and what the settings ask
for, ALTERs the keyspace (unless ``--check``), and says that ``nodetool repair -full`` must run on
every node before the new replicas can be trusted. Exit 0: the keyspace now matches (or already
did); 1: ``--check`` found a difference; 2: it could not be done.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from parley.errors import ParleyError
from parley.settings import Settings
from parley.store.cassandra.cql import DOWN, new_cluster
from parley.store.cassandra.replication import (
    REPAIR_ADVICE,
    alter,
    checked_keyspace,
    differs,
    normalized,
    replication_map,
    stored_replication,
)


def change_replication(settings: Settings, check_only: bool = False) -> tuple[int, list[str]]:
    """Blocking: (exit status, lines to print)."""
    keyspace, spec = checked_keyspace(settings.cassandra_keyspace), settings.cassandra_replication
    wanted = normalized(replication_map(spec))
    cluster = new_cluster(settings)
    try:
        session = cluster.connect()
        stored = stored_replication(session, keyspace)
        if stored is not None and not differs(spec, stored):
            return 0, [f"keyspace {keyspace} already replicates as {wanted}"]
        if check_only or stored is None:
            before = "does not exist" if stored is None else f"replicates as {normalized(stored)}"
            return (1 if stored is not None else 2), [f"keyspace {keyspace} {before}; settings ask for {wanted}"]
        alter(session, keyspace, spec)
        cluster.control_connection.wait_for_schema_agreement(wait_time=60)
        return 0, [f"keyspace {keyspace}: replication {normalized(stored)} -> {wanted}",
                   f"now {REPAIR_ADVICE.format(ks=keyspace)}",
                   "(the python -m parley.tools.cassandra_runner nodetool ... wrapper does it for a local node)"]
    finally:
        cluster.shutdown()


def main(argv: Sequence[str] | None = None, prog: str = "parley cassandra replication") -> int:
    parser = argparse.ArgumentParser(prog=prog, description="ALTER the keyspace to PARLEY_CASSANDRA_REPLICATION "
                                     "(PARLEY_CASSANDRA_HOSTS, _PORT, _KEYSPACE say where).")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if they differ")
    args = parser.parse_args(argv)
    try:
        status, lines = change_replication(Settings.from_env(os.environ), args.check)
    except ParleyError as err:
        print(f"{prog}: {err.message}", file=sys.stderr)
        return 2
    except DOWN as err:
        print(f"{prog}: cannot reach Cassandra: {err}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return status


if __name__ == "__main__":
    sys.exit(main())
