"""A test certificate authority for the TLS tests: a CA, a server and a client certificate.

Made with the ``openssl`` command line; the server certificate is for IP 127.0.0.1.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def make_pki(root: Path) -> Path:
    """Write ``ca.pem``, ``server.pem``/``server.key`` and ``client.pem``/``client.key``."""

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=root, check=True, capture_output=True)

    ca = "req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2"
    run(*ca.split(), "-subj", "/CN=mlchecks test CA")
    (root / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    for who in ("server", "client"):
        request = f"req -newkey rsa:2048 -nodes -keyout {who}.key -out {who}.csr"
        run(*request.split(), "-subj", f"/CN={who}")
        sign = f"x509 -req -in {who}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out {who}.pem"
        run(*sign.split(), "-days", "2", "-extfile", "san.cnf")
    return root
