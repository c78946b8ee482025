"""``parley chat``: its options, where the cluster is, and the process around a ``ChatSession``.

The API is ``--api URL``, else the ``api`` URL in ``<run dir>/run.json`` (written by ``parley up``; run
dir ``--run-dir``, default ``.parley``), else http://127.0.0.1:8080 (``parley up``'s default). A script
passes ``--user NAME`` and the password in ``PARLEY_PASSWORD`` or as the first line of stdin; in a
terminal the password is asked for without echo. Over TLS (``https://``) the API and the nodes are checked
against ``--ca``, else ``PARLEY_TLS_CA``, else the CA of ``parley up --tls`` named in run.json, else the
system's CAs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Sequence

import aiohttp
from parley.tools import runfile
from parley.tools.chat.session import ChatSession, password_from_env
from parley.tools.chat.terminal import open_screen
from parley.tools.client import Api, connector

DEFAULT_API = "http://127.0.0.1:8080"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="parley chat", description="A terminal chat client: sign up, add friends, DMs and groups, typing, "
        "presence and receipts; it reconnects by itself and resumes from its cursor. /help inside lists the "
        "commands.")
    p.add_argument("--api", help="the API's URL (default: from <run dir>/run.json, else " + DEFAULT_API + ")")
    p.add_argument("--run-dir", default=".parley", help="where `parley up` runs (default .parley)")
    p.add_argument("--user", help="log in as this user at start (password: PARLEY_PASSWORD, else asked for; "
                                  "without a terminal, the first line of stdin)")
    p.add_argument("--signup", action="store_true", help="with --user: create the account first (if it exists, "
                                                         "just log in)")
    p.add_argument("--plain", action="store_true", help="plain line mode even in a terminal (no status bar)")
    p.add_argument("--ca", help="CA file to check the API and nodes against over TLS (default: PARLEY_TLS_CA, "
                                "else the run dir's `parley up --tls` CA, else the system's)")
    return p


def trusted_ca(given: str | None, run_dir: str, api_given: bool = False) -> str:
    """``--ca``, else ``PARLEY_TLS_CA``, else the CA of the ``parley up --tls`` whose API we talk to."""
    if given or os.environ.get("PARLEY_TLS_CA"):
        return given or os.environ["PARLEY_TLS_CA"]
    info = None if api_given else runfile.read(run_dir)
    return info.tls_ca if info is not None else ""


def api_url(given: str | None, run_dir: str) -> str:
    if given:
        return given.rstrip("/")
    info = runfile.read(run_dir)
    return info.url("api").rstrip("/") if info is not None else DEFAULT_API


async def chat(args: argparse.Namespace) -> int:
    url = api_url(args.api, args.run_dir)
    async with aiohttp.ClientSession(connector=connector(trusted_ca(args.ca, args.run_dir, bool(args.api)))) as http:
        session = ChatSession(http, Api(url, http), password_from_env(os.environ))
        screen = open_screen(args.plain, lambda: session.state.status(session.clock()), session.prompt,
                             session.typed)
        try:
            screen.show([f"* Parley at {url}"])
            return await session.serve(screen, args.user, args.signup)
        finally:
            screen.close()


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    if args.signup and not args.user:
        parser().error("--signup needs --user")
    try:
        return asyncio.run(chat(args))
    except KeyboardInterrupt:
        return 130
