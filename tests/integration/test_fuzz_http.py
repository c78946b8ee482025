"""The HTTP API fuzzed from its own contract: schemathesis generates requests for every operation in
docs/openapi.yaml (valid and invalid bodies, parameters and headers) and sends them to the session's live
API on 127.0.0.1, with a real session token. Every answer must be a status the operation documents, with
the documented content type and schema, never a 5xx, and every error's ``code`` one of the ``Error``
schema's enum (read from the file here, not copied). Half the cases with path parameters name the fuzz's
own friend, DM, group and device; a quarter of all go to an API of their own at the production limits
(429s held to the contract too). Afterwards the API is still healthy and nothing logged an error or a
traceback.

Bounded and reproducible: ``EXAMPLES`` cases per operation (``PARLEY_FUZZ_HTTP_EXAMPLES``), Hypothesis
derandomized (the same cases every run for a given openapi.yaml), no example database, no shrinking.
The schema is loaded at import and ``base_url`` given per call: schemathesis' ``from_fixture`` reads
pytest's private ``Item._nodeid``, which pytest 9 removed. docs/adr/0017.
"""

from __future__ import annotations

import os
import secrets
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, settings
from schemathesis import checks
from schemathesis.config import SchemathesisConfig

from tests.integration.cluster import Cluster
from tests.integration.logmark import LogMark

pytestmark = pytest.mark.integration

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
EXAMPLES = int(os.environ.get("PARLEY_FUZZ_HTTP_EXAMPLES", "60"))
PASSWORD = "fuzz horse battery"
# routes that end the caller's session (or its password): each case gets a session of its own
SESSION_ENDING = {("POST", "/v1/logout"), ("POST", "/v1/password"), ("POST", "/v1/sessions/revoke-others"),
                  ("DELETE", "/v1/account")}
CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_schema_conformance, checks.response_headers_conformance, checks.negative_data_rejection,
          checks.positive_data_acceptance, checks.missing_required_header, checks.unsupported_method]
# at the production limits a request's budget is taken before anything else: a 429 may come instead of the
# 401 for a missing token or the 405 for an unknown method
STRICT_CHECKS = [c for c in CHECKS if c not in (checks.missing_required_header, checks.unsupported_method)]


def negative(case: Any, location: str) -> bool:
    """Whether schemathesis made this part of the case (``path``, ``header``…) not to fit the schema."""
    meta = getattr(case, "_meta", None)  # no public accessor in schemathesis 4.32
    info = meta.components.get(location) if meta is not None else None
    return info is not None and str(info.mode) == "negative"


def documented_error_codes() -> set[str]:
    spec = yaml.safe_load(OPENAPI.read_text())
    return set(spec["components"]["schemas"]["Error"]["properties"]["code"]["enum"])


