"""Errors a cluster logged from a point on: the shared session cluster's logs hold every earlier test's
lines, so a test that asserts "nothing went wrong" marks where the logs end first and reads only past it."""

from __future__ import annotations

from pathlib import Path

from tests.integration.cluster import Cluster


class LogMark:
    def __init__(self, cluster: Cluster) -> None:
        self.logs = cluster.logs
        self.sizes = {path.name: path.stat().st_size for path in self.logs.glob("*.log")}

    def lines_since(self, path: Path) -> list[str]:
        with open(path, "rb") as f:
            f.seek(self.sizes.get(path.name, 0))
            return f.read().decode(errors="replace").splitlines()

    def errors_since(self) -> list[str]:
        """Lines logged at ERROR and tracebacks since the mark (nats-server's own log is not ours)."""
        return [f"{path.name}: {line}" for path in sorted(self.logs.glob("*.log")) if not path.name.startswith("nats")
                for line in self.lines_since(path) if " ERROR " in line or line.startswith("Traceback")]
