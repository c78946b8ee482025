"""``parley chat``, a terminal client on the reference client (``parley.tools.client``).

A pure core: ``commands`` (a typed line → a command), ``state`` (server frames → lines to print and frames
to send; conversations, unread counts, typing, receipts), ``render`` (text) and ``reconnect`` (what to do
after a close). Thin adapters: ``account`` (the login, HTTP), ``link`` (the WebSocket kept up across drops
and drains, resuming from the device cursor), ``terminal`` (prompt_toolkit in a terminal, plain lines
over pipes), ``session`` (commands and frames wired together) and ``app`` (options, finding the cluster).
"""
