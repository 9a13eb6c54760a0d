#!/usr/bin/env python3
"""A fixture deCONZ gateway for livefeed's tests (tests/deconz.rs).

Written from /work/shared/PROTOCOLS.md section 4 (deCONZ REST API and WebSocket), not from
what livefeed's client sends. Built on aiohttp (pinned in requirements.txt).

Two listeners on 127.0.0.1, as a deCONZ started with --ws-port has them: the REST API on one
port, the WebSocket on another (any path, no authentication, all events to all clients). With
--tls (certificate and key in the environment variables LF_TLS_CERT and LF_TLS_KEY, PEM) a
third listener serves the same WebSocket over TLS, reported as `websocketport_wss`.

First stdout line: {"port": <REST port>, "ws": <WebSocket port>, "wss": <TLS port or null>}.
Runs until killed or until its stdin closes. Nothing is printed per message.

Options:
  --apikey KEY        a key the gateway knows (default 0123ABCDEF; repeatable)
  --basic USER:PASS   HTTP Basic credentials that unlock key acquisition (default delight:gatewaypw)
  --config MODE       how GET /api/<key>/config answers (a known key only):
                        normal        200, the config with `websocketport` (and `websocketport_wss`)
                        no-port       200, a config without `websocketport`
                        port-string   200, `websocketport` as a string ("8088"), not a number
                        not-json      200, an HTML page
                        array         200, the JSON array [1,2]
                        busy          503 with [{"error":{"type":951,...,"description":"bridge busy"}}]
  --snapshot MODE     how GET /api/<key>/lights answers: normal, not-object (a JSON array of ids),
                      not-json (sensors and groups always answer normally)
  --tls               also serve the WebSocket over TLS

REST API (PROTOCOLS.md 4.1, 4.2):
  POST /api                     key acquisition: body {"devicetype": <1-40 chars>, "username":
                                <optional, 10-40 chars>}. Unlocked (Basic credentials, or within 60 s
                                of POST /control/unlock): 200 [{"success":{"username":<key>}}], and
                                the key works from then on. Locked: 403 with error type 101 "link
                                button not pressed". Body not JSON: 400 type 2; no devicetype: 400
                                type 5; devicetype too long or username out of range: 400 type 7.
  GET /api/<key>/config         as --config says; an unknown key: 403 with error type 1
                                "unauthorized user" (every /api/<key>/... path)
  GET /api/<key>/lights|sensors|groups
                                the resources, an object keyed by id
Errors are arrays of {"error":{"type":n,"address":"/...","description":"..."}}.

WebSocket (PROTOCOLS.md 4.3, 4.4): sends nothing on its own; text from the client is counted and
ignored; pings are answered with pongs (counted) unless muted.

Control (tests only; each returns JSON; waits are bounded at 5 s, then 504):
  POST /control/emit            sends EVENTS below to every WebSocket client, in order (first
                                waits for a client to be connected); returns {"sent": n}
  POST /control/send[?binary=1] sends the request body as one text (or binary) frame to every
                                client (first waits for a client)
  POST /control/move[?how=abort] moves the WebSocket (and TLS WebSocket) to new ports, as a
                                restarted gateway may: new listeners first, then the old ones stop,
                                their clients get close 1001 (or a TCP abort), and the old ports stay
                                bound without listening, so connecting there is refused
  POST /control/drop            closes every WebSocket client with 1001, listeners unchanged
  POST /control/mute            stops answering pings
  POST /control/unlock          opens the 60 s key acquisition window (Phoscon "Authenticate app")
  GET /control/stats[?until=<counter>&n=<N>]
                                the counters, after waiting until counter >= N: config_reads,
                                lights_reads, sensors_reads, groups_reads, unauthorized, key_posts,
                                keys_issued, ws_connects, pings, client_texts, clients (connected
                                now); also ws_port, wss_port, ws_ports_connected (the local port of
                                every WebSocket accepted, in order)
"""

import argparse
import asyncio
import base64
import json
import os
import secrets
import socket
import ssl
import sys
import tempfile
import threading
import time

from aiohttp import WSMsgType, web

WAIT = 5.0

