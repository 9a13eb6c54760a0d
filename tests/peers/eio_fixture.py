#!/usr/bin/env python3
"""A fixture Engine.IO / Socket.IO server for livefeed's fault tests (tests/socketio_faults.rs).

Written from /work/shared/PROTOCOLS.md section 2 (Engine.IO revisions 3 and 4, Socket.IO
revisions 4 and 5, WebSocket transport only), not from what livefeed's client sends. Built on
Python `websockets` (pinned in requirements.txt).

Listens on 127.0.0.1, port 0; prints the port on the first stdout line and serves until it is
killed or its stdin closes. Engine.IO path: /socket.io/ (anything else: HTTP 400, engine.io
error code 0 "Transport unknown"); `transport` must be `websocket` (else 400, code 0).

The scenario comes from the extra query parameter `scenario` (default `healthy`). Every
scenario whose name does not start with `v3-` is an engine.io >= 4 server without allowEIO3:
a request without `EIO=4` is refused with HTTP 400 "Unsupported protocol version" (code 5),
as PROTOCOLS.md 2.2 says engine.io 6 does. `v3-` scenarios behave like engine.io 3.x, which
ignores `EIO` and always speaks revision 3.

Common behaviour (all scenarios):
- first frame: the open packet `0{...}`; revision 4 adds `maxPayload`, revision 3 does not;
- revision 3: the server joins the client to `/` at once (`40`); every scenario then waits
  for the client's CONNECT of a namespace (so a revision 3 client must ask for one other
  than `/`; the tests use `/v2`), and directs its packets to the first namespace joined;
- a namespace CONNECT from the client (`40<nsp>,[auth]`) is answered `40<nsp>,{"sid":...}`
  (revision 5) or `40<nsp>,` (revision 4);
- revision 3: a client ping `2<data>` is answered `3<data>` (except in v3-no-pong);
- in "echo mode", an EVENT `echo` from the client is sent back unchanged.

Scenarios (pingInterval/pingTimeout in ms):
  healthy          rev 4 (150/1000): pings every interval, echo mode
  v4-silent        rev 4 (200/100): joins the namespace, then never sends anything again
  v3-no-pong       rev 3 (200/100): sends `40`, joins the namespace, never answers pings
  v4-pings         rev 4 (100/400): after the join, sends `2` 8 times, one per interval, each
                   time waiting up to pingTimeout for `3`; then emits EVENT `report`
                   {"pings":8,"answered":N,"late":L,"pong_texts":[...],"client_pings":C}
                   on the joined namespace; then echo mode (and keeps pinging)
  v3-pongs         rev 3 (100/400): answers pings; once the client has pinged 4 times, emits
                   EVENT `report` {"client_pings":C,"client_pongs":P,"first_ping_ms":T};
                   then echo mode
  hostile rev 4 scenarios (25000/20000) -- after the namespace join, the server sends:
    eio-unknown-type         `9x` (no Engine.IO packet type 9)
    sio-bad-json             `42notjson` (EVENT whose data is not JSON)
    sio-unknown-type         `47["e",1]` (no Socket.IO packet type 7)
    attachment-mismatch      `451-<nsp>,["e",{placeholder 0},{placeholder 1}]`, then one binary
                             frame (1 attachment announced, 2 placeholders)
    attachment-unused        `452-<nsp>,["e",{placeholder 0}]`, then two binary frames
                             (2 attachments announced, 1 placeholder)
    text-during-attachments  `451-<nsp>,["e",{placeholder 0}]`, then a text EVENT instead of
                             the binary frame
    unannounced-binary       a binary frame that no BINARY_EVENT/ACK announced
    unknown-ack              waits for the client's EVENT `ask` with an ack id K; sends ACK
                             `43<nsp>,999[1]` (nobody asked for 999), then the real ACK
                             `43<nsp>,K["ok"]`, then EVENT `after` {"n":1}; then echo mode
    second-open              a second open packet
    event-not-array          `42<nsp>,{"a":1}` (EVENT data must be an array)
    event-name-not-string    `42<nsp>,[1,2]` (first element must be the event name)
    ack-id-overflow          `42<nsp>,18446744073709551615["big"]` (an EVENT asking for an ack
                             with id 2^64-1; real servers count from 0 and stay below 2^53)
  v3-binary-type   rev 3 (25000/20000): after the join, `451-<nsp>,["e",{placeholder 0}]`, then
                   a binary frame whose type byte is 2, not 4 (revision 3 binary messages
                   start with the type byte)
  huge-heartbeat   rev 4 with pingInterval = pingTimeout = 2^64-1 ms: joins, then echo mode
  hostile scenarios before any open packet:
    message-before-open      `40` before any open packet (and no open packet at all)
    open-missing-fields      `0{"sid":"x"}` (no pingInterval / pingTimeout)

When a connection ends, one JSON line is printed on stdout:
  {"scenario":..,"rev":3|4,"eio_query":..,"client_pings":[ms since open sent, ...],
   "client_pongs":[...same...],"pong_texts":[...],"closed_ms":ms since open sent,
   "namespaces":[...joined...],"other":[first 60 chars of client frames of other types]}
"""

