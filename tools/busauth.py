"""The bus's credentials in a run dir: one user and password per role, made once, readable by us alone.

``ensure(run_dir)`` gives the run dir's ``BusAuth``, creating what is missing: ``<run dir>/nats-auth/``
(mode 0700) holds ``<role>.json`` (``{"user", "password"}``, mode 0600) for every role of
``parley.bus.permissions`` plus ``route.json`` and ``gateway.json``, the servers' own credentials for
cluster routes and gateways. A password is 32 random bytes (URL-safe base64). A file is created in one
step with its final mode and content (a private temp file linked into place), so it is never readable
by others nor half written, and an existing one is never replaced: every later ``parley up`` (and the
processes it restarts) uses the same passwords. nats-server configs that carry them are written the
same way (``write_private``, replaced on each start).

``parley up`` and ``parley.tools.cluster`` start nats-server with ``authorization`` (the table's users),
give each process its role's user through ``PARLEY_NATS_USER``/``PARLEY_NATS_PASSWORD`` and name
``ops.json`` in run.json, where ``parley status``, ``parley node drain`` and ``parley bus`` find it.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parley.bus import permissions
from parley.errors import ParleyError
from parley.settings import Secret

DIR = "nats-auth"
LINKS = ("route", "gateway")  # the servers' credentials for each other: cluster routes, gateways
OPS = "ops"
ADMIN = "system"


def write_private(path: Path, text: str, *, replace: bool = True) -> bool:
    """``text`` into ``path``, mode 0600 from the first byte (mkstemp), atomically. ``replace=False``: keep
    a file already there (False then)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
    finally:
        Path(tmp).unlink(missing_ok=True)


def read_credentials(path: Path | str) -> tuple[str, str]:
    """A credentials file's user and password."""
    try:
        raw = json.loads(Path(path).read_text())
        return str(raw["user"]), str(raw["password"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ParleyError(f"NATS credentials {path} are not readable: {err}", code="bad_credentials") from None


def credentials_settings(path: Path | str) -> dict[str, Any]:
    """The ``Settings`` fields that make a process connect with a credentials file's user."""
    user, password = read_credentials(path)
    return {"nats_user": user, "nats_password": Secret(password)}


@dataclass(frozen=True)
class BusAuth:
    dir: Path
    passwords: dict[str, str]  # every role's, and the route and gateway ones

    def file(self, role: str) -> Path:
        return self.dir / f"{role}.json"

    def settings_for(self, role: str) -> dict[str, Any]:
        """``Settings`` fields for a process of ``role`` (``system``: everything, for tests and tools)."""
        return {"nats_user": role, "nats_password": Secret(self.passwords[role])}

    def connect_options(self, role: str = ADMIN) -> dict[str, str]:
        """nats-py ``connect`` keyword arguments for ``role``'s user (and its inbox prefix, as processes have)."""
        return {"user": role, "password": self.passwords[role], "inbox_prefix": permissions.inbox_prefix(role)}

    def authorization(self) -> str:
        """The client ``authorization`` block every server of the cluster gets."""
        return permissions.authorization_block(self.passwords)

    def link(self, kind: str) -> tuple[str, str]:
        """The user and password servers use for ``kind`` (``route``, ``gateway``) links."""
        return kind, self.passwords[kind]


def ensure(run_dir: Path | str) -> BusAuth:
    """The run dir's credentials, the missing ones created (see the module's docstring)."""
    folder = Path(run_dir) / DIR
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    passwords = {}
    for name in (*permissions.ROLES, *LINKS):
        path = folder / f"{name}.json"
        text = json.dumps({"user": name, "password": secrets.token_urlsafe(32)}) + "\n"
        if not path.exists():
            write_private(path, text, replace=False)  # a concurrent ensure may win: we read what it wrote
        user, passwords[name] = read_credentials(path)
        if user != name:
            raise ParleyError(f"{path} names user {user!r}, not {name!r}", code="bad_credentials")
    return BusAuth(folder, passwords)