# One message of every kind, from PROTOCOLS.md 4.3 (the first four are its own examples).
EVENTS = [
    {"t": "event", "e": "changed", "r": "sensors", "id": "5",
     "uniqueid": "00:0d:6f:00:10:65:8a:6e-01-1000",
     "state": {"buttonevent": 2002, "lastupdated": "2019-03-15T20:16:30"}},
    {"t": "event", "e": "changed", "r": "lights", "id": "1",
     "uniqueid": "00:17:88:01:00:00:00:01-0b", "attr": {"lastseen": "2024-06-01T19:18:20Z"}},
    {"t": "event", "e": "scene-called", "r": "scenes", "gid": "0", "scid": "2"},
    {"t": "event", "e": "deleted", "r": "lights", "id": "3",
     "uniqueid": "00:17:88:01:00:00:00:03-0b"},
    {"t": "event", "e": "changed", "r": "lights", "id": "1",
     "uniqueid": "00:17:88:01:00:00:00:01-0b", "state": {"on": True, "bri": 200, "reachable": True}},
    {"t": "event", "e": "changed", "r": "sensors", "id": "5",
     "uniqueid": "00:0d:6f:00:10:65:8a:6e-01-1000", "config": {"battery": 90, "reachable": True}},
    {"t": "event", "e": "changed", "r": "groups", "id": "2", "name": "Lounge"},
    {"t": "event", "e": "changed", "r": "groups", "id": "2", "state": {"all_on": False, "any_on": True}},
    {"t": "event", "e": "added", "r": "lights", "id": "4", "uniqueid": "00:17:88:01:00:00:00:04-0b",
     "light": {"name": "Porch", "type": "On/Off light", "state": {"on": False, "reachable": True}}},
    {"t": "event", "e": "added", "r": "sensors", "id": "9", "uniqueid": "00:15:8d:00:01:02:03:04-01-0402",
     "sensor": {"name": "Temperature", "type": "ZHATemperature", "state": {"temperature": 2150}}},
    {"t": "event", "e": "added", "r": "groups", "id": "6",
     "group": {"name": "Garden", "type": "LightGroup", "lights": []}},
    {"t": "event", "e": "deleted", "r": "groups", "id": "6"},
    {"t": "event", "e": "changed", "r": "alarmsystems", "id": "1", "state": {"armstate": "armed_away"}},
]

RESOURCES = {
    "lights": {
        "1": {"name": "Desk", "type": "Extended color light", "uniqueid": "00:17:88:01:00:00:00:01-0b",
              "state": {"on": True, "bri": 200, "reachable": True}},
        "3": {"name": "Hall", "type": "Dimmable light", "uniqueid": "00:17:88:01:00:00:00:03-0b",
              "state": {"on": False, "bri": 0, "reachable": True}},
    },
    "sensors": {
        "5": {"name": "Switch", "type": "ZHASwitch", "uniqueid": "00:0d:6f:00:10:65:8a:6e-01-1000",
              "state": {"buttonevent": 2002, "lastupdated": "2019-03-15T20:16:30"},
              "config": {"battery": 90, "on": True, "reachable": True}},
    },
    "groups": {
        "2": {"name": "Living room", "type": "LightGroup", "lights": ["1", "3"],
              "state": {"all_on": False, "any_on": True}, "scenes": [{"id": "2", "name": "Evening"}]},
    },
}


def error(kind, address, description):
    return [{"error": {"type": kind, "address": address, "description": description}}]