import asyncio
import json
import os
import sys
import threading
import time
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

HOSTILE_AFTER_JOIN = {
    "eio-unknown-type",
    "sio-bad-json",
    "sio-unknown-type",
    "attachment-mismatch",
    "attachment-unused",
    "text-during-attachments",
    "unannounced-binary",
    "unknown-ack",
    "second-open",
    "event-not-array",
    "event-name-not-string",
    "ack-id-overflow",
    "v3-binary-type",
}
HOSTILE_BEFORE_OPEN = {"message-before-open", "open-missing-fields"}
SCENARIOS = {"healthy", "v4-silent", "v3-no-pong", "v4-pings", "v3-pongs", "huge-heartbeat"}
SCENARIOS |= HOSTILE_AFTER_JOIN | HOSTILE_BEFORE_OPEN

sid_counter = 0


def next_sid(prefix):
    global sid_counter
    sid_counter += 1
    return f"{prefix}{sid_counter:06d}fixture"


def placeholder(n):
    return {"_placeholder": True, "num": n}


def dumps(v):
    return json.dumps(v, separators=(",", ":"))


# ---------------------------------------------------------------------------------------------
# Socket.IO packets: <type>[<attachments>-][<nsp>,][<ack id>][<JSON>] (PROTOCOLS.md 2.3)


def decode_sio(text):
    """Decodes the Socket.IO packet inside an Engine.IO message; raises ValueError if bad."""
    if not text or not text[0].isdigit():
        raise ValueError("no packet type")
    kind = int(text[0])
    i = 1
    attachments = 0
    if kind in (5, 6):
        dash = text.index("-", i)
        attachments = int(text[i:dash])
        i = dash + 1
    nsp = "/"
    if i < len(text) and text[i] == "/":
        comma = text.find(",", i)
        end = len(text) if comma < 0 else comma
        nsp = text[i:end].split("?")[0]  # a revision 4 client may append a query
        i = end if comma < 0 else comma + 1
    j = i
    while j < len(text) and text[j].isdigit():
        j += 1
    ack = int(text[i:j]) if j > i else None
    data = json.loads(text[j:]) if j < len(text) else None
    return {"kind": kind, "nsp": nsp, "ack": ack, "data": data, "attachments": attachments}


def is_event(p, name):
    """Whether a decoded packet's data is an EVENT array named `name`."""
    return isinstance(p["data"], list) and p["data"][:1] == [name]


def encode_sio(kind, nsp="/", data=None, ack=None, attachments=None):
    """The Engine.IO message (leading `4`) carrying a Socket.IO packet."""
    s = f"4{kind}"
    if attachments is not None:
        s += f"{attachments}-"
    if nsp != "/":
        s += nsp + ","
    if ack is not None:
        s += str(ack)
    if data is not None:
        s += dumps(data)
    return s


# ---------------------------------------------------------------------------------------------


