"""The stateless HTTP API: accounts, sessions, profiles, friends, conversations, history."""
