"""Ordered dispatch reaches into nats-py's private ``_process_msg``: fail loudly when an upgrade moves it."""

from __future__ import annotations

import inspect

import nats
from nats.aio.client import Client

from parley.bus.ordered import RELIES_ON, BusClient


def test_the_private_hooks_we_override_or_call_are_still_there_with_the_same_parameters():
    for name, params in RELIES_ON.items():
        method = getattr(Client, name, None)
        assert method is not None, f"nats-py {nats.__version__} has no Client.{name}: revisit parley/bus/ordered.py"
        assert tuple(inspect.signature(method).parameters)[1:] == params, (
            f"nats-py {nats.__version__} changed Client.{name}{inspect.signature(method)}: "
            "revisit parley/bus/ordered.py")
        assert inspect.iscoroutinefunction(method)


def test_our_override_keeps_the_signature():
    ours = inspect.signature(BusClient._process_msg)
    theirs = inspect.signature(Client._process_msg)
    assert list(ours.parameters) == list(theirs.parameters)
