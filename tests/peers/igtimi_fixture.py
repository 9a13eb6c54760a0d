#!/usr/bin/env python3
"""A fixture Igtimi live-data service for livefeed's tests (tests/igtimi.rs).

Written from /work/shared/PROTOCOLS.md section 1 (server lister, classic JSON WebSocket
protocol, heartbeat, packed-JSON data), not from what livefeed's client sends. Built on
aiohttp (pinned in requirements.txt). Binds 127.0.0.1 only. Prints the port of the HTTP
service (server lister) on the first stdout line and serves until killed or its stdin closes.

    igtimi_fixture.py --servers KIND[,KIND...] [--token T] [--auth body|header]
                      [--heartbeat MS] [--data MS] [--events]

Server lister (section 1.3): GET <prefix>/server_listers/web_sockets answers
{"web_socket_servers":[...]} with one ws:// URL per --servers entry, in that order. With
--auth header the request must carry "Authorization: Bearer <token>" (else HTTP 401).
Malformed lists, chosen by the path prefix:
  /notjson/      200 with an HTML body
  /wrongshape/   200 {"servers":[...]} (no web_socket_servers member)
  /empty/        200 {"web_socket_servers":[]}
  /nows/         200 {"web_socket_servers":["http://...", 42, null]} (no ws:// entry)
  /status500/    HTTP 500 {"error":"internal"}
Any other prefix (including none) gets the real list.

WebSocket servers (section 1.4/1.5), one port each, path /live. Every WebSocket kind sends
the heartbeat text "1" every --heartbeat ms (default 15000) from the moment the connection
opens, before any configuration, and records what the client sends: configuration blocks
(JSON objects), heartbeats ("1") and anything else. A configuration block is valid when it
is a JSON object whose "devices" is an array of strings and, with --auth body (default),
whose "access_token" equals --token (default tok-good). With --auth header the upgrade must
carry "Authorization: Bearer <token>" (else HTTP 401) and the block needs no access_token.
Kinds:
  refused    a loopback port nobody listens on (connection refused)
  blackhole  a TCP listener that accepts and reads but never answers the upgrade
  silent     heartbeats, but never a timestamp (ignores the configuration block)
  close      closes the connection (1008 "unauthorized") when the configuration arrives
  good       on a valid block: the timestamp (JS epoch ms, one text frame), then a data
             frame every --data ms (default 1000) for the configured devices; an invalid
             block is answered by a close (1008 "unauthorized")
  mute       like good until the timestamp and one data frame, then sends nothing at all
             (no heartbeats either) while keeping the connection open
  garbage    like good, but after the timestamp first sends these frames once: "hello",
             '{"unexpected":true}', '[oops', '[1,{"X":5},{"DEV":{"abc":{"t":[1]}}}]'
  bye        like good until the timestamp and one data frame, then closes the connection
             normally (1001 "going away", as a server restart would)
  binary     like good, but each data frame is preceded by a binary frame 0a 03 61 62 63
  notime     like good, but never sends the timestamp (data only)

Data frames alternate between two shapes built from the section 1.2/1.4 examples, for the
configured devices D1, D2, ... (t = now in ms, n = frame counter):
  A: [{"D1":{"1":{"t":[t],"1":[170.5+n/1e4],"2":[-45.8]},"2":{"t":[t],"1":[1]}},
       "D2":{...same...}},
      {"D1":{"9":{"t":[t],"1":[n]}}, "D2":{"9":{"t":[t],"1":[n]}}}]
  B: [{"D1":{"13:201":{"t":[t-1000.0,t],"1":[1,2],"2":[10,11],"3":[119,120]},
             " 1":{"t":[t],"1":[170.5],"2":[-45.8]},
             "22":{"t":[t],"1":[n]}}, "D2":{...same...}}]
(an unknown type 22, a type:dsi key, a key with a leading space, float timestamps).

--events prints one JSON line per observation on stdout (nothing else is printed after the
port): {"ev":"list","path":P,"auth":A}, {"ev":"connect","server":I,"conn":C,"auth":A},
{"ev":"config","server":I,"conn":C,"n":K,"block":{...}}, {"ev":"heartbeat","server":I,
"conn":C,"n":K}, {"ev":"text","server":I,"conn":C,"text":T}, {"ev":"closed","server":I,
"conn":C,"configs":K,"heartbeats":H}. I is the index in --servers, C counts connections.
"""

