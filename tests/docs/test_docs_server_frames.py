"""docs/protocol.md §5's table has a row for every server frame ``parley.protocol`` and ``parley.contact_frames``
build, and nothing else."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def built() -> set[str]:
    sources = [ROOT / "parley" / "protocol.py", ROOT / "parley" / "contact_frames.py"]
    return {t for source in sources for t in re.findall(r'"type": "([a-z_]+)"', source.read_text())}


def documented() -> set[str]:
    section = (ROOT / "docs" / "protocol.md").read_text().split("\n## 5. ", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M))


def test_every_server_frame_has_a_row_in_section_5():
    assert built() == documented()


def test_the_frames_about_people_are_among_them():
    assert {"friend", "user"} <= built()
