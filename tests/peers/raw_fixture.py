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

Hostile peers (tests/hostile.rs). Those marked "endless" send as fast as the socket takes
their bytes until the client goes away. None of them ever answers a ping.
  /fragment-storm     valid 101, a binary frame of 1 KiB without FIN, then endless
                      continuation frames of 1 KiB without FIN: a message that never ends
  /fragment-flood?size=S&secs=T   valid 101, a binary frame of S bytes without FIN, then
                      continuation frames of S bytes (default 0) without FIN: millions of
                      tiny fragments (2 + S bytes each); endless, or for T seconds and then
                      silence until the client goes (the message never ends)
  /ping-flood?mib=M&read=R   valid 101, a text frame "flood-start", then M MiB (default
                      64) of pings (125-byte payloads, each starting with its 8-byte
                      big-endian sequence number) as fast as the socket takes them, then a
                      text frame "flood-end"; meanwhile reads (and counts) the client's
                      frames, unless R is 0: then it starts reading only after the flood,
                      so the client's pongs back up; after the flood it stays silent
                      (never answers a ping) until the client goes
  /trickle-frame      valid 101, then a text frame "hello, slowly" one byte per second
  /trickle-upgrade    a valid 101 response head, one byte per second
  /endless-headers    "HTTP/1.1 101 Switching Protocols", then endless header lines
  /garbage-after-upgrade   valid 101 and, in the same write, an HTML error page ("<" as
                      a frame's first byte: RSV2 and RSV3 set, reserved opcode 0xC), then
                      silence
  /random-after-upgrade?seed=N   valid 101 and, in the same write, endless pseudo-random
                      bytes (Python's random.Random(N))
  /huge-length?bits=B valid 101, then a binary frame header announcing 2^B - 1 bytes (64-bit
                      length; B from 1 to 64, default 63), then endless zero bytes
  /eof-mid-frame      valid 101, the first 10 payload bytes of a text frame announcing 256,
                      then FIN
  /reset-after-open   valid 101; reads one client frame, then resets the connection (RST:
                      SO_LINGER with a zero timeout) without a Close frame
  /bad-utf8-fragments valid 101, then a text message in two fragments, "caf\xc3" (a valid
                      prefix) and "(" (0x28, not a continuation byte), then silence
  /bad-utf8-close     valid 101, then a Close frame with code 1000 and reason 0xFF, then FIN
                      after reading the client's Close frame

With ?tag=T, a hostile scenario prints one line when its connection ends:
"report T sent=<bytes written> received=<bytes read>" plus, for /ping-flood,
" pings=<sent> pongs=<received> last_pong=<sequence number in the last pong, -1 if none>".
"""

import asyncio
import base64
import hashlib
import os
import random
import socket
import struct
import sys
import threading
from urllib.parse import parse_qs

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


class Stats:
    """What a hostile scenario wrote and read, for its "report" line."""

    def __init__(self):
        self.sent = 0
        self.received = 0
        self.extra = ""


async def send(writer: asyncio.StreamWriter, data: bytes, stats: Stats):
    writer.write(data)
    await writer.drain()
    stats.sent += len(data)


async def endless(writer: asyncio.StreamWriter, chunk, stats: Stats, secs: float | None = None):
    """Writes chunks (bytes, or a function returning the next one) until the client goes,
    or for `secs` seconds."""
    loop = asyncio.get_running_loop()
    end = None if secs is None else loop.time() + secs
    while end is None or loop.time() < end:
        await send(writer, chunk() if callable(chunk) else chunk, stats)


async def trickle(writer: asyncio.StreamWriter, data: bytes, stats: Stats):
    for i in range(len(data)):
        await send(writer, data[i : i + 1], stats)
        await asyncio.sleep(1)


def repeated(one: bytes, size: int = 1 << 20) -> bytes:
    return one * max(1, size // len(one))


async def ping_flood(reader, writer, key: bytes, mib: int, read: bool, stats: Stats):
    pings = pongs = 0
    last_pong = -1

    async def read_client():
        # Counts the client's pongs by walking frame headers (masked, 5.3); unmasks only
        # the first 8 payload bytes (the sequence number).
        nonlocal pongs, last_pong
        buf = bytearray()
        while True:
            data = await reader.read(1 << 16)
            if not data:
                return
            stats.received += len(data)
            buf += data
            while len(buf) >= 2:
                n, off = buf[1] & 0x7F, 2
                if n == 126:
                    if len(buf) < 4:
                        break
                    (n,) = struct.unpack_from("!H", buf, 2)
                    off = 4
                elif n == 127:
                    if len(buf) < 10:
                        break
                    (n,) = struct.unpack_from("!Q", buf, 2)
                    off = 10
                mask = b"\0\0\0\0"
                if buf[1] & 0x80:
                    mask, off = bytes(buf[off : off + 4]), off + 4
                if len(buf) < off + n:
                    break
                if buf[0] & 0x0F == 0xA:
                    pongs += 1
                    if n >= 8:
                        seq = bytes(b ^ mask[i % 4] for i, b in enumerate(buf[off : off + 8]))
                        (last_pong,) = struct.unpack("!Q", seq)
                del buf[: off + n]

    reading = asyncio.create_task(read_client()) if read else None
    try:
        await send(writer, switching(key) + frame(0x1, b"flood-start"), stats)
        total = mib << 20
        filler = b"p" * 117
        while stats.sent < total:
            chunk = b"".join(
                frame(0x9, struct.pack("!Q", pings + i) + filler) for i in range(8192)
            )
            await send(writer, chunk, stats)
            pings += 8192
        await send(writer, frame(0x1, b"flood-end"), stats)
        if reading is None:
            reading = asyncio.create_task(read_client())
        await reading
    finally:
        if reading is not None:
            reading.cancel()
        stats.extra = f" pings={pings} pongs={pongs} last_pong={last_pong}"


async def hostile(path: str, query: dict, reader, writer, key: bytes, stats: Stats) -> bool:
    """Runs a hostile scenario; False if `path` is not one."""
    if path == "/fragment-storm":
        part = b"\x01" * 1024
        await send(writer, switching(key) + frame(0x2, part, fin=False), stats)
        await endless(writer, repeated(frame(0x0, part, fin=False)), stats)
    elif path == "/fragment-flood":
        part = b"\x01" * int(query.get("size", "0"))
        secs = float(query["secs"]) if "secs" in query else None
        await send(writer, switching(key) + frame(0x2, part, fin=False), stats)
        await endless(writer, repeated(frame(0x0, part, fin=False)), stats, secs)
        while await reader.read(1 << 16):  # silence until the client goes
            pass
    elif path == "/ping-flood":
        mib, read = int(query.get("mib", "64")), query.get("read", "1") != "0"
        await ping_flood(reader, writer, key, mib, read, stats)
    elif path == "/trickle-frame":
        await send(writer, switching(key), stats)
        await trickle(writer, frame(0x1, b"hello, slowly"), stats)
        await forever()
    elif path == "/trickle-upgrade":
        await trickle(writer, switching(key), stats)
        await forever()
    elif path == "/endless-headers":
        await send(writer, b"HTTP/1.1 101 Switching Protocols\r\n", stats)
        await endless(writer, repeated(b"X-Filler: 0123456789abcdef\r\n", 1 << 16), stats)
    elif path == "/garbage-after-upgrade":
        page = b"<html><body><h1>502 Bad Gateway</h1></body></html>\r\n"
        await send(writer, switching(key) + page, stats)
        await forever()
    elif path == "/random-after-upgrade":
        rng = random.Random(int(query.get("seed", "0")))
        await send(writer, switching(key) + rng.randbytes(1 << 16), stats)
        await endless(writer, lambda: rng.randbytes(1 << 16), stats)
    elif path == "/huge-length":
        bits = int(query.get("bits", "63"))
        head = bytes([0x82, 127]) + struct.pack("!Q", (1 << bits) - 1)
        await send(writer, switching(key) + head, stats)
        await endless(writer, bytes(1 << 16), stats)
    elif path == "/eof-mid-frame":
        head = bytes([0x81, 126]) + struct.pack("!H", 256)
        await send(writer, switching(key) + head + b"0123456789", stats)
    elif path == "/reset-after-open":
        await send(writer, switching(key), stats)
        await read_client_frame(reader)
        linger = struct.pack("ii", 1, 0)  # on, 0 s: close() sends RST
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        writer.transport.abort()
    elif path == "/bad-utf8-fragments":
        message = frame(0x1, b"caf\xc3", fin=False) + frame(0x0, b"(")
        await send(writer, switching(key) + message, stats)
        await forever()
    elif path == "/bad-utf8-close":
        await send(writer, switching(key) + frame(0x8, struct.pack("!H", 1000) + b"\xff"), stats)
        await read_client_frame(reader)
    else:
        return False
    return True


# The connection handlers in progress: asyncio keeps only weak references to tasks, and a
# handler parked in forever() is otherwise garbage ("Task was destroyed but it is pending!").
handlers = set()


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
    stats, tag = Stats(), None
    handlers.add(asyncio.current_task())
    try:
        path, headers = await read_head(reader)
        key = headers.get(b"sec-websocket-key", b"")
        path, _, query = path.partition("?")
        query = {k: v[-1] for k, v in parse_qs(query).items()}
        tag = query.get("tag")
        if await hostile(path, query, reader, writer, key, stats):
            pass
        elif path == "/malformed-status":
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
        handlers.discard(asyncio.current_task())
        writer.close()
        if tag is not None:
            figures = f"sent={stats.sent} received={stats.received}{stats.extra}"
            print(f"report {tag} {figures}", flush=True)


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
