"""Attachments on real servers (ADR 0024): upload, download and thumbnail for members only; the type from the
bytes; EXIF location gone; disguised and oversized files refused with nothing stored; messages that carry
attachments delivered and in history with their metadata; references checked on send; the sweep."""

from __future__ import annotations

import io

import nats
import pytest
from nats.js.errors import ObjectNotFoundError
from parley.tools.client import Api, ApiError
from PIL import Image

from parley.attachments.catalog import Catalog
from parley.attachments.sweep import release
from tests.integration.refusals import expect
from tests.parley.attachments.test_images import jpeg_with_gps
from tests.poll import eventually

pytestmark = pytest.mark.integration
ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4
PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


def path(conv: str, id: str, sub: str = "") -> str:
    return f"/v1/conversations/{conv}/attachments/{id}{sub}"


@pytest.fixture
async def bus(cluster):
    nc = await nats.connect(**cluster.admin_connect_options())
    yield nc
    await nc.close()


async def gone(world, token: str, conv: str, id: str) -> bool:
    """Whether a member asking for attachment ``id`` is told it is unknown (swept or released)."""
    try:
        await world.api.download(token, path(conv, id))
    except ApiError as err:
        return err.code == "unknown_attachment"
    return False


async def stored(nc) -> tuple[int, int]:
    """Messages in the object store's stream and records in the bucket: what an upload leaves behind."""
    js = nc.jetstream()
    blobs, records = await js.stream_info("OBJ_attachments"), await js.stream_info("KV_attachments")
    return blobs.state.messages, records.state.messages


async def test_a_photo_goes_up_without_its_gps_comes_down_to_members_with_a_thumbnail(world):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    photo = jpeg_with_gps(800, 600)
    meta = await world.api.upload(alice.token, conv, photo, name="IMG_0001.jpg", content_type="image/jpeg")
    assert meta | {"id": "", "created_at": 0} == {
        "id": "", "type": "image/jpeg", "name": "IMG_0001.jpg", "size": meta["size"], "width": 800, "height": 600,
        "thumb": True, "conv": conv, "uploader": alice.id, "created_at": 0}
    data, headers = await world.api.download(bob.token, path(conv, meta["id"]))
    assert len(data) == meta["size"] and headers["Content-Type"] == "image/jpeg"
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Content-Disposition"].startswith("inline;")
    image = Image.open(io.BytesIO(data))
    assert image.size == (800, 600) and not image.getexif() and b"PhoneMaker" not in data
    assert b"PhoneMaker" in photo  # the original had it
    thumb, headers = await world.api.download(alice.token, path(conv, meta["id"], "/thumb"))
    assert headers["Content-Type"] == "image/jpeg" and Image.open(io.BytesIO(thumb)).size == (320, 240)


async def test_other_files_are_sniffed_and_served_as_downloads(world):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    cases = [(PDF, "report.pdf", "text/plain", "application/pdf"),  # the client's type is not trusted
             (ELF, "tool", "application/octet-stream", "application/octet-stream"),
             ("héllo\n".encode(), "notes.txt", "application/pdf", "text/plain"),
             (b"", "empty.txt", "text/plain", "application/octet-stream")]
    for data, name, claimed, kind in cases:
        meta = await world.api.upload(alice.token, conv, data, name=name, content_type=claimed)
        assert (meta["type"], meta["size"], "thumb" in meta) == (kind, len(data), False)
        got, headers = await world.api.download(bob.token, path(conv, meta["id"]))
        assert got == data and headers["Content-Type"].startswith(kind)
        assert headers["Content-Disposition"].startswith("attachment;") and name in headers["Content-Disposition"]
        assert headers["X-Content-Type-Options"] == "nosniff" and "sandbox" in headers["Content-Security-Policy"]
        await expect("unknown_attachment", 404, world.api.download(bob.token, path(conv, meta["id"], "/thumb")))


async def test_disguised_and_undecodable_files_are_refused_with_nothing_stored(world, bus):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    before = await stored(bus)
    await expect("disguised_file", 415, world.api.upload(alice.token, conv, ELF, name="cat.png"))
    await expect("disguised_file", 415, world.api.upload(alice.token, conv, ELF, name="x", content_type="image/png"))
    broken = jpeg_with_gps()[:600]
    await expect("bad_image", 400, world.api.upload(alice.token, conv, broken, name="a.jpg"))
    assert await stored(bus) == before


async def test_an_oversized_file_is_refused_with_nothing_stored(world, cluster, bus):
    url = cluster.start_extra_api("attach-small-api", attachment_max_bytes=4096)
    try:
        small = Api(url, world.http)
        alice, bob = await world.person("alice"), await world.person("bob")
        conv = await alice.befriend(bob)
        before = await stored(bus)
        body = await expect("attachment_too_large", 413, small.upload(alice.token, conv, PDF + b"x" * 5000))
        assert body["limit"] == 4096
        assert await stored(bus) == before
        assert (await small.upload(alice.token, conv, PDF + b"x" * 4000))["size"] == len(PDF) + 4000
    finally:
        cluster.stop("attach-small-api")


async def test_strangers_neither_upload_nor_read_and_unknown_ids_are_404(world):
    alice, bob, eve = await world.person("alice"), await world.person("bob"), await world.person("eve")
    conv = await alice.befriend(bob)
    other = await eve.befriend(await world.person("carol"))
    meta = await world.api.upload(alice.token, conv, PDF, name="a.pdf")
    await expect("not_member", 403, world.api.upload(eve.token, conv, PDF))
    await expect("not_member", 403, world.api.download(eve.token, path(conv, meta["id"])))
    await expect("not_member", 403, world.api.download(eve.token, path(conv, meta["id"], "/thumb")))
    await expect("unknown_attachment", 404, world.api.download(eve.token, path(other, meta["id"])))  # not there
    await expect("unknown_attachment", 404, world.api.download(bob.token, path(conv, "a" * 16)))
    await expect("bad_field", 400, world.api.download(bob.token, path(conv, "nope")))


