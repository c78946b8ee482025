"""What the user typed, as a command: ``parse`` turns one input line into one of the frozen types below.

A line that starts with ``/`` is a command (its name, then arguments split like a shell's, so a quoted
group name may hold spaces); any other non-blank line is ``Say``, text for the open conversation. An
unknown or malformed command is ``Invalid`` with a message saying why. No I/O here: the app runs them.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Say:
    text: str


@dataclass(frozen=True)
class Signup:
    username: str


@dataclass(frozen=True)
class Login:
    username: str


@dataclass(frozen=True)
class Friends:
    pass


@dataclass(frozen=True)
class Add:
    username: str


@dataclass(frozen=True)
class Accept:
    username: str


@dataclass(frozen=True)
class Conversations:
    pass


@dataclass(frozen=True)
class Open:
    target: str  # a friend's username, a group's name (``#name`` or bare), or a number from ``/list``


@dataclass(frozen=True)
class NewGroup:
    name: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class History:
    pass


@dataclass(frozen=True)
class Who:
    pass


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class Quit:
    pass


@dataclass(frozen=True)
class Reply:
    n: int  # the (N) a message was shown with
    text: str


@dataclass(frozen=True)
class Edit:
    n: int
    text: str


@dataclass(frozen=True)
class Delete:
    n: int


@dataclass(frozen=True)
class React:
    n: int
    emoji: str  # a second /react with the same emoji takes it back


@dataclass(frozen=True)
class Invalid:
    message: str


Command = (Say | Signup | Login | Friends | Add | Accept | Conversations | Open | NewGroup | History | Who | Help
           | Quit | Reply | Edit | Delete | React | Invalid)


@dataclass(frozen=True)
class Spec:
    usage: str
    help: str
    build: Callable[[list[str]], Command]


def _one(kind: Callable[[str], Command], what: str) -> Callable[[list[str]], Command]:
    def build(args: list[str]) -> Command:
        return kind(args[0]) if len(args) == 1 else Invalid(f"give one {what}")
    return build


def _none(kind: Callable[[], Command]) -> Callable[[list[str]], Command]:
    def build(args: list[str]) -> Command:
        return kind() if not args else Invalid("takes no arguments")
    return build


def _group(args: list[str]) -> Command:
    if len(args) < 3 or args[0] != "new":
        return Invalid("usage: /group new NAME friend1,friend2")
    members = tuple(m for part in args[2:] for m in part.split(",") if m)
    return NewGroup(args[1], members) if members else Invalid("name at least one friend")


def _numbered(kind: Callable[[int, str], Command], what: str) -> Callable[[list[str]], Command]:
    """``N rest``: the message number, then ``what`` (the rest of the line as typed, for a text)."""
    def build(args: list[str]) -> Command:
        if len(args) != 2 or not args[0].isdigit() or not args[1].strip():
            return Invalid(f"give a message number and {what}")
        return kind(int(args[0]), args[1].strip())
    return build


def _delete(args: list[str]) -> Command:
    return Delete(int(args[0])) if len(args) == 1 and args[0].isdigit() else Invalid("give a message number")


COMMANDS: dict[str, Spec] = {
    "signup": Spec("/signup NAME", "create an account (asks for a password) and log in", _one(Signup, "username")),
    "login": Spec("/login NAME", "log in (asks for a password)", _one(Login, "username")),
    "friends": Spec("/friends", "your friends (online or last seen) and friend requests", _none(Friends)),
    "add": Spec("/add NAME", "send a friend request", _one(Add, "username")),
    "accept": Spec("/accept NAME", "accept a friend request", _one(Accept, "username")),
    "list": Spec("/list", "your conversations, newest first, with unread counts", _none(Conversations)),
    "open": Spec("/open NAME|#GROUP|N", "open a DM with a friend, a group, or number N of /list",
                 _one(Open, "friend, group or number")),
    "group": Spec("/group new NAME a,b", "make a group with friends a and b, and open it", _group),
    "history": Spec("/history", "older messages of the open conversation (one page per call)", _none(History)),
    "reply": Spec("/reply N TEXT", "reply to message (N) (the number shown before its sender)",
                  _numbered(Reply, "a text")),
    "edit": Spec("/edit N TEXT", "change your message (N) (within 15 min)", _numbered(Edit, "the new text")),
    "delete": Spec("/delete N", "delete message (N) for everyone (yours; any, for a group's owner or admins)",
                   _delete),
    "react": Spec("/react N EMOJI", "react to message (N); the same again takes it back", _numbered(React, "an emoji")),
    "who": Spec("/who", "who is online (your friends, or the open group's members)", _none(Who)),
    "help": Spec("/help", "this list", _none(Help)),
    "quit": Spec("/quit", "leave (Ctrl-D too)", _none(Quit)),
}
RAW = ("reply", "edit", "react")  # their last argument is the rest of the line, not shell words
ALIASES = {"convs": "list", "exit": "quit", "?": "help", "h": "help", "q": "quit"}


def parse(line: str) -> Command | None:
    """The command on ``line``; None for a blank line."""
    text = line.strip()
    if not text:
        return None
    if not text.startswith("/") or text.startswith("//"):
        return Say(text[1:] if text.startswith("//") else text)  # "//x" sends "/x"
    head, _, rest = text[1:].partition(" ")
    if head.lower() in RAW:  # /reply N text, /edit N text: the text as typed (quotes and all)
        number, _, typed = rest.strip().partition(" ")
        words = [head, *([number] if number else []), *([typed] if typed.strip() else [])]
        raw = COMMANDS[head.lower()]
        built = raw.build(words[1:])
        return Invalid(f"{built.message}: {raw.usage}") if isinstance(built, Invalid) else built
    try:
        words = shlex.split(text[1:])
    except ValueError as err:
        return Invalid(f"{err}")
    if not words:
        return Invalid("a command name after /, e.g. /help")
    name = ALIASES.get(words[0].lower(), words[0].lower())
    spec = COMMANDS.get(name)
    if spec is None:
        return Invalid(f"unknown command /{words[0]} (/help lists them)")
    out = spec.build(words[1:])
    return Invalid(f"{out.message}: {spec.usage}") if isinstance(out, Invalid) else out


def help_lines() -> list[str]:
    width = max(len(s.usage) for s in COMMANDS.values())
    return ([f"  {s.usage.ljust(width)}  {s.help}" for s in COMMANDS.values()]
            + ["  text without a leading /  is sent to the open conversation (//text sends /text)"])
