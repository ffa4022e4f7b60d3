"""A webhook receiver for tests: a real HTTPS server on loopback with a certificate made at start-up.

``WebhookReceiver().start()`` makes a throwaway certificate authority and a server certificate for ``localhost``,
``127.0.0.1`` and the names given (``webhook.test`` by default, which no real DNS answers: a test maps it to
127.0.0.1 through the destination's resolver hook), with the ``cryptography`` package (in the relay's layer). The
CA's PEM file is ``ca_file``: point the relay's trust store at it with ``SSL_CERT_FILE`` (OpenSSL's own variable,
which ``ssl.create_default_context`` reads); verification stays on.

It records every request (method, path, headers, body) and every TCP connection it accepted, and answers from a
script: ``answer(429, {"Retry-After": "1"})`` queues an answer; with none queued it answers 200. An answer with
``trickle=`` seconds sends its header lines a byte at a time, one byte every ``trickle`` seconds, for a minute: a
receiver that keeps each socket read short and the whole answer endless. ``cut=True`` sends the status line and
half a header, then closes the connection.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Received:
    """One request as the receiver read it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """An HTTPS (or, with ``tls=False``, plain HTTP) server on 127.0.0.1 that records and answers from a script."""

    names: tuple[str, ...] = ("webhook.test",)
    tls: bool = True
    requests: list[Received] = field(default_factory=list)
    connections: int = 0
    ca_file: str = ""
    port: int = 0
    _script: deque[tuple[int, dict[str, str], float | None, bool]] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: Any = None
    _dir: Any = None

    def answer(
        self, status: int, headers: dict[str, str] | None = None, *, trickle: float | None = None, cut: bool = False
    ) -> WebhookReceiver:
        """Queue the answer to the next request (first queued, first used)."""
        with self._lock:
            self._script.append((status, headers or {}, trickle, cut))
        return self

    def url(self, host: str = "127.0.0.1", path: str = "/hook") -> str:
        """The base URL of the receiver under ``host`` (a name the test resolves, or the loopback address)."""
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{path}"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.requests.append(Received("POST", self.path, dict(self.headers.items()), body))
                    scripted = receiver._script.popleft() if receiver._script else (200, {}, None, False)
                status, headers, trickle, cut = scripted
                if cut:
                    self.close_connection = True
                    self.wfile.write(f"HTTP/1.1 {status} OK\r\nContent-Le".encode())
                    return
                if trickle is not None:
                    self._trickle(status, trickle)
                    return
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()

            def _trickle(self, status: int, interval: float) -> None:
                self.close_connection = True
                try:
                    self.wfile.write(f"HTTP/1.1 {status} OK\r\nX-Slow: ".encode())
                    for _ in range(int(60 / interval)):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(interval)
                except OSError:  # the client gave up and cut the connection
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> Any:
                sock, address = super().get_request()
                with receiver._lock:
                    receiver.connections += 1
                return sock, address

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        if self.tls:
            self._dir = tempfile.TemporaryDirectory(prefix="webhook-ca-")
            cert, key, self.ca_file = _certificates(Path(self._dir.name), ("localhost", *self.names))
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._dir is not None:
            self._dir.cleanup()


def _certificates(folder: Path, names: tuple[str, ...]) -> tuple[str, str, str]:
    """(server certificate, its key, the CA certificate) as PEM files in ``folder``: a CA and a leaf it signed for
    ``names`` and 127.0.0.1, valid for a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aitask-relay test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alternative = [x509.DNSName(name) for name in names] + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alternative), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    paths = folder / "server.pem", folder / "server.key", folder / "ca.pem"
    paths[0].write_bytes(leaf.public_bytes(pem))
    paths[1].write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    paths[2].write_bytes(ca.public_bytes(pem))
    return str(paths[0]), str(paths[1]), str(paths[2])