async def test_a_message_carries_its_attachments_to_the_peer_and_into_history(world):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    a, b = await alice.device(node=0), await bob.device(node=1)
    photo = await world.api.upload(alice.token, conv, jpeg_with_gps(64, 48), name="p.jpg")
    doc = await world.api.upload(alice.token, conv, PDF, name="doc.pdf")
    ack = await a.send(conv, "", attachments=[photo["id"], doc["id"]])
    await b.wait_for(lambda: ack["id"] in b.messages)
    refs = [{"id": photo["id"], "type": "image/jpeg", "name": "p.jpg", "size": photo["size"], "width": 64,
             "height": 48, "thumb": True},
            {"id": doc["id"], "type": "application/pdf", "name": "doc.pdf", "size": len(PDF)}]
    got = b.messages[ack["id"]]
    assert got["body"] == "" and got["attachments"] == refs
    plain = await a.send(conv, "no files")
    await b.wait_for(lambda: plain["id"] in b.messages)
    assert "attachments" not in b.messages[plain["id"]]

    async def in_history():
        page = await world.api.call("GET", f"/v1/conversations/{conv}/messages", bob.token)
        found = {m["id"]: m for m in page["messages"]}
        assert ack["id"] in found and plain["id"] in found
        return found

    found = await eventually(in_history, what="both messages in history")
    assert found[ack["id"]]["attachments"] == refs and "attachments" not in found[plain["id"]]
    again = await a.send(conv, "", cid=ack["cid"], attachments=[photo["id"], doc["id"]])  # a resend: the same
    assert again["id"] == ack["id"] and again["duplicate"]
    later = await bob.device(node=0)  # a new device syncs it with its attachments
    await later.wait_for(lambda: ack["id"] in later.messages)
    assert later.messages[ack["id"]]["attachments"] == refs


async def test_a_send_may_carry_only_its_senders_uploads_to_that_conversation_once(world):
    alice, bob = await world.person("alice"), await world.person("bob")
    carol = await world.person("carol")
    conv = await alice.befriend(bob)
    elsewhere = await alice.befriend(carol)
    a = await alice.device(node=0)
    theirs = await world.api.upload(bob.token, conv, PDF)
    foreign = await world.api.upload(alice.token, elsewhere, PDF)
    mine = await world.api.upload(alice.token, conv, PDF)
    for ids, code in [([foreign["id"]], "foreign_attachment"), ([theirs["id"]], "foreign_attachment"),
                      (["a" * 16], "unknown_attachment"), ([mine["id"], foreign["id"]], "foreign_attachment")]:
        with pytest.raises(ApiError) as info:
            await a.send(conv, "look", attachments=ids)
        assert info.value.code == code, info.value.body
    await a.send(conv, "look", attachments=[mine["id"]])  # the refused send above claimed nothing
    with pytest.raises(ApiError) as info:
        await a.send(conv, "again", attachments=[mine["id"]])
    assert info.value.code == "attachment_in_use"


async def test_the_sweep_deletes_unreferenced_uploads_and_released_ones(world, cluster, bus):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    a = await alice.device(node=0)
    kept = await world.api.upload(alice.token, conv, PDF)
    await a.send(conv, "kept", attachments=[kept["id"]])
    catalog = Catalog(await bus.jetstream().key_value("attachments"))
    url = cluster.start_extra_api("attach-sweep-api", attachment_sweep_s=0.2, attachment_unreferenced_s=1.0,
                                  attachment_grace_s=0.5)
    try:
        sweeper = Api(url, world.http)
        loose = await sweeper.upload(alice.token, conv, jpeg_with_gps(32, 32), name="loose.jpg")

        await eventually(lambda: gone(world, bob.token, conv, loose["id"]), what="the unreferenced upload swept")
        assert await catalog.get(loose["id"]) is None
        assert await catalog.get(kept["id"]) is not None  # its message keeps it
        await release(catalog, [kept["id"]], now_ms=(await catalog.get(kept["id"]))[0].created_at)
        assert await gone(world, bob.token, conv, kept["id"])  # released: no longer served, at once

        async def swept() -> bool:
            return await catalog.get(kept["id"]) is None

        await eventually(swept, what="the released attachment swept after its grace")
    finally:
        cluster.stop("attach-sweep-api")
    store = await bus.jetstream().object_store("attachments")
    for name in (loose["id"], f"{loose['id']}.thumb", kept["id"]):
        with pytest.raises(ObjectNotFoundError):
            await store.get(name)


async def test_deleting_a_message_for_everyone_releases_its_files(world):
    """ADR 0024 with ADR 0025: once the delete is stored, its message's attachments are no longer served and
    the sweep removes them after the grace period; another message's stay."""
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    a = await alice.device(node=0)
    doomed, kept = await world.api.upload(alice.token, conv, PDF), await world.api.upload(alice.token, conv, PDF)
    sent = await a.send(conv, "", attachments=[doomed["id"]])
    await a.send(conv, "stays", attachments=[kept["id"]])
    await a.send(conv, "", kind="delete", target=sent["id"])

    await eventually(lambda: gone(world, bob.token, conv, doomed["id"]),
                     what="the deleted message's attachment released")
    assert not await gone(world, bob.token, conv, kept["id"])
    history = (await world.api.call("GET", f"/v1/conversations/{conv}/messages", bob.token))["messages"]
    assert [m for m in history if m["id"] == sent["id"]][0].get("attachments") is None
