"""A webhook post's bytes on the wire, pinned: the request a receiver gets stays the same whichever HTTP library
sends it (urllib before, httpx now: the header list is given whole, so httpx adds none), but for where Host is."""

from __future__ import annotations

import socket
import threading

from wnb.notify import webhook

EXPECTED = (
    b"POST /hook?token=x HTTP/1.1\r\n"
    b"Host: 127.0.0.1:PORT\r\n"  # the one change: urllib wrote it third, h11 writes it first (RFC 9112 §3.2)
    b"Accept-Encoding: identity\r\n"
    b"Content-Length: 7\r\n"
    b"Content-Type: application/json\r\n"
    b"User-Agent: wnb-webhook/1\r\n"
    b"X-Wnb-Signature: sha256=5910e62016ef5034272c926c27071992a465c2335cecf41851bda071577f4f6d\r\n"
    b"X-Wnb-Delivery: flag:1:raised:http://x\r\n"
    b"Connection: close\r\n"
    b"\r\n"
    b'{"a":1}'
)


def test_a_webhook_request_is_the_same_bytes_as_before() -> None:
    """The request as a raw socket on loopback reads it (urllib's bytes, captured before the move to httpx)."""
    received: list[bytes] = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        def answer_once() -> None:
            connection, _ = server.accept()
            with connection:
                data = b""
                while not data.endswith(b'{"a":1}'):
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                received.append(data)
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

        thread = threading.Thread(target=answer_once)
        thread.start()
        settings = webhook.WebhookSettings(secret="s3cret")
        webhook.post(settings, f"http://127.0.0.1:{port}/hook?token=x", "flag:1:raised:http://x", b'{"a":1}')
        thread.join(10)
    assert received == [EXPECTED.replace(b"PORT", str(port).encode())]