class Fuzzer:
    """The fuzz's own accounts (no other test's account is ever locked out or logged out by it), the things
    they own, so that half the cases name real ones (a friend, their DM, a group, a device, a live room) rather than
    ids nobody has, and what the run saw: answers by status and by error code."""

    def __init__(self, cluster: Cluster) -> None:
        self.base = cluster.api_url
        self.http = requests.Session()
        self.username, self.ender, friend = self.signup(), self.signup(), self.signup()
        me, self.token = self.login(self.username)
        them, their_token = self.login(friend)
        self.post("/v1/friends", {"user_id": them["user"]["id"]}, self.token)
        self.post("/v1/friends", {"user_id": me["user"]["id"]}, their_token)
        dm = self.post("/v1/conversations", {"user_id": them["user"]["id"]}, self.token).json()
        group = self.post("/v1/groups", {"name": "fuzz", "members": [them["user"]["id"]]}, self.token).json()
        room = self.post("/v1/live", {"title": "fuzz"}, self.token).json()
        attachment = self.http.post(f"{self.base}/v1/conversations/{dm['conversation']['id']}/attachments",
                                    data=b"fuzz", headers={"Authorization": f"Bearer {self.token}"}, timeout=30)
        attachment.raise_for_status()
        self.real = {"user_id": them["user"]["id"], "device_id": me["device_id"], "room": room["id"],
                     "conv": (dm["conversation"]["id"], group["conversation"]["id"]),
                     "attachment": attachment.json()["attachment"]["id"]}
        self.statuses: Counter[int] = Counter()
        self.codes: Counter[str] = Counter()
        self.cases = 0
        self.strict = ""  # an API at the production limits: a quarter of the cases go there (429s)

    def base_for(self, case: Any, api: str) -> str:
        """A quarter of the cases (by a hash of the case) go to the strict API."""
        return self.strict if self.strict and zlib.crc32(repr(case).encode()) % 4 == 0 else api

    def post(self, path: str, body: dict[str, Any], token: str | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = self.http.post(self.base + path, json=body, headers=headers, timeout=30)
        answer.raise_for_status()
        return answer

    def name_real_things(self, case: Any) -> None:
        """Every other case (by a hash of its path parameters: derandomized runs stay the same) names the
        fuzz's real friend, device and conversations, so the handlers' deeper paths run too."""
        params = case.path_parameters or {}
        if not params or negative(case, "path") or zlib.crc32(repr(sorted(params.items())).encode()) % 2:
            return  # a case meant to be refused for its path stays as generated
        dm, group = self.real["conv"]
        for name in params:
            if name == "conv":
                params[name] = group if case.path.startswith("/v1/groups") or zlib.crc32(case.path.encode()) % 2 \
                    else dm
            elif name in self.real:
                params[name] = self.real[name]

    def signup(self) -> str:
        name = f"fuzz_{secrets.token_hex(4)}"
        self.post("/v1/signup", {"username": name, "password": PASSWORD})
        return name

    def login(self, username: str) -> tuple[dict[str, Any], str]:
        answer = self.post("/v1/login", {"username": username, "password": PASSWORD}).json()
        return answer, str(answer["token"])

    def token_for(self, method: str, path: str) -> str:
        """The fuzz account's session; a fresh session of a second account for a route that ends sessions
        (revoke-others would end the first account's)."""
        return self.login(self.ender)[1] if (method.upper(), path) in SESSION_ENDING else self.token

    def saw(self, response: Any) -> str | None:
        """Count an answer; its error code (None for a success)."""
        self.cases += 1
        self.statuses[response.status_code] += 1
        if response.status_code < 400:
            return None
        code = str(response.json().get("code"))
        self.codes[code] += 1
        return code


@pytest.fixture(scope="module")
def fuzzer(cluster: Cluster) -> Any:
    mark = LogMark(cluster)
    started = time.monotonic()
    fuzz = Fuzzer(cluster)
    fuzz.strict = cluster.start_extra_api("fuzz-strict-api", limits_scale=1.0)
    try:
        yield fuzz
    finally:
        cluster.stop("fuzz-strict-api")
    print(f"\nHTTP fuzz: {fuzz.cases} cases in {time.monotonic() - started:.1f} s; statuses "
          f"{dict(sorted(fuzz.statuses.items()))}; error codes {dict(fuzz.codes.most_common())}")
    assert requests.get(cluster.api_url + "/readyz", timeout=10).status_code == 200
    assert mark.errors_since() == []


# unknown query parameters are ignored, as HTTP APIs do; not a refusal the contract promises
schema = schemathesis.openapi.from_path(
    OPENAPI, config=SchemathesisConfig.from_dict({"generation": {"allow-extra-parameters": False}}))
DOCUMENTED_CODES = documented_error_codes()


@schema.parametrize()
@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case: Any, fuzzer: Fuzzer, cluster: Cluster) -> None:
    fuzzer.name_real_things(case)
    # the case's stand-in token replaced by a real one; a case that leaves the header out is sent without
    headers = {"Authorization": f"Bearer {fuzzer.token_for(case.method, case.path)}"} \
        if "Authorization" in (case.headers or {}) and not negative(case, "header") else {}
    base = fuzzer.base_for(case, cluster.api_url)
    response = case.call_and_validate(base_url=base, headers=headers,
                                      checks=STRICT_CHECKS if base == fuzzer.strict else CHECKS)
    code = fuzzer.saw(response)
    assert code is None or code in DOCUMENTED_CODES, response.text
