"""docs/protocol.md §12 lists every error code a client can get in an ``error`` frame.

The codes are read from the source with ``ast``: a ``code="…"`` keyword, a ``{"code": "…"}`` literal, or
a ``ParleyError`` subclass raised without ``code`` (its ``default_code``). The node's error frames come
from the node itself, frame parsing, the token check at hello and the NATS reads; the store adds only
``store_unavailable`` there, and is left out because it also raises codes only the HTTP API answers with.
"""

import ast
import re
from pathlib import Path

import pytest

from parley import errors

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = ROOT / "docs" / "protocol.md"
NODE_SOURCES = [*sorted((ROOT / "node").glob("*.py")), *sorted((ROOT / "node" / "live").glob("*.py")),
                 *sorted((ROOT / "parley" / "bus").glob("*.py")),
                *(ROOT / "parley" / name for name in ("protocol.py", "auth.py", "actions.py")),
                ROOT / "parley" / "attachments" / "records.py"]  # a send's attachments (node/attachments.py)
DEFAULT_CODES = {name: cls.default_code for name, cls in vars(errors).items()
                 if isinstance(cls, type) and issubclass(cls, errors.ParleyError)}


def _callee(call: ast.Call) -> str | None:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _text(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def error_codes(source: str) -> set[str]:
    codes = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            given = {k.arg: k.value for k in node.keywords}
            if "code" in given:
                codes.add(_text(given["code"]))  # None when not a literal (a close code): dropped below
            elif _callee(node) in DEFAULT_CODES:
                codes.add(DEFAULT_CODES[_callee(node)])
        elif isinstance(node, ast.Dict):
            codes.update(_text(v) for k, v in zip(node.keys, node.values, strict=True) if _text(k) == "code")
    return codes - {None}


def documented_codes() -> set[str]:
    section = PROTOCOL.read_text().split("\n## 12. ", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", section, re.MULTILINE))


def documented_close_codes() -> set[int]:
    section = PROTOCOL.read_text().split("\n## 13. ", 1)[1].split("\n## ", 1)[0]
    return {int(code) for code in re.findall(r"^\| (\d{4}) \|", section, re.MULTILINE)}


def test_section_13_lists_every_close_code_and_nothing_else():
    """errors.py names every close code a connection can end with, the WebSocket library's included."""
    defined = {value for name, value in vars(errors).items() if name.startswith("CLOSE_")}
    assert {1007, 1009, 4000, 4029} <= defined
    assert documented_close_codes() == defined


def test_every_code_the_node_sends_is_in_section_12():
    raised = set().union(*(error_codes(path.read_text()) for path in NODE_SOURCES))
    assert raised - documented_codes() == set()


def test_every_code_in_section_12_is_raised_somewhere():
    sources = [*NODE_SOURCES, *sorted((ROOT / "parley").rglob("*.py"))]
    raised = set().union(*(error_codes(path.read_text()) for path in sources))
    assert documented_codes() - raised == set()


def test_the_scan_reads_the_node():
    raised = set().union(*(error_codes(path.read_text()) for path in NODE_SOURCES))
    assert {"hello_required", "internal", "bad_cursor", "too_large", "bad_token"} <= raised
    assert len(documented_codes()) >= 15


@pytest.mark.parametrize(("source", "codes"), [
    ('raise PeerError("no", code="hello_required")', {"hello_required"}),
    ('raise RateLimited("slow down", ref=cid)', {"rate_limited"}),
    ('raise errors.Unavailable("down")', {"unavailable"}),
    ('send({"code": "internal", "message": "x"})', {"internal"}),
    ("ws.close(code=CLOSE_PROTOCOL)", set()),
    ('log.info("code", x)', set()),
])
def test_error_codes_in_source(source, codes):
    assert error_codes(source) == codes
