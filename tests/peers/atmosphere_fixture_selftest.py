#!/usr/bin/env python3
"""Self-check of tests/peers/atmosphere_fixture.py with aiohttp's client (not part of CI).

Starts the fixture with short heartbeats and exercises: REST auth, the 501 version refusal,
the handshake (plain and length-prefixed), reconnect without handshake, subscribe / wrong
hash / unsubscribe, server heartbeats, the client-heartbeat watchdog, split / unicode-split /
batch framing (parsed by an independent UTF-16 length parser), silence, bad input, logout and
error 4, long-polling with POST and X-Atmosphere-Post-Body, WebSocket refusal, and the close
request. Prints one line per check; exit status 0 when all pass. Runs in a few seconds.

    python3 tests/peers/atmosphere_fixture_selftest.py [--verbose]
"""

import asyncio
import json
import os
import re
import subprocess
import sys
import time

import aiohttp

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = "0123456789abcdef0123456789abcdef"
FRAMEWORK = "2.3.6-javascript"
HANDSHAKE_RE = re.compile(r"^([0-9a-f-]{36})\|(\d+)\|X\|$")
T0 = time.monotonic()
passed = 0


def check(cond, what):
    global passed
    if not cond:
        print(f"FAIL {what}", flush=True)
        raise SystemExit(1)
    passed += 1
    print(f"ok   {what}", flush=True)


def u16(s):
    return len(s.encode("utf-16-le")) // 2


class LengthParser:
    """`<len>|<msg>` with len in UTF-16 code units; a frame equal to X with nothing pending
    is a heartbeat."""

    def __init__(self):
        self.buf = ""

    def feed(self, frame):
        if self.buf == "" and frame == "X":
            return ["<heartbeat>"]
        self.buf += frame
        out = []
        while True:
            i = self.buf.find("|")
            if i < 0:
                assert self.buf.isdigit() or self.buf == "", f"bad prefix {self.buf[:20]!r}"
                return out
            head = self.buf[:i]
            if not head.isdigit():
                raise ValueError(f"non-numeric length {head!r}")
            n = int(head)
            rest = self.buf[i + 1:]
            cnt = j = 0
            while j < len(rest) and cnt < n:
                cnt += 2 if ord(rest[j]) > 0xFFFF else 1
                j += 1
            if cnt < n:
                return out
            out.append(rest[:j])
            self.buf = rest[j:]


class Fixture:
    def __init__(self, args):
        self.p = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "atmosphere_fixture.py"), *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.port = json.loads(self.p.stdout.readline())["port"]
        self.base = f"http://127.0.0.1:{self.port}"

    def url(self, tid="0", transport="websocket", tracked=False, framework=FRAMEWORK, extra=""):
        u = (f"{self.base}/v2/event/subscription?X-Atmosphere-tracking-id={tid}"
             f"&X-Atmosphere-Framework={framework}&X-Atmosphere-Transport={transport}"
             f"&Content-Type=application/json&X-atmo-protocol=true")
        if tracked:
            u += "&X-Atmosphere-TrackMessageSize=true"
        return u + extra

    def stop(self):
        self.p.stdin.close()
        try:
            self.p.wait(3)
        except subprocess.TimeoutExpired:
            self.p.kill()


async def ctl(s, fx, name, **body):
    async with s.post(f"{fx.base}/_control/{name}", json=body) as r:
        assert r.status == 200, (name, r.status, await r.text())
        return await r.json()


async def recv_text(ws, timeout=1.0):
    m = await ws.receive(timeout)
    if m.type != aiohttp.WSMsgType.TEXT:
        return None
    return m.data


async def wait_close(ws, timeout=2.0):
    """Skips text frames (e.g. server heartbeats) until the close; the close message type."""
    deadline = time.monotonic() + timeout
    while True:
        m = await ws.receive(max(0.01, deadline - time.monotonic()))
        if m.type != aiohttp.WSMsgType.TEXT:
            return m.type


