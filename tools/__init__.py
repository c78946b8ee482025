"""Tooling around the product: the ``parley`` command, the local cluster launcher, the local Cassandra
and NATS runners, ``status``/``nodectl``, the reference client and the FCM stand-in. Nothing here runs
inside a production role."""
