"""One exception tree for every Parley process.

    ParleyError                      code, http_status, ws_close_code, peer_fault, retryable
    ├── PeerError                    the client did something wrong (4xx / error frame / close 4000)
    │   ├── BadRequest               malformed input: bad_json, unknown_type, bad_field, too_large
    │   ├── Unauthorized             bad_token (4001), token_expired (4002), session_revoked (4003),
    │   │                            session_expired (4003), …
    │   ├── Forbidden                not_member, not_friends, blocked, wrong_password, not_operator; live rooms:
    │   │                            room_closed, not_moderator, not_owner (and the screens' codes)
    │   ├── NotFound                 unknown_user, unknown_conversation, not_found; unknown_room, unknown_message
    │   ├── Conflict                 username_taken, conflict
    │   └── RateLimited              rate_limited
    └── ServerError                  we failed (5xx / error frame / close 1011)
        └── Unavailable              store_unavailable, bus_unavailable, no_node (retryable; close 1013)

A live room's screens refuse a message with a ``Verdict`` (``parley.live.screening``) whose code is one of
flooding, duplicate, links, slow_mode, timed_out, banned (flood rules, ``parley.live.flood_screen``) —
documented in docs/protocol.md §12 like every error frame's code.

Every error carries a stable ``code`` string; clients branch on it, never on the message. Errors are
turned into error frames (node) or JSON responses (HTTP) in exactly one place per process.
"""

from __future__ import annotations

from typing import Any, ClassVar

# WebSocket close codes (documented in docs/protocol.md). 1xxx are RFC 6455, 4xxx are ours.
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001  # node stopping or draining: reconnect through discovery
CLOSE_BAD_TEXT = 1007  # a text frame that is not UTF-8 (closed by aiohttp's reader, no error frame)
CLOSE_TOO_BIG = 1009  # a frame larger than the node's max frame size (closed by aiohttp's reader)
CLOSE_INTERNAL = 1011
CLOSE_TRY_AGAIN = 1013  # a dependency (store, bus) is unavailable right now: reconnect after a pause
CLOSE_PROTOCOL = 4000  # hello missing, late, repeated, or of an unsupported version
CLOSE_UNAUTHORIZED = 4001  # token missing, malformed or badly signed
CLOSE_TOKEN_EXPIRED = 4002
CLOSE_REVOKED = 4003  # the session was logged out or passed its lifetime: log in again
CLOSE_IDLE = 4008  # nothing received within the idle timeout (heartbeats stopped)
CLOSE_SLOW = 4009  # the device read too slowly and fell too far behind; reconnect and sync
CLOSE_DRAINING = 4010  # the node is draining: a ``moved`` frame named the node to reconnect to
CLOSE_ABUSE = 4029  # far past the rate limit, or too many bad frames in a row


class ParleyError(Exception):
    http_status: ClassVar[int] = 500
    close_code: ClassVar[int] = CLOSE_INTERNAL  # when the error ends a WebSocket connection
    close_codes: ClassVar[dict[str, int]] = {}  # per error code, where it differs from the class's
    default_code: ClassVar[str] = "internal"
    peer_fault: ClassVar[bool] = False
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details

    @property
    def ws_close_code(self) -> int:
        """The close code when this error ends a WebSocket connection (docs/protocol.md §13)."""
        return self.close_codes.get(self.code, self.close_code)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.retryable:
            out["retryable"] = True
        out.update(self.details)
        return out


class PeerError(ParleyError):
    http_status = 400
    close_code = CLOSE_PROTOCOL
    default_code = "bad_request"
    peer_fault = True


class BadRequest(PeerError):
    http_status = 400
    default_code = "bad_field"


class Unauthorized(PeerError):
    http_status = 401
    close_code = CLOSE_UNAUTHORIZED
    close_codes = {"token_expired": CLOSE_TOKEN_EXPIRED, "session_revoked": CLOSE_REVOKED,
                   "session_expired": CLOSE_REVOKED}
    default_code = "bad_token"


class Forbidden(PeerError):
    http_status = 403
    default_code = "forbidden"


class NotFound(PeerError):
    http_status = 404
    default_code = "not_found"


class Conflict(PeerError):
    http_status = 409
    default_code = "conflict"


class RateLimited(PeerError):
    http_status = 429
    default_code = "rate_limited"
    retryable = True


class ServerError(ParleyError):
    http_status = 500
    default_code = "internal"


class Unavailable(ServerError):
    http_status = 503
    close_code = CLOSE_TRY_AGAIN
    default_code = "unavailable"
    retryable = True