class Gateway:
    def __init__(self, args):
        self.args = args
        self.keys = set(args.apikey or ["0123ABCDEF"])
        self.basic = "Basic " + base64.b64encode(args.basic.encode()).decode()
        self.unlocked_until = 0.0
        self.muted = False
        self.clients = []  # (ws, request)
        self.changed = asyncio.Condition()
        self.stats = {
            "config_reads": 0, "lights_reads": 0, "sensors_reads": 0, "groups_reads": 0,
            "unauthorized": 0, "key_posts": 0, "keys_issued": 0, "ws_connects": 0, "pings": 0,
            "client_texts": 0, "ws_ports_connected": [],
        }
        self.ws_runner = None
        self.sites = {}  # "ws" / "wss" -> (site, port)
        self.reserved = []  # sockets holding old ports, bound but not listening
        self.ssl = None

    async def count(self, name, by=1):
        async with self.changed:
            self.stats[name] += by
            self.changed.notify_all()

    def snapshot_stats(self):
        out = dict(self.stats)
        out["clients"] = len(self.clients)
        out["ws_port"] = self.sites["ws"][1]
        out["wss_port"] = self.sites["wss"][1] if "wss" in self.sites else None
        return out

    # --- REST -------------------------------------------------------------------------

    async def acquire_key(self, request):
        await self.count("key_posts")
        try:
            body = json.loads(await request.text())
        except ValueError:
            return web.json_response(error(2, "/", "body contains invalid JSON"), status=400)
        if not isinstance(body, dict) or "devicetype" not in body:
            return web.json_response(error(5, "/", "missing parameters in body"), status=400)
        devicetype = body["devicetype"]
        if not isinstance(devicetype, str) or not 1 <= len(devicetype) <= 40:
            return web.json_response(
                error(7, "/devicetype", f"invalid value, {devicetype}, for parameter, devicetype"),
                status=400)
        username = body.get("username")
        if username is not None and (not isinstance(username, str) or not 10 <= len(username) <= 40):
            return web.json_response(
                error(7, "/username", f"invalid value, {username}, for parameter, username"),
                status=400)
        unlocked = time.monotonic() < self.unlocked_until
        if not unlocked and request.headers.get("Authorization") != self.basic:
            return web.json_response(error(101, "/", "link button not pressed"), status=403)
        key = username or secrets.token_hex(5).upper()
        self.keys.add(key)
        await self.count("keys_issued")
        return web.json_response([{"success": {"username": key}}])

    async def known_key(self, request):
        if request.match_info["key"] in self.keys:
            return True
        await self.count("unauthorized")
        return False

    async def config(self, request):
        if not await self.known_key(request):
            return web.json_response(error(1, "/", "unauthorized user"), status=403)
        await self.count("config_reads")
        mode = self.args.config
        if mode == "not-json":
            return web.Response(text="<html><body>starting</body></html>", content_type="text/html")
        if mode == "array":
            return web.json_response([1, 2])
        if mode == "busy":
            return web.json_response(error(951, "/config", "bridge busy"), status=503)
        cfg = {
            "apiversion": "1.16.0", "bridgeid": "00212EFFFF012345", "name": "Phoscon-GW",
            "swversion": "2.28.1", "ipaddress": "127.0.0.1", "websocketnotifyall": True,
            "websocketport": self.sites["ws"][1],
        }
        if "wss" in self.sites:
            cfg["websocketport_wss"] = self.sites["wss"][1]
        if mode == "no-port":
            del cfg["websocketport"]
        elif mode == "port-string":
            cfg["websocketport"] = str(cfg["websocketport"])
        return web.json_response(cfg)

    async def resource(self, request):
        if not await self.known_key(request):
            return web.json_response(error(1, "/", "unauthorized user"), status=403)
        name = request.match_info["resource"]
        if name not in RESOURCES:
            return web.json_response(
                error(3, f"/{name}", f"resource, /{name}, not available"), status=404)
        await self.count(f"{name}_reads")
        if name == "lights" and self.args.snapshot == "not-object":
            return web.json_response(list(RESOURCES[name]))
        if name == "lights" and self.args.snapshot == "not-json":
            return web.Response(text="lights: 1, 3")
        return web.json_response(RESOURCES[name])

    # --- WebSocket --------------------------------------------------------------------

    async def websocket(self, request):
        ws = web.WebSocketResponse(autoping=False, heartbeat=None, max_msg_size=1 << 20)
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text="WebSocket only")
        await ws.prepare(request)
        port = request.transport.get_extra_info("sockname")[1]
        async with self.changed:
            self.clients.append((ws, request))
            self.stats["ws_connects"] += 1
            self.stats["ws_ports_connected"].append(port)
            self.changed.notify_all()
        try:
            while True:
                msg = await ws.receive()
                if msg.type == WSMsgType.PING:
                    await self.count("pings")
                    if not self.muted:
                        await ws.pong(msg.data)
                elif msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    await self.count("client_texts")
                elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED,
                                  WSMsgType.ERROR):
                    break
        finally:
            async with self.changed:
                self.clients = [c for c in self.clients if c[0] is not ws]
                self.changed.notify_all()
            if not ws.closed:
                await ws.close()
        return ws

    async def start_site(self, name):
        ctx = self.ssl if name == "wss" else None
        site = web.TCPSite(self.ws_runner, "127.0.0.1", 0, ssl_context=ctx)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.sites[name] = (site, port)

    async def wait_until(self, pred):
        async with self.changed:
            try:
                await asyncio.wait_for(self.changed.wait_for(pred), WAIT)
                return True
            except asyncio.TimeoutError:
                return False

    async def close_clients(self, how):
        for ws, request in list(self.clients):
            if how == "abort":
                request.transport.abort()
            else:
                try:
                    await asyncio.wait_for(ws.close(code=1001, message=b"going away"), WAIT)
                except asyncio.TimeoutError:
                    request.transport.abort()

    # --- control ----------------------------------------------------------------------

    async def broadcast(self, frames, binary=False):
        if not await self.wait_until(lambda: self.clients):
            return web.json_response({"error": "no WebSocket client"}, status=504)
        sent = 0
        for ws, _ in list(self.clients):
            for frame in frames:
                if binary:
                    await ws.send_bytes(frame)
                else:
                    await ws.send_str(frame)
                sent += 1
        return web.json_response({"sent": sent})

    async def control(self, request):
        what = request.match_info["what"]
        if what == "emit":
            return await self.broadcast([json.dumps(e) for e in EVENTS])
        if what == "send":
            body = await request.read()
            if request.query.get("binary"):
                return await self.broadcast([body], binary=True)
            return await self.broadcast([body.decode("utf-8", "replace")])
        if what == "move":
            old = dict(self.sites)
            for name in old:
                await self.start_site(name)
            for name, (site, port) in old.items():
                await site.stop()
                self.reserve(port)
            await self.close_clients(request.query.get("how", "close"))
            return web.json_response(self.snapshot_stats())
        if what == "drop":
            await self.close_clients("close")
            return web.json_response(self.snapshot_stats())
        if what == "mute":
            self.muted = True
            return web.json_response({"muted": True})
        if what == "unlock":
            self.unlocked_until = time.monotonic() + 60
            return web.json_response({"unlocked": 60})
        if what == "stats":
            until, n = request.query.get("until"), int(request.query.get("n", "0"))
            if until is not None:
                def reached():
                    value = self.snapshot_stats()[until]
                    return (len(value) if isinstance(value, list) else value) >= n
                if not await self.wait_until(reached):
                    return web.json_response(self.snapshot_stats(), status=504)
            return web.json_response(self.snapshot_stats())
        return web.json_response({"error": "unknown control"}, status=404)

    def reserve(self, port):
        # Keeps a moved-away port bound but not listening: connecting there is refused.
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            self.reserved.append(s)
        except OSError:
            s.close()


