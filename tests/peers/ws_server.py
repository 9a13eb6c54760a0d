#!/usr/bin/env python3
"""A real WebSocket server (Python `websockets`, pinned in requirements.txt) for livefeed's tests.

Listens on 127.0.0.1, port 0, prints the port on the first stdout line and serves until it is
killed or its stdin closes. What a connection gets depends on the request path:

  /echo                 echoes every text and binary message back, unchanged
  /fragments            sends a text message in 4 fragments and a binary message in 3
                        fragments (websockets sends each item of an iterable as its own frame),
                        then echoes
  /pings?n=N            sends N pings (payload "p<i>") one after the other and waits for each
                        pong (websockets checks that the pong echoes the ping's payload);
                        then sends "pongs:N", or "pong-missing:<i>" if one did not come
                        within 5 s, then echoes
  /close?code=C&reason=R  closes at once with code C and reason R
  /subprotocol          sends the subprotocol the server selected ("none" if none), then echoes
  /headers              sends a JSON object {"path": ..., "headers": [[name, value], ...]} with
                        every request header as the server saw it, then echoes
  /idle?secs=S          sends nothing for S seconds, then sends "idle-done", then echoes
  /flood                sends "0", "1", "2", ... as fast as the client takes them
  /drops?key=K&n=N      the first N connections with this key each send "conn:<i>" (i from
                        1) and close at once with 1012 (service restart); later ones send
                        "conn:<i>" and echo. Messages received on a dropped connection are
                        lost, as on a real restart.
  /report?tag=T         waits (up to 5 s) until a connection opened with ?tag=T has ended,
                        then sends {"code": ..., "reason": ...}: the close frame the server
                        received from the client on it (code null if none came)

Any path may carry ?tag=T so that /report can tell how the client closed that connection.

Options: --ping-interval S and --ping-timeout S set websockets' own keepalive (default:
off); --tls-env makes it serve TLS with the PEM certificate chain and key found in the
environment variables LF_TLS_CERT and LF_TLS_KEY (and, with LF_TLS_CLIENT_CA set, requires
a client certificate signed by that CA).
"""

import argparse
import asyncio
import json
import os
import ssl
import sys
import tempfile
import threading
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

SERVER_SUBPROTOCOLS = ["chat.v2", "chat.v1"]

closed_tags = {}  # tag -> {"code": ..., "reason": ...}
tag_events = {}  # tag -> asyncio.Event


def tag_event(tag):
    if tag not in tag_events:
        tag_events[tag] = asyncio.Event()
    return tag_events[tag]


def select_subprotocol(connection, offered):
    # Server preference order; no subprotocol at all when the client offers none we know.
    for p in SERVER_SUBPROTOCOLS:
        if p in offered:
            return p
    return None


async def echo(ws):
    async for message in ws:
        await ws.send(message)


# Connections seen per /drops key.
drop_counts = {}


async def handler(ws):
    url = urlsplit(ws.request.path)
    query = {k: v[-1] for k, v in parse_qs(url.query).items()}
    tag = query.get("tag")
    try:
        await route(ws, url.path, query)
    except ConnectionClosed:
        pass
    finally:
        if tag is not None:
            await ws.wait_closed()
            code = ws.close_code
            # websockets reports 1006 when no close frame came.
            closed_tags[tag] = {
                "code": None if code == 1006 else code,
                "reason": ws.close_reason if code != 1006 else None,
            }
            tag_event(tag).set()


async def route(ws, path, query):
    if path == "/echo":
        await echo(ws)
    elif path == "/fragments":
        await ws.send(["hel", "lo, ", "fragm", "ents"])
        await ws.send([b"\x00\x01", b"\x02\x03\x04", b"\xff"])
        await echo(ws)
    elif path == "/pings":
        n = int(query.get("n", "3"))
        for i in range(n):
            waiter = await ws.ping(f"p{i}")
            try:
                await asyncio.wait_for(waiter, 5)
            except asyncio.TimeoutError:
                await ws.send(f"pong-missing:{i}")
                break
        else:
            await ws.send(f"pongs:{n}")
        await echo(ws)
    elif path == "/close":
        await ws.close(int(query["code"]), query.get("reason", ""))
    elif path == "/subprotocol":
        await ws.send(ws.subprotocol or "none")
        await echo(ws)
    elif path == "/headers":
        headers = [[k, v] for k, v in ws.request.headers.raw_items()]
        await ws.send(json.dumps({"path": ws.request.path, "headers": headers}))
        await echo(ws)
    elif path == "/idle":
        await asyncio.sleep(float(query.get("secs", "1")))
        await ws.send("idle-done")
        await echo(ws)
    elif path == "/flood":
        n = 0
        while True:
            await ws.send(str(n))
            n += 1
            if n % 32 == 0:
                await asyncio.sleep(0.001)
    elif path == "/drops":
        key = query["key"]
        drop_counts[key] = drop_counts.get(key, 0) + 1
        i = drop_counts[key]
        await ws.send(f"conn:{i}")
        if i <= int(query.get("n", "1")):
            await ws.close(1012, "restart")
        else:
            await echo(ws)
    elif path == "/report":
        want = query["tag"]
        try:
            await asyncio.wait_for(tag_event(want).wait(), 5)
            await ws.send(json.dumps(closed_tags[want]))
        except asyncio.TimeoutError:
            await ws.send(json.dumps({"error": "no such connection ended"}))
        await echo(ws)
    else:
        await ws.close(4404, "unknown path")


def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as d:
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        with open(cert, "w") as f:
            f.write(os.environ["LF_TLS_CERT"])
        with open(key, "w") as f:
            f.write(os.environ["LF_TLS_KEY"])
        ctx.load_cert_chain(cert, key)
    client_ca = os.environ.get("LF_TLS_CLIENT_CA")
    if client_ca:
        # Mutual TLS: only clients with a certificate signed by this CA get in.
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=client_ca)
    return ctx


def exit_when_stdin_closes():
    try:
        sys.stdin.buffer.read()
    finally:
        os._exit(0)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ping-interval", type=float, default=None)
    ap.add_argument("--ping-timeout", type=float, default=None)
    ap.add_argument("--tls-env", action="store_true")
    args = ap.parse_args()
    async with serve(
        handler,
        "127.0.0.1",
        0,
        ssl=tls_context() if args.tls_env else None,
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
        select_subprotocol=select_subprotocol,
        max_size=4 << 20,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(port, flush=True)
        threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
