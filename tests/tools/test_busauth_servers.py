"""The authenticated bus on real nats-servers (ADR 0013): who gets in, and what each role may do.

One nats-server with the run dir's users (``Cluster.start_nats``, as every Parley cluster runs it), and the
session's 3-server cluster (``nats_cluster``) for the refusals. A role using a subject it has no right to
gets a ``Permissions Violation`` error from the server, and the message reaches nobody.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import nats
import nats.errors
import pytest
from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig
from parley.tools import natsserver
from parley.tools.cluster import Cluster, free_port
from parley.tools.natscluster import NatsServers

from tests.poll import eventually, eventually_sync


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("busauth"), nodes=0)
    cluster.start_nats()
    try:
        yield cluster
    finally:
        cluster.shutdown()


class Errors(list[str]):
    """What the server said to a connection (nats-py: ``permissions violation for publish to "x"``)."""

    def callback(self) -> Callable[[Exception], Awaitable[None]]:
        async def keep(err: Exception) -> None:  # nats-py wants a coroutine function
            self.append(str(err).lower())

        return keep


async def connect_as(server: Cluster, role: str, errors: Errors | None = None) -> Client:
    options = {"servers": server.settings.nats_servers(), **server.auth.connect_options(role)}
    return await nats.connect(**options, error_cb=(Errors() if errors is None else errors).callback(),
                              max_reconnect_attempts=0)


@pytest.fixture
async def admin(server: Cluster) -> AsyncIterator[Client]:
    nc = await nats.connect(**server.admin_connect_options())
    yield nc
    await nc.close()


async def refused(**options: object) -> str:
    """The error a connection with ``options`` gets (the test fails if it gets in)."""
    nc = Client()
    try:
        with pytest.raises(nats.errors.Error) as err:
            await nc.connect(**options, max_reconnect_attempts=0, allow_reconnect=False,  # type: ignore[arg-type]
                             error_cb=Errors().callback(), connect_timeout=2)
    finally:
        await nc.close()  # a refused connect leaves its socket open
    return str(err.value)


async def test_a_connection_without_credentials_is_refused(server: Cluster) -> None:
    assert "Authorization Violation" in await refused(servers=server.settings.nats_servers())


async def test_a_wrong_password_is_refused(server: Cluster) -> None:
    assert "Authorization Violation" in await refused(servers=server.settings.nats_servers(), user="node",
                                                      password="not-the-password")


async def test_another_roles_password_is_refused(server: Cluster) -> None:
    assert "Authorization Violation" in await refused(servers=server.settings.nats_servers(), user="node",
                                                      password=server.auth.passwords["api"])


async def test_the_3_server_cluster_refuses_without_credentials(nats_cluster: NatsServers) -> None:
    for url in nats_cluster.urls:
        assert "Authorization Violation" in await refused(servers=[url])


async def received(admin: Client, subject: str) -> list[bytes]:
    got: list[bytes] = []

    async def on(msg: nats.aio.msg.Msg) -> None:
        got.append(msg.data)

    await admin.subscribe(subject, cb=on)
    await admin.flush()
    return got


async def test_a_node_cannot_publish_a_revocation_but_the_api_can(server: Cluster, admin: Client) -> None:
    got, marks = await received(admin, "ctl.user.x"), await received(admin, "evt.mark")
    errors = Errors()
    node, api = await connect_as(server, "node", errors), await connect_as(server, "api")
    try:
        await node.publish("ctl.user.x", b"forged")
        await node.publish("evt.mark", b"after")  # the same connection: the server handled the forgery first
        await node.flush()
        await eventually(lambda: marks == [b"after"], what="the node's event reaches the subscriber")
        await eventually(lambda: any('violation for publish to "ctl.user.x"' in e for e in errors),
                         what="the server refuses")
        assert got == []
        assert any('Publish Violation - Subject "ctl.user.x"' in line for line in server.errors_in_logs())
        await api.publish("ctl.user.x", b"revoke")
        await eventually(lambda: got == [b"revoke"], what="the API's revocation arrives")
    finally:
        await node.close()
        await api.close()


async def test_a_node_cannot_read_the_auth_limits(server: Cluster, admin: Client) -> None:
    errors, api_errors, got = Errors(), Errors(), []

    async def on(msg: nats.aio.msg.Msg) -> None:
        got.append(msg.data)

    node, api = await connect_as(server, "node", errors), await connect_as(server, "api", api_errors)
    try:
        await node.subscribe("$KV.auth_limits.>", cb=on)
        await node.flush()
        await eventually(lambda: any('violation for subscription to "$kv.auth_limits.>"' in e for e in errors),
                         what="the server refuses the subscription")
        marks = await received(admin, "$KV.auth_limits.k")

        async def api_write_seen() -> bool:  # written again at each poll: CI once saw the first one not arrive
            await api.publish("$KV.auth_limits.k", b"3")
            await api.flush(timeout=2)
            return b"3" in marks

        await eventually(api_write_seen, what=f"the API's write reaches a subscriber with rights ({api_errors})")
        await node.flush()
        assert got == []
        with pytest.raises(nats.errors.Error):  # a direct get of the bucket's stream: not for nodes either
            await node.request("$JS.API.DIRECT.GET.KV_auth_limits.$KV.auth_limits.k", b"", timeout=2)
    finally:
        await node.close()
        await api.close()


async def test_only_the_archiver_acks_the_archiver_consumer(server: Cluster, admin: Client) -> None:
    js = admin.jetstream()
    await js.add_stream(name="PERM", subjects=["perm.>"])
    await js.add_consumer("PERM", ConsumerConfig(durable_name="archiver", ack_policy=AckPolicy.EXPLICIT,
                                                 ack_wait=60))
    await js.publish("perm.1", b"m")
    msg = (await (await js.pull_subscribe_bind("archiver", stream="PERM")).fetch(1, timeout=5))[0]
    errors = Errors()
    node, archiver = await connect_as(server, "node", errors), await connect_as(server, "archiver")
    try:
        await node.publish(msg.reply, b"+ACK")
        await node.flush()
        await eventually(lambda: any("permissions violation for publish to" in e for e in errors),
                         what="the server refuses the node's ack")
        assert (await js.consumer_info("PERM", "archiver")).num_ack_pending == 1
        await archiver.publish(msg.reply, b"+ACK")
        await archiver.flush()

        async def acked() -> bool:
            return (await js.consumer_info("PERM", "archiver")).num_ack_pending == 0

        await eventually(acked, what="the archiver's ack counts")
    finally:
        await node.close()
        await archiver.close()
        await js.delete_stream("PERM")


async def test_a_role_reads_only_its_own_replies(server: Cluster, admin: Client) -> None:
    errors, got = Errors(), []

    async def on(msg: nats.aio.msg.Msg) -> None:
        got.append(msg.data)

    node, api = await connect_as(server, "node", errors), await connect_as(server, "api")
    try:
        await node.subscribe("_INBOX.api.>", cb=on)
        await node.flush()
        await eventually(lambda: any('violation for subscription to "_inbox.api.>"' in e for e in errors),
                         what="the server refuses the node a subscription on the API's inboxes")
        assert (await api.jetstream().account_info()).streams >= 0  # JetStream answers on _INBOX.api.<id>
        await node.flush()
        assert got == []
        assert any('user:node" - Subscription Violation - Subject "_INBOX.api.>"' in line
                   for line in server.errors_in_logs())
    finally:
        await node.close()
        await api.close()


async def test_a_node_answers_each_request_once_and_forges_no_reply(server: Cluster) -> None:
    errors, answers = Errors(), []
    node, ops = await connect_as(server, "node", errors), await connect_as(server, "ops")
    try:
        async def on_ctl(msg: nats.aio.msg.Msg) -> None:
            await msg.respond(b"draining")
            await node.publish(msg.reply, b"again")  # a second answer to the same request: refused

        await node.subscribe("ctl.node.n-test", cb=on_ctl)
        await node.flush()
        inbox = ops.new_inbox()
        assert inbox.startswith("_INBOX.ops.")

        async def on(msg: nats.aio.msg.Msg) -> None:
            answers.append(msg.data)

        await ops.subscribe(inbox, cb=on)
        await ops.flush()
        await node.publish(inbox, b"forged")  # no request asked for it
        await node.flush()
        await eventually(lambda: any(f'violation for publish to "{inbox.lower()}"' in e for e in errors),
                         what="the server refuses an unasked reply")
        assert (await ops.request("ctl.node.n-test", b"{}", timeout=5)).data == b"draining"
        await ops.publish("ctl.node.n-test", b"{}", reply=inbox)
        await eventually(lambda: answers == [b"draining"] and sum("violation for publish" in e for e in errors) >= 3,
                         what="one answer arrives, the second and the forgery are refused")
    finally:
        await node.close()
        await ops.close()


def test_credentials_are_private_files(server: Cluster) -> None:
    for path in [*server.auth.dir.iterdir(), server.root / "nats.conf"]:
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert server.auth.dir.stat().st_mode & 0o777 == 0o700
    assert all(len(p) >= 43 for p in server.auth.passwords.values())  # 32 random bytes


def test_a_run_dir_keeps_its_passwords(server: Cluster, tmp_path: Path) -> None:
    from parley.tools import busauth

    assert busauth.ensure(server.root).passwords == server.auth.passwords
    assert busauth.ensure(tmp_path).passwords != server.auth.passwords


def test_a_server_without_the_route_credentials_cannot_join_the_cluster(nats_cluster: NatsServers,
                                                                        tmp_path: Path) -> None:
    member = nats_cluster.members[0]
    config = tmp_path / "rogue.conf"
    config.write_text(f"server_name: rogue\nhost: 127.0.0.1\nport: {free_port()}\n"
                      f"cluster {{\n  name: parley\n  host: 127.0.0.1\n  port: {free_port()}\n"
                      f"  routes: [nats-route://127.0.0.1:{member.cluster_port}]\n}}\n")
    rogue = natsserver.start_with(config, tmp_path / "rogue.log")
    try:
        def refused_route() -> bool:
            return any("rid:" in line and "authentication error" in line.lower()
                       for line in member.log.read_text(errors="replace").splitlines())

        eventually_sync(refused_route, what=f"{member.name} refuses the rogue's route")
    finally:
        rogue.terminate()
        rogue.wait(10)


def test_a_cluster_without_the_gateway_credentials_cannot_join_the_supercluster(tmp_path: Path) -> None:
    servers = NatsServers(tmp_path / "regions", 1, free_port, regions=["eu", "us"])
    servers.start()
    try:
        member = servers.member("nats-eu-1")
        assert member.gateway is not None
        config = tmp_path / "rogue.conf"
        config.write_text(f"server_name: rogue\nhost: 127.0.0.1\nport: {free_port()}\n"
                          f"gateway {{\n  name: rogue\n  host: 127.0.0.1\n  port: {free_port()}\n"
                          f'  gateways: [{{name: eu, urls: ["nats://127.0.0.1:{member.gateway.target_port}"]}}]\n}}\n')
        rogue = natsserver.start_with(config, tmp_path / "rogue.log")
        try:
            def refused_gateway() -> bool:
                return any("gid:" in line and "authentication error" in line.lower()
                           for line in member.log.read_text(errors="replace").splitlines())

            eventually_sync(refused_gateway, what=f"{member.name} refuses the rogue's gateway")
        finally:
            rogue.terminate()
            rogue.wait(10)
    finally:
        servers.stop()
