"""The development CA: made once, keys private from the start, a certificate that both ends of a link accept."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from parley.tools import localca

from parley.errors import ParleyError


def test_it_makes_a_ca_and_a_server_certificate_with_private_keys(tmp_path: Path):
    old = os.umask(0)  # the modes come from the creating calls themselves, whatever the umask
    try:
        files = localca.ensure(tmp_path / "tls")
    finally:
        os.umask(old)
    for key in (files.key, str(tmp_path / "tls" / "ca-key.pem")):
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "tls").st_mode) == 0o700
    ca = x509.load_pem_x509_certificate(Path(files.ca).read_bytes())
    cert = x509.load_pem_x509_certificate(Path(files.cert).read_bytes())
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} <= set(usages)


def test_a_second_run_keeps_the_ca_clients_already_trust(tmp_path: Path):
    first = localca.ensure(tmp_path)
    before = Path(first.ca).read_bytes(), Path(first.key).read_bytes()
    again = localca.ensure(tmp_path)
    assert again == first and (Path(again.ca).read_bytes(), Path(again.key).read_bytes()) == before


def test_a_private_file_is_never_overwritten(tmp_path: Path):
    localca.write_private(tmp_path / "k", b"one")
    with pytest.raises(FileExistsError):
        localca.write_private(tmp_path / "k", b"two")


async def test_a_client_trusting_the_ca_completes_a_handshake_and_one_that_does_not_is_refused(tmp_path: Path):
    files = localca.ensure(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(files.cert, files.key)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hi")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=ssl.create_default_context(cafile=files.ca))
        assert await reader.read() == b"hi"
        writer.close()
        other = localca.ensure(tmp_path / "other")  # a CA of its own: not the one that signed the server
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection("127.0.0.1", port, ssl=ssl.create_default_context(cafile=other.ca))
    finally:
        server.close()
        await server.wait_closed()


def test_half_a_ca_is_named_not_overwritten(tmp_path: Path):
    localca.write_private(tmp_path / "ca-key.pem", b"a key whose certificate was never written")
    with pytest.raises(ParleyError, match="half a CA"):
        localca.ensure(tmp_path)
