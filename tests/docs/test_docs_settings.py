"""README.md's configuration table lists every field of ``parley.settings.Settings``, with its default.

A row names its variables in backticks (``PARLEY_A`` / ``PARLEY_B``) and gives their defaults in the same
order, each in backticks; a default in parentheses stands for an empty value ("(none)", or what is
derived then).
"""

import re
from dataclasses import fields
from pathlib import Path

import pytest

from parley.settings import PREFIX, Secret, Settings

README = Path(__file__).resolve().parents[2] / "README.md"
NAME = re.compile(r"`(PARLEY_[A-Z0-9_]+)`")


def config_rows(readme: str) -> dict[str, str]:
    """Each variable of the table under ``## Configuration`` → its default cell."""
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        if not line.startswith("| `PARLEY_"):
            continue
        names_cell, default_cell = (cell.strip() for cell in line.strip().strip("|").split("|")[:2])
        names, defaults = NAME.findall(names_cell), [d.strip() for d in default_cell.split(" / ")]
        if len(defaults) == 1:  # one default shared by every variable of the row: "(none)"
            defaults *= len(names)
        assert len(defaults) == len(names), f"a default per variable: {line}"
        rows.update(zip(names, defaults, strict=True))
    return rows


def env_names() -> set[str]:
    return {PREFIX + f.name.upper() for f in fields(Settings)}


def default_matches(cell: str, value: object) -> bool:
    if isinstance(value, Secret):
        value = value.reveal()
    if isinstance(value, bool):
        value = "1" if value else "0"
    if value == "":
        return cell.startswith("(")
    match = re.fullmatch(r"`([^`]*)`", cell)
    if match is None:
        return False
    if isinstance(value, int | float):
        return float(match.group(1)) == value
    return match.group(1) == value


def wrong_defaults(rows: dict[str, str]) -> dict[str, tuple[str, object]]:
    defaults = Settings()
    out = {}
    for f in fields(Settings):
        name, value = PREFIX + f.name.upper(), getattr(defaults, f.name)
        if name in rows and not default_matches(rows[name], value):
            out[name] = (rows[name], value)
    return out


def test_every_setting_has_a_row():
    assert env_names() - config_rows(README.read_text()).keys() == set()


def test_every_row_is_a_setting():
    assert config_rows(README.read_text()).keys() - env_names() == set()


def test_every_documented_default_is_the_settings_default():
    assert wrong_defaults(config_rows(README.read_text())) == {}


SAMPLE = """
## Configuration

| variable | default | meaning |
|---|---|---|
| `PARLEY_API_HOST` / `PARLEY_API_PORT` | `127.0.0.1` / `8081` | API listen address |
| `PARLEY_CASSANDRA_USERNAME` / `PARLEY_CASSANDRA_PASSWORD` | (none) | password authentication |
| `PARLEY_NODE_ID` | `node1` | node name |

## Tests
"""


def test_the_checks_see_a_missing_row_and_a_wrong_default():
    rows = config_rows(SAMPLE)
    assert rows == {"PARLEY_API_HOST": "`127.0.0.1`", "PARLEY_API_PORT": "`8081`",
                    "PARLEY_CASSANDRA_USERNAME": "(none)", "PARLEY_CASSANDRA_PASSWORD": "(none)",
                    "PARLEY_NODE_ID": "`node1`"}
    assert "PARLEY_SECRET" in env_names() - rows.keys()
    assert wrong_defaults(rows) == {"PARLEY_API_PORT": ("`8081`", 8080), "PARLEY_NODE_ID": ("`node1`", "")}


@pytest.mark.parametrize(("cell", "value", "ok"), [
    ("`20`", 20.0, True),
    ("`20`", 25.0, False),
    ("`0`", False, True),
    ("`1`", False, False),
    ("`sqlite`", "sqlite", True),
    ("sqlite", "sqlite", False),
    ("(none)", Secret(""), True),
    ("`x`", Secret(""), False),
    ("(derived)", "parley.db", False),
])
def test_default_cells(cell, value, ok):
    assert default_matches(cell, value) is ok
