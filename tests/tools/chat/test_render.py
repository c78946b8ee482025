"""Text for the terminal (parley.tools.chat.render)."""

import pytest
from parley.tools.chat import render


@pytest.mark.parametrize(("seen", "text"), [
    (None, "never seen"),
    (1_000_000, "last seen just now"),
    (1_000_000 - 59_000, "last seen just now"),
    (1_000_000 - 61_000, "last seen 1 min ago"),
    (1_000_000 - 3_599_000, "last seen 59 min ago"),
    (1_000_000 - 7_200_000, "last seen 2 h ago"),
])
def test_last_seen(seen, text):
    assert render.ago(seen, now=1_000) == text


def test_last_seen_long_ago_is_a_date():
    assert render.ago(0, now=200_000).startswith("last seen on 1970-01-0")


@pytest.mark.parametrize(("raw", "shown"), [
    ("plain", "plain"),
    ("two\nlines", "two ⏎ lines"),
    ("tab\there", "tab here"),
    ("\x1b]0;title\x07", "�]0;title�"),
    ("rtl\u202eevil", "rtl�evil"),
    ("emoji 👍🏽 and 👩‍💻", "emoji 👍🏽 and 👩‍💻"),
])
def test_clean(raw, shown):
    assert render.clean(raw) == shown
