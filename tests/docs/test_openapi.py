"""docs/openapi.yaml describes exactly the routes the API serves."""

from pathlib import Path

import yaml
from parley.api.app import make_app

from parley.settings import Settings

SPEC = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"


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
