"""docs/protocol.md §5's table has a row for every server frame ``parley.protocol`` builds, and nothing else."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def built() -> set[str]:
    return set(re.findall(r'"type": "([a-z_]+)"', (ROOT / "parley" / "protocol.py").read_text()))


def documented() -> set[str]:
    section = (ROOT / "docs" / "protocol.md").read_text().split("\n## 5. ", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M))


def test_every_server_frame_has_a_row_in_section_5():
    assert built() == documented()


def test_the_friend_frame_is_among_them():
    assert "friend" in built()
