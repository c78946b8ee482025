"""The tests' name for the cluster launcher, which lives in ``parley.tools.cluster`` (``parley up`` and the
benchmarks start clusters with it too)."""

from parley.tools.cluster import SECRET, Cluster, free_port

__all__ = ["SECRET", "Cluster", "free_port"]
