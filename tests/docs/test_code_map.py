"""README's "Map of the code" and the paths the docs name follow the tree.

Every path README's map names exists, the map has a row for every top-level folder of the product, and
no doc (README, docs/, ops/'s notes and configs, the results README, pyproject, the Makefile) names a
source path that is not there any more (a module moved or split leaves no stale name behind).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
TOP = ("parley", "node", "api", "discovery", "workers", "tools", "loadtest", "ops", "web", "docs", "tests")
# a repository path: starts with a top folder, not inside a longer name, URL or absolute path
PATH = re.compile(r"(?<![\w./-])((?:" + "|".join(TOP) + r")/[\w./*-]*[\w*/])")
DOC_SUFFIXES = (".md", ".yaml", ".yml", ".toml")


def map_section() -> str:
    text = README.read_text()
    start = text.index("\n## Map of the code\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def exists(path: str) -> bool:
    # `docs/adr/0004` as a link's text names docs/adr/0004-….md
    return any(ROOT.glob(path)) or any(ROOT.glob(path.rstrip("/") + "-*"))


def docs() -> list[Path]:
    found = [README, ROOT / "pyproject.toml", ROOT / "Makefile", ROOT / "loadtest" / "results" / "README.md"]
    for folder in ("docs", "ops"):
        found += sorted(p for p in (ROOT / folder).rglob("*") if p.is_file() and p.suffix in DOC_SUFFIXES)
    return found


def test_every_path_in_the_map_exists() -> None:
    named = PATH.findall(map_section())
    assert len(named) > 40, named  # the map names the modules, not just the folders
    assert [p for p in named if not exists(p)] == []


def test_the_map_has_a_row_for_every_top_level_folder() -> None:
    mapped = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"].values()
    folders = {f"{d}/" for d in mapped if d != "."} | {"parley/", "ops/", "docs/", "tests/"}
    rows = set(re.findall(r"^\| `([\w]+/)` \|", map_section(), re.M))
    assert folders <= rows, folders - rows


def test_no_doc_names_a_path_that_is_gone() -> None:
    stale = [
        f"{doc.relative_to(ROOT)}: {p}" for doc in docs() for p in PATH.findall(doc.read_text()) if not exists(p)
    ]
    assert stale == []
