"""A local certificate authority for development and tests: ``parley up --tls``, ``parley tls init DIR`` and
the tests' TLS cluster (``Cluster(..., tls=True)``).

``ensure(dir)`` makes, once, in ``dir``: ``ca.pem`` (the CA to trust: ``PARLEY_TLS_CA``, ``--ca``, a
browser's authority list) and its key ``ca-key.pem``, and ``server.pem`` / ``server-key.pem``, one
certificate for 127.0.0.1, ::1 and localhost signed by that CA, good for both ends of a TLS link
(``serverAuth`` and ``clientAuth``: nats-server presents it on its client port and to its route and
gateway peers, which verify it; the edge nodes, the API and discovery serve it). Files that exist are
kept, so the next run trusts the same CA.

Keys are created 0600 in one step (``os.open`` with ``O_EXCL``, then written): never a moment when another
user could read them. A half-written set (a crash in between) is not repaired: delete the folder.
This is a development CA: a production deployment uses certificates from its own PKI (README "Security").
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from parley.errors import ParleyError

HOSTS = ("localhost",)
ADDRESSES = ("127.0.0.1", "::1")
DAYS = 825  # what browsers accept for a server certificate; the CA lives 10 years


@dataclass(frozen=True)
class TlsFiles:
    """The PEM files of one TLS setup: a certificate and its key, and the CA that signed it (and its peers')."""
    cert: str
    key: str
    ca: str


def files_in(dir: Path | str) -> TlsFiles:
    d = Path(dir).resolve()
    return TlsFiles(cert=str(d / "server.pem"), key=str(d / "server-key.pem"), ca=str(d / "ca.pem"))


def write_private(path: Path, data: bytes) -> None:
    """``data`` into a new file readable by its owner only from the start (0600 at creation)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def write_public(path: Path, data: bytes) -> None:
    """A certificate: written to a temporary name, then renamed, so no reader sees half of it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Parley development"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey,
             days: int) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days)))


def make_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("Parley development CA")
    cert = (_builder(name, name, key, 3650)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def make_server(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, hosts: tuple[str, ...] = HOSTS,
                addresses: tuple[str, ...] = ADDRESSES) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(h) for h in hosts]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    cert = (_builder(_name(hosts[0] if hosts else addresses[0]), ca.subject, key, DAYS)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


def ensure(dir: Path | str) -> TlsFiles:
    """The CA and the server certificate in ``dir``, made now unless they exist (the folder is 0700)."""
    d = Path(dir).resolve()
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    files = files_in(d)
    if Path(files.ca).exists() and Path(files.cert).exists():
        return files
    if any(Path(f).exists() for f in (files.key, d / "ca-key.pem")):
        raise ParleyError(f"{d} holds half a CA (a run stopped while making it): delete the folder",
                          code="bad_tls_dir")
    ca, ca_key = make_ca()
    cert, key = make_server(ca, ca_key)
    write_private(d / "ca-key.pem", _key_pem(ca_key))
    write_private(Path(files.key), _key_pem(key))
    write_public(Path(files.cert), cert.public_bytes(serialization.Encoding.PEM))
    write_public(Path(files.ca), ca.public_bytes(serialization.Encoding.PEM))  # last: its presence means done
    return files