import argparse
import asyncio
import json
import os
import socket
import sys
import threading
import time

from aiohttp import WSMsgType, web

ARGS = None
CONNECTIONS = 0


def report(**event):
    if ARGS.events:
        print(json.dumps(event), flush=True)


def now_ms():
    return int(time.time() * 1000)


def bearer_ok(request):
    return request.headers.get("Authorization") == f"Bearer {ARGS.token}"


def free_port():
    """A loopback port that refuses connections (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---- server lister ---------------------------------------------------------------------


def lister(urls):
    async def handle(request):
        path = request.path
        report(ev="list", path=path, auth=request.headers.get("Authorization"))
        prefix = path[: -len("/server_listers/web_sockets")]
        if prefix == "/notjson":
            return web.Response(text="<html><body>maintenance</body></html>", content_type="text/html")
        if prefix == "/wrongshape":
            return web.json_response({"servers": urls})
        if prefix == "/empty":
            return web.json_response({"web_socket_servers": []})
        if prefix == "/nows":
            return web.json_response({"web_socket_servers": ["http://127.0.0.1:1/", 42, None]})
        if prefix == "/status500":
            return web.json_response({"error": "internal"}, status=500)
        if ARGS.auth == "header" and not bearer_ok(request):
            return web.json_response({"error": "unauthorized"}, status=401)
        return web.json_response({"web_socket_servers": urls})

    return handle


# ---- data ------------------------------------------------------------------------------


def data_frame(devices, n):
    t = now_ms()
    if n % 2 == 0:
        first, second = {}, {}
        for d in devices:
            first[d] = {
                "1": {"t": [t], "1": [170.5 + n / 1e4], "2": [-45.8]},
                "2": {"t": [t], "1": [1]},
            }
            second[d] = {"9": {"t": [t], "1": [n]}}
        return json.dumps([first, second])
    obj = {}
    for d in devices:
        obj[d] = {
            "13:201": {"t": [float(t - 1000), t], "1": [1, 2], "2": [10, 11], "3": [119, 120]},
            " 1": {"t": [t], "1": [170.5], "2": [-45.8]},
            "22": {"t": [t], "1": [n]},
        }
    return json.dumps([obj])


GARBAGE = ["hello", '{"unexpected":true}', "[oops", '[1,{"X":5},{"DEV":{"abc":{"t":[1]}}}]']


# ---- WebSocket servers -----------------------------------------------------------------


class Connection:
    def __init__(self, index, kind, ws):
        global CONNECTIONS
        CONNECTIONS += 1
        self.conn = CONNECTIONS
        self.index = index
        self.kind = kind
        self.ws = ws
        self.configs = 0
        self.heartbeats = 0
        self.devices = None  # set by the first valid block
        self.confirmed = asyncio.Event()
        self.muted = False

    def valid(self, block):
        if not isinstance(block, dict):
            return False
        devices = block.get("devices")
        if not isinstance(devices, list) or not all(isinstance(d, str) for d in devices):
            return False
        if ARGS.auth == "body" and block.get("access_token") != ARGS.token:
            return False
        return True

    async def heartbeat(self):
        while True:
            await asyncio.sleep(ARGS.heartbeat / 1000)
            if self.muted:
                return
            await self.ws.send_str("1")

    async def on_block(self, block):
        self.configs += 1
        report(ev="config", server=self.index, conn=self.conn, n=self.configs, block=block)
        if self.kind == "silent" or self.devices is not None:
            return
        if self.kind == "close" or not self.valid(block):
            await self.ws.close(code=1008, message=b"unauthorized")
            return
        self.devices = block["devices"]
        if self.kind != "notime":
            await self.ws.send_str(str(now_ms()))
        self.confirmed.set()

    async def data(self):
        await self.confirmed.wait()
        if self.kind == "garbage":
            for text in GARBAGE:
                await self.ws.send_str(text)
        n = 0
        while True:
            if self.kind == "binary":
                await self.ws.send_bytes(b"\x0a\x03abc")
            await self.ws.send_str(data_frame(self.devices, n))
            n += 1
            if self.kind == "mute":
                self.muted = True
                return
            if self.kind == "bye":
                await self.ws.close(code=1001, message=b"going away")
                return
            await asyncio.sleep(ARGS.data / 1000)

    async def receive(self):
        async for msg in self.ws:
            if msg.type != WSMsgType.TEXT:
                continue
            text = msg.data
            if text == "1":
                self.heartbeats += 1
                report(ev="heartbeat", server=self.index, conn=self.conn, n=self.heartbeats)
                continue
            try:
                block = json.loads(text)
            except ValueError:
                block = None
            if isinstance(block, dict):
                await self.on_block(block)
            else:
                report(ev="text", server=self.index, conn=self.conn, text=text)


async def quietly(coroutine):
    """Runs a sender until the connection goes away (a send on a closed socket raises)."""
    try:
        await coroutine
    except (ConnectionError, RuntimeError):
        pass


def ws_server(index, kind):
    async def handle(request):
        if ARGS.auth == "header" and not bearer_ok(request):
            return web.json_response({"error": "unauthorized"}, status=401)
        ws = web.WebSocketResponse(autoping=True, heartbeat=None, max_msg_size=1 << 20)
        await ws.prepare(request)
        c = Connection(index, kind, ws)
        report(ev="connect", server=index, conn=c.conn, auth=request.headers.get("Authorization"))
        tasks = [asyncio.create_task(quietly(c.heartbeat())), asyncio.create_task(quietly(c.data()))]
        try:
            await c.receive()
        finally:
            for t in tasks:
                t.cancel()
            report(
                ev="closed", server=index, conn=c.conn, configs=c.configs, heartbeats=c.heartbeats
            )
        return ws

    return handle


async def blackhole(reader, writer):
    try:
        while await reader.read(4096):
            pass
    finally:
        writer.close()


async def site(app):
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    s = web.TCPSite(runner, "127.0.0.1", 0)
    await s.start()
    return s._server.sockets[0].getsockname()[1]


def exit_when_stdin_closes():
    try:
        sys.stdin.buffer.read()
    finally:
        os._exit(0)


async def main():
    urls = []
    keep = []
    for index, kind in enumerate(ARGS.servers):
        if kind == "refused":
            port = free_port()
        elif kind == "blackhole":
            server = await asyncio.start_server(blackhole, "127.0.0.1", 0)
            keep.append(server)
            port = server.sockets[0].getsockname()[1]
        elif kind in ("silent", "close", "good", "mute", "bye", "garbage", "binary", "notime"):
            app = web.Application()
            app.router.add_get("/live", ws_server(index, kind))
            port = await site(app)
        else:
            sys.exit(f"igtimi_fixture: unknown server kind {kind!r}")
        urls.append(f"ws://127.0.0.1:{port}/live")

    app = web.Application()
    app.router.add_get("/{prefix:.*}server_listers/web_sockets", lister(urls))
    port = await site(app)
    print(port, flush=True)
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--servers", type=lambda s: s.split(","), default=["good"])
    p.add_argument("--token", default="tok-good")
    p.add_argument("--auth", choices=["body", "header"], default="body")
    p.add_argument("--heartbeat", type=int, default=15000, help="server heartbeat period, ms")
    p.add_argument("--data", type=int, default=1000, help="data frame period, ms")
    p.add_argument("--events", action="store_true", help="print one JSON line per observation")
    ARGS = p.parse_args()
    asyncio.run(main())
