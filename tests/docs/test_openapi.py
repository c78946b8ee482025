"""docs/openapi.yaml describes exactly the routes the API serves, the codes it answers and its bounds."""

import re
from dataclasses import fields
from pathlib import Path

import yaml
from parley.api.app import make_app

from parley.ids import new_group_conversation, new_user_id
from parley.protocol import MAX_ID
from parley.settings import Settings
from tests.docs.test_docs_error_codes import error_codes

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "docs" / "openapi.yaml"
# what an API request can raise: its handlers, the token check, the store, the bus's outage mapping, live rooms
API_SOURCES = [*sorted((ROOT / "api").glob("*.py")), ROOT / "parley" / "auth.py",
               *sorted((ROOT / "parley" / "store").rglob("*.py")), *sorted((ROOT / "parley" / "bus").glob("*.py")),
               *sorted((ROOT / "parley" / "live").glob("*.py"))]
NOT_ANSWERED = {
    "store_locked": "raised while the store connects at start-up, never in a request",
    "bad_setting": "a setting refused at start-up, never in a request",
    "banned_word": "a live send's refusal by the words screen: a WebSocket error frame only (protocol.md §12)",
    **dict.fromkeys(("flooding", "duplicate", "links", "slow_mode", "timed_out", "banned"),
                    "a live send's refusal by the flood screen: a WebSocket error frame only (protocol.md §12)"),
}


def served_routes() -> set[tuple[str, str]]:
    app = make_app(Settings(), store=None, nc=None)  # type: ignore[arg-type]
    out = set()
    for route in app.router.routes():
        if route.method in ("HEAD", "OPTIONS"):
            continue
        out.add((route.method.lower(), route.resource.canonical))
    return out


# served by parley.runtime.serve_health on every process, not by the API's make_app
HEALTH_ROUTES = {"/healthz", "/readyz"}


def test_every_served_route_is_documented_and_nothing_else():
    spec = yaml.safe_load(SPEC.read_text())
    documented = {(method, path) for path, ops in spec["paths"].items() for method in ops
                  if method in ("get", "post", "patch", "put", "delete") and path not in HEALTH_ROUTES}
    assert documented == served_routes()


def test_every_operation_documents_its_errors():
    spec = yaml.safe_load(SPEC.read_text())
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method not in ("get", "post", "patch", "delete") or not path.startswith("/v1/"):
                continue
            codes = set(op["responses"])
            assert any(c.startswith("2") for c in codes), (method, path)
            assert any(c.startswith(("4", "5")) for c in codes), (method, path)


def test_every_error_code_the_api_answers_is_in_the_error_enum():
    spec = yaml.safe_load(SPEC.read_text())
    enum = set(spec["components"]["schemas"]["Error"]["properties"]["code"]["enum"])
    raised = set().union(*(error_codes(path.read_text()) for path in API_SOURCES))
    assert raised - NOT_ANSWERED.keys() - enum == set()
    assert enum - raised == set()
    assert {"too_large", "group_full", "method_not_allowed", "not_found"} <= enum


def test_message_id_bounds_are_the_codes():
    """``before``/``after`` take up to 2^53 - 1, as the server checks (protocol.md §3), not 2^53."""
    spec = yaml.safe_load(SPEC.read_text())
    params = spec["paths"]["/v1/conversations/{conv}/messages"]["get"]["parameters"]
    bounds = {p["name"]: p["schema"]["maximum"] for p in params if p["name"] in ("before", "after")}
    assert bounds == {"before": MAX_ID, "after": MAX_ID}
    assert spec["components"]["schemas"]["MessageId"]["maximum"] == MAX_ID


def test_every_route_with_an_id_in_its_path_documents_400():
    """An id in the path is checked (16 characters of a-z 2-7) and a malformed one is 400 ``bad_field``."""
    spec = yaml.safe_load(SPEC.read_text())
    for path, ops in spec["paths"].items():
        ids = [p for p in [*ops.get("parameters", []), *(p for op in ops.values() if isinstance(op, dict)
                                                          for p in op.get("parameters", []))]
               if p.get("in") == "path" and p.get("schema") == {"$ref": "#/components/schemas/Id"}]
        for method, op in ops.items():
            if ids and method in ("get", "post", "put", "patch", "delete"):
                assert "400" in op["responses"], (method, path)


def test_the_id_paragraphs_and_schema_know_groups():
    """Groups exist (openapi's id paragraph and protocol.md §3 once said only DMs did)."""
    spec = yaml.safe_load(SPEC.read_text())
    pattern = re.compile(spec["components"]["schemas"]["ConversationId"]["pattern"])
    a, b = sorted((new_user_id(), new_user_id()))
    assert pattern.match(f"dm.{a}.{b}") and pattern.match(new_group_conversation())
    assert "`g.<id>`" in spec["info"]["description"]
    ids = (ROOT / "docs" / "protocol.md").read_text().split("\n## 3. ", 1)[1].split("\n## ", 1)[0]
    assert "a group: `g.<id>`" in ids and "Only DMs" not in ids


def test_the_health_paragraph_names_every_process_port():
    """Every process serves the health routes on its own port (the archiver too)."""
    text = yaml.safe_load(SPEC.read_text())["info"]["description"]
    listening = ("api_port", "discovery_port", "node_port", "cassandra_port")  # not workers
    ports = {f"PARLEY_{f.name.upper()}" for f in fields(Settings)
             if f.name.endswith("_port") and f.name not in listening}
    assert ports == {"PARLEY_ARCHIVER_PORT", "PARLEY_PRESENCE_PORT", "PARLEY_PUSHER_PORT"}
    assert all(name in text for name in ports)
    assert "no HTTP" not in text