class Conn:
    """One Engine.IO connection: reads every client frame, keeps the heartbeat records."""

    def __init__(self, ws, scenario, rev, interval, timeout, eio_query):
        self.ws = ws
        self.scenario = scenario
        self.rev = rev
        self.interval = interval
        self.timeout = timeout
        self.eio_query = eio_query
        self.opened_at = None
        self.client_pings = []
        self.client_pongs = []
        self.pong_texts = []
        self.pong = asyncio.Event()
        self.other = []
        self.namespaces = []
        self.joined = asyncio.Event()
        self.closed = asyncio.Event()
        self.closed_ms = None
        self.echo = False
        self.answer_pings = rev == 3 and scenario != "v3-no-pong"
        self.packets = asyncio.Queue()  # decoded Socket.IO packets and binary frames

    def ms(self):
        return round((time.monotonic() - self.opened_at) * 1000, 1) if self.opened_at else None

    async def send_open(self, extra=None):
        info = {
            "sid": next_sid("e"),
            "upgrades": [],
            "pingInterval": self.interval,
            "pingTimeout": self.timeout,
        }
        if self.rev == 4:
            info["maxPayload"] = 1000000
        if extra:
            info.update(extra)
        await self.ws.send("0" + dumps(info))
        if self.opened_at is None:
            self.opened_at = time.monotonic()

    async def reader(self):
        try:
            async for msg in self.ws:
                if isinstance(msg, bytes):
                    # Revision 3: a type byte (4) first; revision 4: the data itself.
                    data = msg[1:] if self.rev == 3 and msg[:1] == b"\x04" else msg
                    self.packets.put_nowait(("binary", data))
                    continue
                kind, data = msg[:1], msg[1:]
                if kind == "2":
                    self.client_pings.append(self.ms())
                    if self.answer_pings:
                        await self.ws.send("3" + data)
                elif kind == "3":
                    self.client_pongs.append(self.ms())
                    self.pong_texts.append(msg)
                    self.pong.set()
                elif kind == "4":
                    await self.on_message(data)
                else:
                    self.other.append(msg[:60])
        except ConnectionClosed:
            pass
        finally:
            self.closed_ms = self.ms()
            self.closed.set()

    async def on_message(self, text):
        try:
            p = decode_sio(text)
        except (ValueError, json.JSONDecodeError):
            self.other.append("4" + text[:59])
            return
        if p["kind"] == 0:
            nsp = p["nsp"]
            self.namespaces.append(nsp)
            if self.rev == 4:
                await self.ws.send(encode_sio(0, nsp, {"sid": next_sid("s")}))
            else:
                await self.ws.send(encode_sio(0, nsp))
            self.joined.set()
        elif self.echo and p["kind"] == 2 and is_event(p, "echo"):
            await self.ws.send(encode_sio(2, p["nsp"], p["data"]))
        else:
            self.packets.put_nowait(("packet", p))

    def nsp(self):
        return self.namespaces[0] if self.namespaces else "/"

    async def ping_once(self):
        """Sends `2`, waits up to pingTimeout for `3`; returns whether it came in time."""
        self.pong.clear()
        await self.ws.send("2")
        try:
            await asyncio.wait_for(self.pong.wait(), self.timeout / 1000)
            return True
        except asyncio.TimeoutError:
            return False

    async def pinger(self):
        while True:
            await asyncio.sleep(self.interval / 1000)
            await self.ping_once()

    def report(self):
        return {
            "scenario": self.scenario,
            "rev": self.rev,
            "eio_query": self.eio_query,
            "client_pings": self.client_pings,
            "client_pongs": self.client_pongs,
            "pong_texts": self.pong_texts,
            "closed_ms": self.closed_ms,
            "namespaces": self.namespaces,
            "other": self.other,
        }


async def join(c):
    if c.rev == 3:
        await c.ws.send("40")  # revision 4 servers join every client to `/` unasked
    await c.joined.wait()


async def scenario_healthy(c):
    await join(c)
    c.echo = True
    await c.pinger()


async def scenario_v4_pings(c):
    await join(c)
    pings, answered, late = 8, 0, 0
    for _ in range(pings):
        await asyncio.sleep(c.interval / 1000)
        if await c.ping_once():
            answered += 1
        else:
            late += 1
    report = {
        "pings": pings,
        "answered": answered,
        "late": late,
        "pong_texts": c.pong_texts,
        "client_pings": len(c.client_pings),
    }
    await c.ws.send(encode_sio(2, c.nsp(), ["report", report]))
    c.echo = True
    await c.pinger()


async def scenario_v3_pongs(c):
    await join(c)
    deadline = time.monotonic() + 10
    while len(c.client_pings) < 4 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    report = {
        "client_pings": len(c.client_pings),
        "client_pongs": len(c.client_pongs),
        "first_ping_ms": c.client_pings[0] if c.client_pings else None,
    }
    await c.ws.send(encode_sio(2, c.nsp(), ["report", report]))
    c.echo = True
    await c.closed.wait()


async def scenario_echo(c):
    await join(c)
    c.echo = True
    await c.closed.wait()


async def scenario_silent(c):
    await join(c)
    await c.closed.wait()


