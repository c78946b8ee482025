"""The stateless HTTP API: accounts, sessions, profiles, friends, presence, conversations, history, groups, push.

``app`` wires the process; each concept is a module with ``add_routes`` (``accounts``, ``friends``,
``presence``, ``conversations``, ``groups``, ``push``, ``web``); ``http`` is what they share, ``shapes`` the
JSON of users, messages and conversations, ``announce`` tells the nodes, ``validation`` checks fields.
"""
