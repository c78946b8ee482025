"""Run mypy on the source tree as the ``parley.…`` packages it installs as.

The folders a role is known by (node/, api/, …) sit at the top of the tree and install as
``parley.node``, ``parley.api``, … (pyproject's package-dir). mypy names a module after its path, so it
would call node/hub.py ``node.hub``. This builds ``build/typecheck/parley/``, a tree of symlinks laid
out as the installed package, runs mypy there on the files pyproject's ``[tool.mypy] files`` names,
and prints mypy's findings with the source paths.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TREE = ROOT / "build" / "typecheck"


def package_dirs(config: dict) -> dict[str, Path]:  # type: ignore[type-arg]
    """Top-level folder → where it sits in the package tree (``node`` → ``parley/node``)."""
    mapping = config["tool"]["setuptools"].get("package-dir", {})
    out = {"parley": Path("parley")}
    for package, folder in mapping.items():
        if folder != "." and (ROOT / folder).is_dir() and any((ROOT / folder).rglob("*.py")):
            out[folder] = Path(*package.split("."))
    return out


def build_tree(dirs: dict[str, Path]) -> None:
    pkg = TREE / "parley"
    if TREE.exists():
        subprocess.run(["rm", "-rf", str(TREE)], check=True)
    pkg.mkdir(parents=True)
    for entry in (ROOT / "parley").iterdir():
        if entry.name != "__pycache__":
            (pkg / entry.name).symlink_to(entry)
    for folder, where in dirs.items():
        if folder != "parley":
            (TREE / where).symlink_to(ROOT / folder)


def to_tree(path: str, dirs: dict[str, Path]) -> list[str]:
    """Where a source path sits in the tree; the ``parley`` folder means its own files only (the tree's
    ``parley/`` also holds the other folders)."""
    top, _, rest = path.partition("/")
    if top == "parley" and not rest:
        return [str(TREE / "parley" / e.name) for e in (ROOT / "parley").iterdir()
                if e.name != "__pycache__" and (e.is_dir() or e.suffix == ".py")]
    return [str(TREE / dirs[top] / rest)] if top in dirs else [path]


def main() -> int:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    dirs = package_dirs(config)
    build_tree(dirs)
    files = [tree for f in config["tool"]["mypy"]["files"] for tree in to_tree(f, dirs)]
    proc = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), *files],
                          cwd=TREE, capture_output=True, text=True)
    back = {f"{where}/": f"{folder}/" for folder, where in dirs.items() if folder != "parley"}
    for line in (proc.stdout + proc.stderr).splitlines():
        for tree_prefix, source_prefix in back.items():
            if line.startswith(tree_prefix):
                line = source_prefix + line[len(tree_prefix):]
                break
        print(line)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
