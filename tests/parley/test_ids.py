from parley.ids import (
    conversation_of_delivery,
    dm_conversation,
    dm_members,
    is_valid_id,
    message_subject,
    new_user_id,
    user_delivery_subjects,
)


def test_new_ids_are_valid_and_distinct():
    ids = {new_user_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(is_valid_id(i) for i in ids)


def test_dm_conversation_is_symmetric_and_parses_back():
    a, b = new_user_id(), new_user_id()
    conv = dm_conversation(a, b)
    assert conv == dm_conversation(b, a)
    assert dm_members(conv) == tuple(sorted((a, b)))


def test_dm_members_rejects_malformed_or_unsorted_ids():
    assert dm_members("dm.bbbbbbbbbbbbbbbb.aaaaaaaaaaaaaaaa") is None
    assert dm_members("dm.aaaaaaaaaaaaaaaa.aaaaaaaaaaaaaaaa") is None
    assert dm_members("dm.aaaa.bbbb") is None
    assert dm_members("g.aaaaaaaaaaaaaaaa") is None


def test_subjects_map_conversations_both_ways():
    conv = dm_conversation(new_user_id(), new_user_id())
    assert message_subject(conv) == "msg." + conv
    assert conversation_of_delivery("dlv." + conv) == conv


def test_a_user_is_subscribed_to_both_sides_of_its_dms_and_its_control_subject():
    a, b = sorted((new_user_id(), new_user_id()))
    subjects = user_delivery_subjects(a)
    assert f"dlv.dm.{a}.*" in subjects and f"dlv.dm.*.{a}" in subjects and f"ctl.user.{a}" in subjects
