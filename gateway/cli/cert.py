"""`rosettamq cert DIR`: a test CA and a server certificate for the TLS listeners, in one step.

Writes DIR/ca.pem and ca.key (made once, reused by later runs), server.pem and
server.key for the names of `--host` (default: localhost, 127.0.0.1, ::1 and
this machine's name), and with `--client NAME` a client certificate NAME.pem /
NAME.key whose CN is NAME (for `use_identity_as_username`). Keys are ECDSA
P-256, written with mode 0600. For tests and trials: a production gateway
uses certificates from the organisation's CA or ACME.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import socket
import sys
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Key = ec.EllipticCurvePrivateKey


def add_parser(commands: Any) -> None:
    cert = commands.add_parser("cert", help="make a test CA and a server certificate for the TLS listeners")
    cert.add_argument("dir", help="folder for ca.pem, ca.key, server.pem, server.key (created if missing)")
    cert.add_argument("--host", action="append", metavar="NAME",
                      help="a name or address clients connect to (repeat; default: localhost, 127.0.0.1, ::1, hostname)")
    cert.add_argument("--client", action="append", metavar="NAME", default=[],
                      help="also make a client certificate NAME.pem / NAME.key with CN=NAME (repeat)")
    cert.add_argument("--days", type=int, default=825, help="validity of the new certificates (default 825)")


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "RosettaMQ test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key: Key) -> None:
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _builder(subject: x509.Name, issuer: x509.Name, key: Key, days: int) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days)))


def load_or_make_ca(folder: Path) -> tuple[x509.Certificate, Key, bool]:
    """The CA of `folder` (ca.pem, ca.key), made when missing; the flag says it was made now."""
    cert_path, key_path = folder / "ca.pem", folder / "ca.key"
    if cert_path.exists() and key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_path}: not an ECDSA key made by rosettamq cert")
        return x509.load_pem_x509_certificate(cert_path.read_bytes()), key, False
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("RosettaMQ test CA")
    cert = (_builder(name, name, key, 3650)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    _write_key(key_path, key)
    _write_cert(cert_path, cert)
    return cert, key, True


def issue(ca: x509.Certificate, ca_key: Key, common_name: str, names: list[str], usage: x509.ObjectIdentifier,
          days: int) -> tuple[x509.Certificate, Key]:
    """A leaf certificate signed by `ca`, valid for `names` (DNS names or IP addresses)."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (_builder(_name(common_name), ca.subject, key, days)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def default_hosts() -> list[str]:
    hosts = ["localhost", "127.0.0.1", "::1"]
    hostname = socket.gethostname()
    return hosts + ([hostname] if hostname and hostname not in hosts else [])


def run(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    hosts = args.host or default_hosts()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        ca, ca_key, made = load_or_make_ca(folder)
        cert, key = issue(ca, ca_key, hosts[0], hosts, ExtendedKeyUsageOID.SERVER_AUTH, args.days)
        _write_cert(folder / "server.pem", cert)
        _write_key(folder / "server.key", key)
        for client in args.client:
            cert, key = issue(ca, ca_key, client, [], ExtendedKeyUsageOID.CLIENT_AUTH, args.days)
            _write_cert(folder / f"{client}.pem", cert)
            _write_key(folder / f"{client}.key", key)
    except (OSError, ValueError) as exc:
        print(f"rosettamq cert: {exc}", file=sys.stderr)
        return 1
    print(f"{folder / 'ca.pem'}: {'new test CA' if made else 'the existing CA'} (give it to clients: --cafile)")
    print(f"{folder / 'server.pem'}, {folder / 'server.key'}: server certificate for {', '.join(hosts)}")
    for client in args.client:
        print(f"{folder / f'{client}.pem'}, {folder / f'{client}.key'}: client certificate, CN={client}")
    print(f'In the config: [mqtt_tls] certfile = "{folder / "server.pem"}"  keyfile = "{folder / "server.key"}"'
          + (f'  cafile = "{folder / "ca.pem"}"' if args.client else ""))
    return 0