async def scenario_hostile(c):
    await join(c)
    ws, nsp, s = c.ws, c.nsp(), c.scenario
    if s == "eio-unknown-type":
        await ws.send("9x")
    elif s == "sio-bad-json":
        await ws.send("42notjson")
    elif s == "sio-unknown-type":
        await ws.send('47["e",1]')
    elif s == "attachment-mismatch":
        await ws.send(encode_sio(5, nsp, ["e", placeholder(0), placeholder(1)], attachments=1))
        await ws.send(b"\x01\x02\x03")
    elif s == "attachment-unused":
        await ws.send(encode_sio(5, nsp, ["e", placeholder(0)], attachments=2))
        await ws.send(b"\x01\x02\x03")
        await ws.send(b"\x04\x05")
    elif s == "text-during-attachments":
        await ws.send(encode_sio(5, nsp, ["e", placeholder(0)], attachments=1))
        await ws.send(encode_sio(2, nsp, ["x"]))
    elif s == "unannounced-binary":
        await ws.send(b"\xde\xad\xbe\xef")
    elif s == "unknown-ack":
        while True:
            kind, p = await c.packets.get()
            if kind == "packet" and p["kind"] == 2 and is_event(p, "ask"):
                break
        await ws.send(encode_sio(3, p["nsp"], [1], ack=999))
        await ws.send(encode_sio(3, p["nsp"], ["ok"], ack=p["ack"]))
        await ws.send(encode_sio(2, p["nsp"], ["after", {"n": 1}]))
        c.echo = True
    elif s == "second-open":
        await c.send_open()
    elif s == "event-not-array":
        await ws.send(encode_sio(2, nsp) + dumps({"a": 1}))
    elif s == "event-name-not-string":
        await ws.send(encode_sio(2, nsp, [1, 2]))
    elif s == "v3-binary-type":
        await ws.send(encode_sio(5, nsp, ["e", placeholder(0)], attachments=1))
        await ws.send(b"\x02\x01\x02")  # revision 3 binary frames start with type 4
    elif s == "ack-id-overflow":
        await ws.send(encode_sio(2, nsp, ["big"], ack=2**64 - 1))
    await c.closed.wait()


TIMINGS = {  # scenario -> (revision, pingInterval, pingTimeout)
    "healthy": (4, 150, 1000),
    "v4-silent": (4, 200, 100),
    "v3-no-pong": (3, 200, 100),
    "v4-pings": (4, 100, 400),
    "v3-pongs": (3, 100, 400),
    "v3-binary-type": (3, 25000, 20000),
    "huge-heartbeat": (4, 2**64 - 1, 2**64 - 1),
}


def query_of(request):
    url = urlsplit(request.path)
    return url.path, {k: v[-1] for k, v in parse_qs(url.query).items()}


def process_request(connection, request):
    path, q = query_of(request)
    if path != "/socket.io/" or q.get("transport") != "websocket":
        return connection.respond(
            HTTPStatus.BAD_REQUEST, '{"code":0,"message":"Transport unknown"}'
        )
    scenario = q.get("scenario", "healthy")
    if scenario not in SCENARIOS:
        return connection.respond(HTTPStatus.BAD_REQUEST, f"unknown scenario {scenario}\n")
    if not scenario.startswith("v3-") and q.get("EIO") != "4":
        return connection.respond(
            HTTPStatus.BAD_REQUEST, '{"code":5,"message":"Unsupported protocol version"}'
        )
    return None


async def handler(ws):
    _, q = query_of(ws.request)
    scenario = q.get("scenario", "healthy")
    rev, interval, timeout = TIMINGS.get(scenario, (4, 25000, 20000))
    c = Conn(ws, scenario, rev, interval, timeout, q.get("EIO"))
    reader = asyncio.create_task(c.reader())
    try:
        if scenario == "message-before-open":
            c.opened_at = time.monotonic()
            await ws.send("40")
            await c.closed.wait()
        elif scenario == "open-missing-fields":
            c.opened_at = time.monotonic()
            await ws.send('0{"sid":"x"}')
            await c.closed.wait()
        else:
            await c.send_open()
            run = {
                "healthy": scenario_healthy,
                "v4-silent": scenario_silent,
                "v3-no-pong": scenario_silent,
                "v4-pings": scenario_v4_pings,
                "v3-pongs": scenario_v3_pongs,
                "huge-heartbeat": scenario_echo,
            }.get(scenario, scenario_hostile)
            work = asyncio.create_task(run(c))
            work.add_done_callback(log_failure)
            await c.closed.wait()
            work.cancel()
    except ConnectionClosed:
        pass
    finally:
        reader.cancel()
        print(dumps(c.report()), flush=True)


def log_failure(task):
    """A scenario that fails for another reason than the connection ending is a fixture bug."""
    if not task.cancelled() and task.exception() is not None:
        e = task.exception()
        if not isinstance(e, ConnectionClosed):
            print(f"eio_fixture: scenario failed: {e!r}", file=sys.stderr, flush=True)


def exit_when_stdin_closes():
    try:
        sys.stdin.buffer.read()
    finally:
        os._exit(0)


async def main():
    async with serve(
        handler,
        "127.0.0.1",
        0,
        process_request=process_request,
        ping_interval=None,  # Engine.IO has its own heartbeat
        max_size=4 << 20,
    ) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
