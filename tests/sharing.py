"""What the tests of information sharing (issue 18 part 2) share: a child on a plan whose context names a GP
practice (completed from the recipient directory) and a social worker; the accounts of the tasks' owners; a
certificate authority and a loopback server certificate made here; a real STARTTLS SMTP server and an HTTPS FHIR
receiver checking the webhook signature."""

from __future__ import annotations

import http.server
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.factories import event, raw
from wnb.core.contacts import Recipient
from wnb.core.items import RawItem
from wnb.notify.email import SmtpSettings
from wnb.notify.webhook import sign
from wnb.service import Service
from wnb.store import recipients
from wnb.store.accounts import create_user
from wnb.store.db import writing

CHILD = "9990000018"  # seven years old, on a child-protection plan: WNB-01 asks inform-gp and notify-social-worker
CLERK, NURSE, DOCTOR = "clerk.one", "nurse.one", "doctor.one"  # booking-team, safeguarding-nurse, clinician
PASSWORD = "a long passphrase here"
RIVERSIDE = Recipient(
    ods_code="Y00001",
    name="Riverside Surgery",
    email="riverside.surgery@nhs.net",
    endpoint="https://127.0.0.1:9/fhir/Communication",
)
CONTEXT = {
    "nhs_number": CHILD,
    "date_of_birth": "2019-05-01",
    "statuses": [{"kind": "child-protection-plan", "start": "2025-06-01"}],
    "structured_contacts": [
        {"role": "gp-practice", "ods_code": "Y00001"},
        {"role": "social-worker", "person": "A. Duty", "organisation": "Northshire Children's Services"},
    ],
}
SECRET = "test-webhook-secret"


def load(service: Service, endpoint: str | None = None) -> None:
    """The accounts, the directory (the GP's endpoint `endpoint` when given), the child's context and the missed
    appointment that asks for the tasks."""
    for name, role in ((CLERK, "booking-team"), (NURSE, "safeguarding-nurse"), (DOCTOR, "clinician")):
        create_user(service.db, name, role, PASSWORD)
    entry = RIVERSIDE if endpoint is None else RIVERSIDE.model_copy(update={"endpoint": endpoint})
    with writing(service.db) as connection:
        recipients.save_recipients(connection, [entry], datetime(2026, 3, 1, tzinfo=UTC), "test")
    service.import_context([RawItem(1, json.dumps(CONTEXT), CONTEXT)], "context")
    service.ingest_one(raw(event("e1"), line=None), origin="feed")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Certificates:
    ca_file: Path  # what a client trusts (WNB_SHARING_CA_FILE)
    cert_file: Path  # the server's chain
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def certificates(folder: Path) -> Certificates:
    """A test CA and a certificate for 127.0.0.1 and localhost signed by it."""
    now = datetime.now(UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wnb test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    found = Certificates(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    found.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    found.cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    found.key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return found


@dataclass
class Mailbox:
    """What a loopback SMTP server received, and whether each session was secured by STARTTLS."""

    messages: list[Any] = field(default_factory=list)
    secured: list[bool] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        self.messages.append(envelope)
        self.secured.append(session.ssl is not None)
        return "250 OK"


@contextmanager
def smtp_server(tls: Certificates | None) -> Iterator[tuple[Mailbox, SmtpSettings]]:
    """A real SMTP server on loopback: offering (and requiring) STARTTLS with `tls`, in clear without."""
    box, port = Mailbox(), free_port()
    options: dict[str, Any] = {"tls_context": tls.server_context(), "require_starttls": True} if tls else {}
    controller = Controller(box, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield box, SmtpSettings("127.0.0.1", port, "safeguarding@trust.example", timeout=5)
    finally:
        controller.stop()


@dataclass
class Receiver:
    """What a loopback FHIR endpoint received: each body with whether its signature was valid."""

    url: str
    posts: list[tuple[dict[str, Any], bool, str]] = field(default_factory=list)


@contextmanager
def fhir_receiver(tls: Certificates, status: int = 201) -> Iterator[Receiver]:
    """An HTTPS endpoint on loopback that checks `X-WNB-Signature` and answers `status`."""
    port = free_port()
    receiver = Receiver(f"https://127.0.0.1:{port}/fhir/Communication")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            valid = self.headers.get("X-Wnb-Signature") == sign(SECRET, body)
            receiver.posts.append((json.loads(body), valid, self.headers.get("X-Wnb-Delivery", "")))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.socket = tls.server_context().wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
