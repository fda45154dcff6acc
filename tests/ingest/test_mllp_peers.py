"""MLLP without credentials: each source (MSH-4) only from its peers (WNB_MLLP_PEERS), idle connections
closed, connections capped; refusals are ACKed AR and kept, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TEST_AUDIT_KEY
from tests.factories import running_listener
from tests.ingest.test_hl7 import ROOT, siu
from tests.ingest.test_mllp import err, frame, msa, read_acks, rejects, stored_events
from wnb.ingest.mllp import Listener
from wnb.ingest.mllp_peers import Peers, startup_warning
from wnb.service import Service
from wnb.settings import Settings

STORES = ("sqlite", "postgres")
SOURCE = "RXX-PAS"  # MSH-4 of the test messages
STRONG = "s" * 40


def connect(listener: Listener, source_address: str = "127.0.0.1") -> socket.socket:
    """A connection from `source_address` (any 127.x.y.z is this machine on Linux)."""
    return socket.create_connection(("127.0.0.1", listener.port), timeout=20, source_address=(source_address, 0))


def peers(text: str, production: bool = False) -> Peers:
    mode = {"mode": "production", "session_secret": STRONG, "webhook_secret": STRONG} if production else {}
    return Peers.from_settings(Settings(mllp_peers=text, **mode))


def send_one(service: Service, policy: Peers, source_address: str = "127.0.0.1") -> str:
    """The ACK to one message sent from `source_address` to a listener with `policy`."""
    with running_listener(service, peers=policy) as listener, connect(listener, source_address) as connection:
        connection.sendall(frame(siu()))
        (ack,) = read_acks(connection, 1)
    return ack


def is_closed_by_listener(connection: socket.socket, within: float) -> bool:
    connection.settimeout(within)
    try:
        return connection.recv(1024) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_a_source_is_accepted_from_one_of_its_addresses(service: Service) -> None:
    ack = send_one(service, peers(f"{SOURCE}=10.0.0.5,127.0.0.2"), "127.0.0.2")
    assert msa(ack) == ("AA", "MSG1")
    assert stored_events(service) == 1


def test_a_source_from_another_address_gets_ar_naming_why_and_is_kept(service: Service) -> None:
    ack = send_one(service, peers(f"{SOURCE}=127.0.0.2"), "127.0.0.1")
    assert msa(ack) == ("AR", "MSG1")
    assert "may not send from 127.0.0.1" in ack.split("\r")[1]  # MSA-3, the reason
    assert "103^Table value not found^HL70357" in err(ack) and "MSH-4" in err(ack)
    assert stored_events(service) == 0
    (kept,) = rejects(service)
    assert kept["field"] == "MSH-4" and kept["source"] == SOURCE and kept["event_id"] == "MSG1"
    assert "WNB_MLLP_PEERS" in str(kept["reason"])


def test_in_development_a_source_not_configured_is_accepted_from_loopback(service: Service) -> None:
    ack = send_one(service, peers("lab=10.1.1.1"))
    assert msa(ack) == ("AA", "MSG1")


def test_in_production_a_source_not_configured_is_refused_even_from_loopback(service: Service) -> None:
    ack = send_one(service, peers("lab=10.1.1.1", production=True))
    assert msa(ack) == ("AR", "MSG1")
    assert "in production nothing is accepted from it" in ack
    assert rejects(service)[0]["field"] == "MSH-4"


def test_a_connection_silent_for_the_idle_time_is_closed(service: Service) -> None:
    with running_listener(service, idle_seconds=0.3) as listener, connect(listener) as connection:
        connection.sendall(frame(siu()))
        assert msa(read_acks(connection, 1)[0]) == ("AA", "MSG1")
        started = time.monotonic()
        assert is_closed_by_listener(connection, within=5)
        assert time.monotonic() - started >= 0.2


def test_a_connection_over_the_cap_is_closed_at_once_and_the_others_go_on(service: Service) -> None:
    with running_listener(service, max_connections=2) as listener:
        first, second = connect(listener), connect(listener)
        try:
            for connection, control_id in ((first, "A"), (second, "B")):  # both are served
                connection.sendall(frame(siu(control_id=control_id, appointment=f"P{control_id}|F{control_id}")))
                assert msa(read_acks(connection, 1)[0]) == ("AA", control_id)
            with connect(listener) as third:
                assert is_closed_by_listener(third, within=5)
            first.sendall(frame(siu(control_id="C", appointment="PC|FC")))
            assert msa(read_acks(first, 1)[0]) == ("AA", "C")
        finally:
            first.close()
            second.close()
        time.sleep(0.2)  # the listener sees the two close
        with connect(listener) as fourth:
            fourth.sendall(frame(siu(control_id="D", appointment="PD|FD")))
            assert msa(read_acks(fourth, 1)[0]) == ("AA", "D")


@pytest.mark.parametrize(
    ("source", "peer", "allowed"),
    [
        ("pas", "10.0.0.6", True),
        ("pas", "::ffff:10.0.0.6", True),  # an IPv4 peer on a dual-stack socket
        ("pas", "10.0.0.7", False),
        ("lab", "10.1.1.200", True),  # inside its network
        ("lab", "10.1.2.1", False),
        ("community", "127.0.0.1", True),  # not configured: loopback, in development
        ("community", "10.0.0.5", False),  # not configured: not from elsewhere
        ("", "127.0.0.1", True),
    ],
)
def test_which_peer_may_send_for_which_source(source: str, peer: str, allowed: bool) -> None:
    policy = peers("pas=10.0.0.5,10.0.0.6;lab=10.1.1.0/24")
    assert (policy.refusal(source, peer) is None) is allowed


def test_production_without_peers_is_warned_about_and_development_is_not() -> None:
    production = Settings(mode="production", session_secret=STRONG, webhook_secret=STRONG)
    assert "WNB_MLLP_PEERS is empty" in (startup_warning(production) or "")
    assert startup_warning(Settings()) is None
    assert startup_warning(Settings(mode="production", mllp_peers="pas=10.0.0.5")) is None


def test_wnb_serve_with_mllp_warns_at_start_in_production_without_peers(tmp_path: Path) -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("WNB_")}
    environment.update(
        WNB_DATABASE_URL=f"sqlite:///{tmp_path / 'serve.db'}",
        WNB_RULES_DIR=str(ROOT / "rules" / "default"),
        WNB_MODE="production",
        WNB_SESSION_SECRET=STRONG,
        WNB_WEBHOOK_SECRET=STRONG,
        WNB_AUDIT_KEY=TEST_AUDIT_KEY,
    )
    wnb = Path(sys.executable).parent / "wnb"
    command = [str(wnb), "serve", "--port", "0", "--mllp-port", "0", "--sweep-minutes", "600"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, env=environment, cwd=tmp_path, text=True)
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
        assert first.startswith("wnb: warning: WNB_MLLP_PEERS is empty"), first
    finally:
        process.terminate()
        process.wait(20)
        if process.stderr is not None:
            process.stderr.close()
