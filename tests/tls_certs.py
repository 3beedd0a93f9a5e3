"""Certificates made by the tests with the openssl command: a CA, a server certificate, client certificates.

EC P-256 keys (fast to make). The server certificate names 127.0.0.1 and
localhost; client certificates carry `clientAuth` and the CN the test asks for.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _openssl(*args: str) -> None:
    done = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr}")


@dataclass(frozen=True)
class Pki:
    """A private CA in `folder` that signs server and client certificates."""

    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "ca.pem"

    @classmethod
    def create(cls, folder: Path) -> "Pki":
        folder.mkdir(parents=True, exist_ok=True)
        pki = cls(folder)
        _openssl("req", "-x509", *KEY, "-days", "2", "-subj", "/CN=RosettaMQ test CA",
                 "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                 "-keyout", str(folder / "ca.key"), "-out", str(pki.ca))
        return pki

    def issue(self, name: str, common_name: str, extensions: str) -> tuple[Path, Path]:
        """(certificate, key) for `common_name`, signed by the CA."""
        cert, key, csr, ext = (self.folder / f"{name}.{suffix}" for suffix in ("pem", "key", "csr", "ext"))
        ext.write_text(extensions + "\n", encoding="ascii")
        _openssl("req", *KEY, "-subj", f"/CN={common_name}", "-keyout", str(key), "-out", str(csr))
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.ca), "-CAkey", str(self.folder / "ca.key"),
                 "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert))
        return cert, key

    def server(self) -> tuple[Path, Path]:
        return self.issue("server", "127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                          "extendedKeyUsage=serverAuth")

    def client(self, common_name: str) -> tuple[Path, Path]:
        return self.issue(f"client-{common_name}", common_name, "extendedKeyUsage=clientAuth")