def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as d:
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        with open(cert, "w") as f:
            f.write(os.environ["LF_TLS_CERT"])
        with open(key, "w") as f:
            f.write(os.environ["LF_TLS_KEY"])
        ctx.load_cert_chain(cert, key)
    return ctx


def exit_when_stdin_closes():
    try:
        sys.stdin.buffer.read()
    finally:
        os._exit(0)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--apikey", action="append")
    parser.add_argument("--basic", default="delight:gatewaypw")
    parser.add_argument("--config", default="normal",
                        choices=["normal", "no-port", "port-string", "not-json", "array", "busy"])
    parser.add_argument("--snapshot", default="normal", choices=["normal", "not-object", "not-json"])
    parser.add_argument("--tls", action="store_true")
    args = parser.parse_args()
    gw = Gateway(args)

    rest = web.Application()
    rest.router.add_post("/api", gw.acquire_key)
    rest.router.add_get("/api/{key}/config", gw.config)
    rest.router.add_get("/api/{key}/{resource}", gw.resource)
    rest.router.add_route("*", "/control/{what}", gw.control)
    rest_runner = web.AppRunner(rest, access_log=None)
    await rest_runner.setup()
    rest_site = web.TCPSite(rest_runner, "127.0.0.1", 0)
    await rest_site.start()
    rest_port = rest_site._server.sockets[0].getsockname()[1]

    ws_app = web.Application()
    ws_app.router.add_get("/{tail:.*}", gw.websocket)
    gw.ws_runner = web.AppRunner(ws_app, access_log=None, shutdown_timeout=0.1)
    await gw.ws_runner.setup()
    await gw.start_site("ws")
    if args.tls:
        gw.ssl = tls_context()
        await gw.start_site("wss")

    wss = gw.sites["wss"][1] if "wss" in gw.sites else None
    print(json.dumps({"port": rest_port, "ws": gw.sites["ws"][1], "wss": wss}), flush=True)
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
