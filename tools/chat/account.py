"""Who the terminal is logged in as: the login's token and device, and HTTP calls made with them.

The password stays in memory for the life of the process so that a closed session (4001/4002/4003, an
expired token) can log in again with the same ``device_id``, which keeps the device and its cursor
(docs/protocol.md §15). It is never printed (``repr`` hides it).
"""

from __future__ import annotations

from typing import Any

from parley.tools.client import Api

DEVICE_NAME = "parley chat"


class Account:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.username = ""
        self._password = ""
        self.token = ""
        self.device_id = ""
        self.user: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"Account({self.username!r}, device={self.device_id!r}, password=***)"

    async def signup(self, username: str, password: str) -> dict[str, Any]:
        return await self.api.signup(username, password)

    async def login(self, username: str, password: str) -> dict[str, Any]:
        """Log in; the same user again keeps this device (and so its cursor), another starts a new one."""
        same = username.strip().lower() == self.username and self.device_id
        extra = {"device_id": self.device_id} if same else {}
        out = await self.api.login(username, password, device_name=DEVICE_NAME, **extra)
        self.username, self._password = out["user"]["username"], password
        self.token, self.device_id, self.user = out["token"], out["device_id"], out["user"]
        return out

    async def relogin(self) -> dict[str, Any]:
        return await self.login(self.username, self._password)

    async def call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        return await self.api.call(method, path, self.token, body, params)
