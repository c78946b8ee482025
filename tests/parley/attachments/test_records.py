"""Who may reference an upload, when the sweep deletes it, and what a name and a download header look like."""

import pytest

from parley.attachments.records import (
    AttachmentMeta,
    claimed,
    content_disposition,
    due,
    refusal,
    released,
    safe_name,
)
from parley.store.records import AttachmentRef, refs_from_text, refs_to_text

META = AttachmentMeta("aaaaaaaaaaaaaaaa", "g.conv", "alice", "image/png", "cat.png", 10, created_at=1_000_000,
                      width=4, height=3, thumb=True)


@pytest.mark.parametrize(("meta", "conv", "sender", "claim", "code"), [
    (META, "g.conv", "alice", "m1", None),
    (claimed(META, "m1"), "g.conv", "alice", "m1", None),  # a resend of the same message
    (claimed(META, "m1"), "g.conv", "alice", "m2", "attachment_in_use"),
    (None, "g.conv", "alice", "m1", "unknown_attachment"),
    (released(META, 5), "g.conv", "alice", "m1", "unknown_attachment"),
    (META, "g.other", "alice", "m1", "foreign_attachment"),
    (META, "g.conv", "bob", "m1", "foreign_attachment"),
])
def test_who_may_reference_an_upload(meta, conv, sender, claim, code):
    err = refusal(meta, conv=conv, sender=sender, claim=claim)
    assert (err.code if err else None) == code


def test_the_sweep_takes_unclaimed_uploads_after_their_time_and_released_ones_after_the_grace():
    times = {"unreferenced_s": 100.0, "grace_s": 10.0}
    assert not due(META, 1_000_000 + 99_999, **times) and due(META, 1_000_000 + 100_000, **times)
    kept = claimed(META, "m1")
    assert not due(kept, 10**12, **times)  # a message carries it: kept until the message goes
    gone = released(kept, 2_000_000)
    assert not due(gone, 2_009_999, **times) and due(gone, 2_010_000, **times)
    assert released(gone, 3_000_000) == gone  # released once: the grace counts from the first


def test_a_record_round_trips_and_its_reference_is_what_messages_carry():
    assert AttachmentMeta.decode(META.encode()) == META
    assert META.ref() == AttachmentRef("aaaaaaaaaaaaaaaa", "image/png", "cat.png", 10, 4, 3, True)
    assert META.ref().as_json() == {"id": "aaaaaaaaaaaaaaaa", "type": "image/png", "name": "cat.png", "size": 10,
                                    "width": 4, "height": 3, "thumb": True}
    file = AttachmentRef("b" * 16, "application/pdf", "a.pdf", 3)
    assert file.as_json() == {"id": "b" * 16, "type": "application/pdf", "name": "a.pdf", "size": 3}
    assert refs_from_text(refs_to_text((META.ref(), file))) == (META.ref(), file)
    assert refs_to_text(()) == "" and refs_from_text("") == () and refs_from_text(None) == ()


@pytest.mark.parametrize(("given", "name"), [
    ("cat.png", "cat.png"),
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\me\\report.pdf", "report.pdf"),
    ('we"ird<name>.txt', "weirdname.txt"),
    ("bell\x07\u202etxt.exe", "belltxt.exe"),  # control and bidi override characters dropped
    ("...", "file"),
    (None, "file"),
    ("x" * 300, "x" * 200),
])
def test_names_are_made_safe(given, name):
    assert safe_name(given) == name


def test_content_disposition_offers_the_name_in_ascii_and_utf8():
    meta = AttachmentMeta("a" * 16, "g.c", "u", "application/pdf", "Grüße 1.pdf", 1, 0)
    assert content_disposition(meta, inline=False) == (
        "attachment; filename=\"Gr__e 1.pdf\"; filename*=UTF-8''Gr%C3%BC%C3%9Fe%201.pdf")
    assert content_disposition(META, inline=True).startswith('inline; filename="cat.png"')
