"""TLS settings: a certificate turns on wss/https, it needs its key, and the contexts come from the files."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from parley.tools import localca

from parley.settings import Settings, SettingsError
from parley.tls import client_ssl, server_context


def test_without_a_certificate_everything_is_plain():
    s = Settings(node_port=9000)
    assert not s.tls_on() and s.http_scheme() == "http" and s.ws_url() == "ws://127.0.0.1:9000/ws"
    assert server_context(s) is None and client_ssl(s) is True  # aiohttp's own checks, system CAs


def test_a_certificate_turns_on_wss_and_https_but_a_public_url_still_wins(tmp_path: Path):
    files = localca.ensure(tmp_path)
    s = Settings(node_port=9000, tls_cert=files.cert, tls_key=files.key, tls_ca=files.ca)
    assert s.tls_on() and s.http_scheme() == "https" and s.ws_url() == "wss://127.0.0.1:9000/ws"
    assert s.replace(node_public_url="wss://chat.example.com/ws").ws_url() == "wss://chat.example.com/ws"
    assert isinstance(server_context(s), ssl.SSLContext)
    context = client_ssl(s)
    assert isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


@pytest.mark.parametrize("given", [{"PARLEY_TLS_CERT": "/c.pem"}, {"PARLEY_TLS_KEY": "/k.pem"}])
def test_a_certificate_without_its_key_or_a_key_alone_is_refused(given: dict[str, str]):
    with pytest.raises(SettingsError, match="PARLEY_TLS_CERT and PARLEY_TLS_KEY go together"):
        Settings.from_env(given)


def test_a_missing_certificate_file_fails_at_start_not_at_the_first_client(tmp_path: Path):
    s = Settings(tls_cert=str(tmp_path / "nope.pem"), tls_key=str(tmp_path / "nope-key.pem"))
    with pytest.raises(FileNotFoundError):
        server_context(s)
