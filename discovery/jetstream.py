"""NATS and JetStream health for the cluster page, from what the JetStream API answers any client (no
system account): ``$JS.API.STREAM.LIST`` (every stream's config, state and cluster: leader, replicas with
``current``/``offline``/``lag``), ``$JS.API.INFO`` (the account's storage and memory used) and the INFO the
connected server sent. Pure: those JSON bodies come in, the panel's model comes out; the requests are
discovery/probes.py's.

The state is ``ok``, ``degraded`` (a stream without a leader, a replica offline or catching up), ``down``
(the API did not answer) or ``waiting`` (not asked yet). Servers are the ones the streams name, plus the
one discovery is connected to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

KV_PREFIX = "KV_"
SILENT_S = 5.0  # a replica not current and not heard from for this long is counted offline (its server is down)


def kind_of(stream: str, message_stream: str) -> str:
    """``messages`` (a shard's stream, ``<PARLEY_STREAM_NAME>_<i>``), ``bucket`` (a KV bucket) or ``other``."""
    if stream.startswith(KV_PREFIX):
        return "bucket"
    return "messages" if stream == message_stream or stream.startswith(message_stream + "_") else "other"


def peer_state(peer: Mapping[str, Any]) -> str:
    """``current``, ``catching up`` (behind, but heard from), or ``offline`` (so flagged, or silent: a killed
    server's replica reads ``current: false`` with a growing ``active`` long before it is flagged offline)."""
    if peer.get("current"):
        return "current"
    if peer.get("offline") or (peer.get("active") or 0) / 1e9 >= SILENT_S:
        return "offline"
    return "catching up"


def stream_row(info: Mapping[str, Any], message_stream: str, connected: str | None) -> dict[str, object]:
    config, state = info.get("config") or {}, info.get("state") or {}
    cluster = info.get("cluster") or {}
    name = str(config.get("name", "?"))
    leader = cluster.get("leader") or (connected if not cluster else None)
    peers: list[dict[str, object]] = []
    if leader:
        peers.append({"name": leader, "role": "leader", "state": "current", "lag": 0, "active_s": 0.0})
    for p in cluster.get("replicas") or []:
        peers.append({"name": p.get("name"), "role": "replica", "state": peer_state(p), "lag": int(p.get("lag") or 0),
                      "active_s": round((p.get("active") or 0) / 1e9, 2)})  # nanoseconds
    return {"name": name, "kind": kind_of(name, message_stream), "replicas": int(config.get("num_replicas") or 1),
            "leader": leader, "messages": int(state.get("messages") or 0), "bytes": int(state.get("bytes") or 0),
            "consumers": int(state.get("consumer_count") or 0), "peers": peers}


def stream_ok(row: Mapping[str, Any]) -> bool:
    return bool(row["leader"]) and all(p["state"] == "current" for p in row["peers"])


def servers_of(rows: list[dict[str, Any]], connected: str | None) -> list[dict[str, object]]:
    """Each server the streams name: how many streams it leads and replicates, and its worst replica state."""
    seen: dict[str, dict[str, Any]] = {}
    if connected:
        seen[connected] = {"name": connected, "leads": 0, "replicates": 0, "state": "ok", "connected": True}
    for row in rows:
        for p in row["peers"]:
            if not p["name"]:
                continue
            s = seen.setdefault(p["name"], {"name": p["name"], "leads": 0, "replicates": 0, "state": "ok",
                                            "connected": False})
            s["leads" if p["role"] == "leader" else "replicates"] += 1
            if p["state"] == "offline":
                s["state"] = "offline"
            elif p["state"] == "catching up" and s["state"] == "ok":
                s["state"] = "catching up"
    return sorted(seen.values(), key=lambda s: s["name"])


def bus_health(streams: Sequence[Mapping[str, Any]] | None, account: Mapping[str, Any] | None,
               server: Mapping[str, Any] | None, message_stream: str, error: str | None = None) -> dict[str, object]:
    """The NATS panel's model. ``streams``: STREAM.LIST's ``streams``; ``account``: ``$JS.API.INFO``'s
    answer; ``server``: the connected server's INFO; ``error``: why the API did not answer."""
    server = server or {}
    connected = server.get("server_name") or None
    conn = {"server": connected, "version": server.get("version"), "cluster": server.get("cluster")}
    if streams is None:
        return {"state": "down" if error else "waiting", "error": error, "connected": conn, "servers": [],
                "streams": [], "storage_bytes": None, "memory_bytes": None}
    rows = sorted((stream_row(i, message_stream, connected) for i in streams),
                  key=lambda r: (("messages", "bucket", "other").index(str(r["kind"])), str(r["name"])))
    account = account or {}
    return {"state": "ok" if all(stream_ok(r) for r in rows) else "degraded", "error": None, "connected": conn,
            "servers": servers_of(rows, connected), "streams": rows,
            "storage_bytes": account.get("storage"), "memory_bytes": account.get("memory")}