async def recv_messages(ws, parser, want, timeout=2.0):
    """Messages (parsed via parser) until `want` non-heartbeat ones arrived; also frame count."""
    msgs, frames = [], 0
    deadline = time.monotonic() + timeout
    while len([m for m in msgs if m != "<heartbeat>"]) < want:
        t = await recv_text(ws, max(0.01, deadline - time.monotonic()))
        assert t is not None, f"closed/timeout after {msgs}"
        frames += 1
        msgs += parser.feed(t) if parser else [t]
    return [json.loads(m) for m in msgs if m != "<heartbeat>"], frames


def sub(hash_=KEY, ids=(15564, 15565, 99999)):
    return json.dumps({"action": "subscribe", "hash": hash_, "requests": [
        {"type": "state", "trackers": list(ids), "format": "full"},
        {"type": "state_batch", "target": {"type": "all"}, "rate_limit": "5s", "format": "compact"}]})


async def heartbeats(ws, every=0.1):
    try:
        while not ws.closed:
            await ws.send_str("X")
            await asyncio.sleep(every)
    except Exception:
        pass


async def main(verbose):
    args = ["--apikey", KEY, "--user", "alice:s3cret", "--client-heartbeat-ms", "300",
            "--server-heartbeat-s", "0.4", "--hold-s", "0.5", "--batch-window-ms", "30"]
    fx = Fixture(args + (["--verbose"] if verbose else []))
    try:
        async with aiohttp.ClientSession() as s:
            await run(s, fx)
    finally:
        fx.stop()


