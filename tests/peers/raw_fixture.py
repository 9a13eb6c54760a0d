#!/usr/bin/env python3
"""A raw TCP fixture for the cases no real WebSocket server produces: broken or hostile peers.

Written from RFC 9112 (HTTP/1.1 message syntax) and RFC 6455 (the opening handshake, section
4.2.2, and base framing, section 5.2), not from what any client sends. Standard library only.

Listens on 127.0.0.1, port 0. First stdout line: the listening port. Second line:
"closed <port>", a loopback port bound by this process but not listening, so a connect to it
is refused and no other process can take it while the fixture runs. Runs until killed or
until its stdin closes.

Every scenario first reads the whole request head (a GET upgrade request has no body), so
that closing the connection sends FIN, not RST. Scenarios, by request path:

  /malformed-status   status line with a non-numeric status code ("1O1"), then silence
  /not-http           an SSH banner instead of an HTTP status line, then silence
  /bad-header-line    a 101 whose second line is not a header field (no colon), then silence
  /forbidden          403 Forbidden with a text body (Content-Length framed), then silence
  /bad-accept         101 with a Sec-WebSocket-Accept computed from another key
  /no-upgrade         101 without the Upgrade header field
  /bad-utf8           valid 101, a valid text frame "ok", then a text frame with 0xFF 0xFE
  /oversize-frame     valid 101, then one binary frame announcing 1 MiB (64-bit length)
  /oversize-message   valid 101, then a binary message in 3 fragments of 40 KiB each
  /masked-frame       valid 101, then a masked text frame (a server must not mask, 5.1)
  /reserved-opcode    valid 101, then a frame with the reserved opcode 0x3 (5.2)
  /eof-after-open     valid 101, a text frame "bye", then FIN without a Close frame
  /close-empty        valid 101, then a Close frame with no body (no status code, 5.5.1),
                      then FIN after reading the client's Close frame
  /close-bad-code     valid 101, then a Close frame with code 1005, which must never be
                      sent in a frame (7.4.1); FIN after reading the client's Close frame
  /close-linger       valid 101, then Close 4001 "bye"; reads the client's Close frame but
                      never closes the TCP connection (7.1.1 lets the client close it)
  /hangup             closes the connection without answering
  /hangup-partial     sends half of a 101 response head, then closes
  /no-answer          never answers (and keeps the connection open)
  /silent             valid 101, then never sends or reads anything again
"""

import asyncio
import base64
import hashlib
import os
import socket
import struct
import sys
import threading

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3


def accept_for(key: bytes) -> str:
    return base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()


def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A server-to-client frame (RFC 6455 section 5.2): never masked."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


def switching(key: bytes, accept: str | None = None, upgrade: bool = True) -> bytes:
    lines = ["HTTP/1.1 101 Switching Protocols"]
    if upgrade:
        lines.append("Upgrade: websocket")
    lines.append("Connection: Upgrade")
    lines.append("Sec-WebSocket-Accept: " + (accept if accept is not None else accept_for(key)))
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def read_head(reader: asyncio.StreamReader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    method, target, _version = lines[0].split(b" ", 2)
    headers = {}
    for line in lines[1:]:
        if b":" in line:
            name, value = line.split(b":", 1)
            headers[name.strip().lower()] = value.strip()
    return target.decode(), headers


async def read_client_frame(reader: asyncio.StreamReader):
    """Reads one client frame (always masked, 5.3); returns (opcode, unmasked payload)."""
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", await reader.readexactly(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", await reader.readexactly(8))
    mask = await reader.readexactly(4) if b1 & 0x80 else b"\0\0\0\0"
    data = await reader.readexactly(n)
    return b0 & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


async def forever():
    await asyncio.Event().wait()


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
    try:
        path, headers = await read_head(reader)
        key = headers.get(b"sec-websocket-key", b"")
        path = path.split("?", 1)[0]
        if path == "/malformed-status":
            writer.write(b"HTTP/1.1 1O1 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
            await writer.drain()
            await forever()
        elif path == "/not-http":
            writer.write(b"SSH-2.0-OpenSSH_9.6\r\n")
            await writer.drain()
            await forever()
        elif path == "/bad-header-line":
            writer.write(b"HTTP/1.1 101 Switching Protocols\r\nthis is not a header field\r\n\r\n")
            await writer.drain()
            await forever()
        elif path == "/forbidden":
            body = b"no entry for this feed"
            writer.write(
                b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
                + b"Content-Length: %d\r\n\r\n" % len(body)
                + body
            )
            await writer.drain()
            await forever()
        elif path == "/bad-accept":
            writer.write(switching(key, accept=accept_for(b"dGhlIHNhbXBsZSBub25jZQ==" + b"x")))
            await writer.drain()
            await forever()
        elif path == "/no-upgrade":
            writer.write(switching(key, upgrade=False))
            await writer.drain()
            await forever()
        elif path == "/bad-utf8":
            writer.write(switching(key) + frame(0x1, b"ok") + frame(0x1, b"\xff\xfe"))
            await writer.drain()
            await forever()
        elif path == "/oversize-frame":
            writer.write(switching(key) + frame(0x2, b"\x00" * (1 << 20)))
            await writer.drain()
            await forever()
        elif path == "/oversize-message":
            part = b"\x01" * (40 << 10)
            writer.write(
                switching(key)
                + frame(0x2, part, fin=False)
                + frame(0x0, part, fin=False)
                + frame(0x0, part, fin=True)
            )
            await writer.drain()
            await forever()
        elif path == "/masked-frame":
            mask, payload = b"\x01\x02\x03\x04", b"masked"
            masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            writer.write(switching(key) + bytes([0x81, 0x80 | len(payload)]) + mask + masked)
            await writer.drain()
            await forever()
        elif path == "/reserved-opcode":
            writer.write(switching(key) + frame(0x3, b"?"))
            await writer.drain()
            await forever()
        elif path == "/eof-after-open":
            writer.write(switching(key) + frame(0x1, b"bye"))
            await writer.drain()
        elif path == "/close-empty":
            writer.write(switching(key) + frame(0x8, b""))
            await writer.drain()
            await read_client_frame(reader)
        elif path == "/close-bad-code":
            writer.write(switching(key) + frame(0x8, struct.pack("!H", 1005)))
            await writer.drain()
            await read_client_frame(reader)
        elif path == "/close-linger":
            writer.write(switching(key) + frame(0x8, struct.pack("!H", 4001) + b"bye"))
            await writer.drain()
            await read_client_frame(reader)
            await forever()
        elif path == "/hangup":
            pass
        elif path == "/hangup-partial":
            writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: webso")
            await writer.drain()
        elif path == "/no-answer":
            await forever()
        elif path == "/silent":
            writer.write(switching(key))
            await writer.drain()
            await forever()
        else:
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


def exit_when_stdin_closes():
    try:
        sys.stdin.buffer.read()
    finally:
        os._exit(0)


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connects are refused
    print(server.sockets[0].getsockname()[1], flush=True)
    print("closed", closed.getsockname()[1], flush=True)
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