async def run(s, fx):
    # --- REST auth
    async with s.post(f"{fx.base}/v2/user/auth", json={"login": "alice", "password": "s3cret"}) as r:
        j = await r.json()
        check(r.status == 200 and j["success"] and j["type"] == "authenticated"
              and re.fullmatch(r"[0-9a-f]{32}", j["hash"]), "auth ok -> 32-hex hash")
        session_hash = j["hash"]
    async with s.post(f"{fx.base}/v2/user/auth", json={"login": "alice", "password": "x"}) as r:
        j = await r.json()
        check(r.status == 400 and j == {"success": False, "status": {"code": 4, "description":
              "User or API key not found or session ended"}}, "wrong password -> 400 code 4")

    # --- version refusal
    for fw in ("2.2.0-javascript", "garbage"):
        async with s.get(fx.url(framework=fw), headers={"Connection": "Upgrade", "Upgrade": "websocket",
                         "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) as r:
            check(r.status == 501 and r.headers.get("X-Atmosphere-error") ==
                  "Atmosphere Protocol version not supported.", f"framework {fw} -> 501 + X-Atmosphere-error")
    async with s.get(fx.url(framework="2.2.0", transport="long-polling")) as r:
        check(r.status == 501, "long-polling with 2.2.0 -> 501")

    # --- plain websocket: handshake, subscribe, heartbeats
    ws = await s.ws_connect(fx.url())
    hs = await recv_text(ws)
    m = HANDSHAKE_RE.match(hs or "")
    check(m and m.group(2) == "300", f"handshake {hs!r}")
    uuid = m.group(1)
    hb = asyncio.ensure_future(heartbeats(ws))
    await ws.send_str(sub(hash_="f" * 32))
    (err,), _ = await recv_messages(ws, None, 1)
    check(err["type"] == "error" and err["status"] == {"code": 3, "description": "Wrong hash"}
          and err["action"] == "subscription/subscribe", "wrong hash -> error 3")
    await ws.send_str(sub())
    msgs, _ = await recv_messages(ws, None, 3)
    resp = msgs[0]
    check(resp["type"] == "response" and resp["events"] == ["state", "state_batch"]
          and resp["data"]["state"]["value"] == {"15564": "normal", "15565": "blocked", "99999": "unknown"}
          and resp["data"]["state_batch"]["value"]["21080"] == "normal", "subscribe response with statuses")
    check(msgs[1]["event"] == "state" and msgs[1]["data"]["source_id"] == 1015564
          and msgs[2]["event"] == "state_batch" and len(msgs[2]["data"]) == 3,
          "initial state (normal tracker only) + state_batch")
    t = time.monotonic()
    x = await recv_text(ws, 1.5)
    check(x == "X" and 0.3 < time.monotonic() - t < 1.2, "server heartbeat X after ~0.4 s idle")
    unsub = {"action": "unsubscribe", "hash": KEY, "requests": [{"type": "state", "trackers": [15564]}]}
    await ws.send_str(json.dumps(unsub))
    (u,), _ = await recv_messages(ws, None, 1)
    check(u["type"] == "response" and u["action"] == "subscription/unsubscribe", "unsubscribe answered")
    await ws.send_str("not json")
    (e5,), _ = await recv_messages(ws, None, 1)
    check(e5["status"]["code"] == 5 and e5["action"] == "null", "non-JSON client text -> error 5")
    hb.cancel()
    await ws.close()

    # --- reconnect with the uuid: no handshake; unknown uuid adopted
    ws = await s.ws_connect(fx.url(tid=uuid))
    hb = asyncio.ensure_future(heartbeats(ws))
    await ws.send_str(sub())
    msgs, _ = await recv_messages(ws, None, 3)
    check(msgs[0]["type"] == "response", "reconnect with known uuid: no handshake, first frame is the response")
    # --- control event / lifecycle
    r = await ctl(s, fx, "event", event="lifecycle", lifecycle_event="unblock", tracker_ids=[15565])
    msgs, _ = await recv_messages(ws, None, 3)
    check(msgs[0]["event"] == "lifecycle" and msgs[0]["data"]["lifecycle_event"] == "unblock"
          and msgs[1]["event"] == "state" and msgs[2]["event"] == "state_batch", "unblock -> lifecycle + state re-sent")
    # --- logout / error 4
    await ctl(s, fx, "logout", uuid=uuid)
    (lo,), _ = await recv_messages(ws, None, 1)
    check(lo == {"type": "event", "event": "logout", "data": "session closed"}, "logout event")
    await ws.send_str(sub())
    (e4,), _ = await recv_messages(ws, None, 1)
    check(e4["type"] == "error" and e4["status"]["code"] == 4, "revoked hash -> error 4")
    await ctl(s, fx, "config", apikeys=[KEY])  # restore the key
    hb.cancel()
    await ws.close()

    # --- watchdog: no client heartbeats -> dropped after 2.5 x 300 ms
    ws = await s.ws_connect(fx.url())
    await recv_text(ws)
    t = time.monotonic()
    while True:
        mm = await ws.receive(3)
        if mm.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            break
    dt = time.monotonic() - t
    st = await ctl(s, fx, "stats")
    check(0.7 < dt < 1.6 and ws.close_code == 1001 and st["totals"]["heartbeat_drops"] == 1,
          f"missing heartbeat -> closed 1001 after {dt:.2f} s, counted")

    # --- length framing: handshake, split, unicode split, batch
    ws = await s.ws_connect(fx.url(tracked=True))
    hs = await recv_text(ws)
    n, _, rest = hs.partition("|")
    check(int(n) == u16(rest) and HANDSHAKE_RE.match(rest), f"tracked handshake {hs!r}")
    hb = asyncio.ensure_future(heartbeats(ws))
    p = LengthParser()
    for style in ("sizes", "unicode"):
        await ctl(s, fx, "config", framing="split", split_style=style)
        await ws.send_str(sub(ids=(15564, 15568, 21080)))
        msgs, frames = await recv_messages(ws, p, 5)
        labels = [m["data"]["label"] for m in msgs[1:4]]
        check(frames > 20 and msgs[0]["type"] == "response" and "😀" in "".join(labels) and "é" in "".join(labels),
              f"split/{style}: {len(msgs)} messages from {frames} frames, labels {labels}")
    await ctl(s, fx, "config", framing="batch")
    await ws.send_str(sub(ids=(15564, 15568, 21080)))
    msgs, frames = await recv_messages(ws, p, 5)
    check(frames == 1 and len(msgs) == 5, f"batch: {len(msgs)} messages in {frames} frame")
    await ctl(s, fx, "config", framing="split+batch", split_sizes=[7])
    await ws.send_str(sub(ids=(15564, 15568, 21080)))
    msgs, frames = await recv_messages(ws, p, 5)
    check(len(msgs) == 5 and frames > 10, f"split+batch: {len(msgs)} messages from {frames} frames")
    await ctl(s, fx, "config", framing="plain")
    await ctl(s, fx, "bad", kind="nonnumeric-length")
    raw = await recv_text(ws)
    check(raw.startswith("abc|{"), "bad nonnumeric-length frame")
    await ctl(s, fx, "bad", kind="overlong-length")
    raw = await recv_text(ws)
    n, _, rest = raw.partition("|")
    closing = await wait_close(ws)
    check(int(n) == u16(rest) + 100 and closing in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED),
          "bad overlong-length frame, then close")
    hb.cancel()

    # --- silence: nothing at all (not even server heartbeats), then back
    ws = await s.ws_connect(fx.url())
    await recv_text(ws)
    hb = asyncio.ensure_future(heartbeats(ws))
    await ctl(s, fx, "config", silent=True)
    got = None
    try:
        got = await ws.receive(0.9)
    except asyncio.TimeoutError:
        pass
    check(got is None, "silent: no frame for 0.9 s (heartbeat period 0.4 s)")
    await ctl(s, fx, "config", silent=False)
    x = await recv_text(ws, 1.0)
    check(x == "X", "silence lifted: heartbeats again")
    await ctl(s, fx, "drop", uuid=None)
    closing = await wait_close(ws)
    check(closing in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED) and ws.close_code == 1001,
          "drop control closes with 1001")
    hb.cancel()

    # --- bad handshake
    await ctl(s, fx, "bad", kind="handshake-missing-fields")
    ws = await s.ws_connect(fx.url())
    hs = await recv_text(ws)
    check(re.fullmatch(r"[0-9a-f-]{36}\|", hs or ""), f"handshake with missing fields {hs!r}")
    await ws.close()

    # --- refuse websocket -> fallback to long-polling
    await ctl(s, fx, "config", refuse_websocket=True)
    try:
        await s.ws_connect(fx.url())
        check(False, "websocket refused")
    except aiohttp.WSServerHandshakeError as e:
        check(e.status == 501 and e.headers.get("X-Atmosphere-error") == "Websocket protocol not supported",
              "websocket refused with 501")
    async with s.get(fx.url(transport="long-polling", tracked=True)) as r:
        body = await r.text()
        n, _, rest = body.partition("|")
        m = HANDSHAKE_RE.match(rest)
        check(r.status == 200 and m and int(n) == u16(rest), f"long-polling handshake {body!r}")
        lp = m.group(1)
    poll = fx.url(tid=lp, transport="long-polling", tracked=True)
    async with s.post(poll, data=sub(ids=(15564,))) as r:
        check(r.status == 200, "long-polling POST subscribe")
    p = LengthParser()
    msgs = []
    while len(msgs) < 3:
        async with s.get(poll) as r:
            msgs += p.feed(await r.text())
    msgs = [json.loads(m) for m in msgs]
    check(msgs[0]["type"] == "response" and msgs[1]["event"] == "state" and msgs[2]["event"] == "state_batch",
          "long-polling GETs deliver response + events")
    async with s.get(poll + "&X-Atmosphere-Post-Body=X") as r:
        check(r.status == 200, "X-Atmosphere-Post-Body heartbeat")
    t = time.monotonic()
    async with s.get(poll) as r:
        body = await r.text()
    dt = time.monotonic() - t
    check(body == "" and 0.4 < dt < 1.2, f"idle long-poll -> empty 200 after {dt:.2f} s")

    # --- close request
    close = f"{fx.base}/v2/event/subscription?X-Atmosphere-Transport=close&X-Atmosphere-tracking-id={lp}"
    async with s.get(close) as r:
        check(r.status == 200, "close request -> 200")

    st = await ctl(s, fx, "stats")
    tot = st["totals"]
    lpc = [c for c in st["connections"] if c["uuid"] == lp][0]
    check(tot["close_requests"] == 1 and st["close_requests"][0]["known"] and not lpc["open"]
          and lpc["heartbeats"] == 1 and tot["posts"] == 2 and st["subscribes"][-1]["json"]["action"] == "subscribe"
          and tot["version_refusals"] == 3 and tot["websocket_refusals"] == 1,
          f"stats: {json.dumps({k: v for k, v in tot.items() if v})}")


if __name__ == "__main__":
    asyncio.run(main("--verbose" in sys.argv))
    print(f"all {passed} checks passed in {time.monotonic() - T0:.2f} s")
