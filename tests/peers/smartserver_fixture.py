#!/usr/bin/env python3
"""A SmartServer IoT IAP/WS stand-in (aiohttp, pinned in requirements.txt), written from
PROTOCOLS.md §3 (not from livefeed's client) for livefeed's tests.

Listens on 127.0.0.1, port 0. The first stdout line is the service port; the second is
`ctl <port>`: a plain-HTTP port serving the same application, so that tests can reach the
control endpoints without TLS when the service port speaks TLS. Serves until it is killed
or its stdin closes. Nothing is logged per request.

What the server does (PROTOCOLS.md §3):
  POST /iap/auth/login      JSON {"username","password"}. Right: 200 and a fresh session
                            cookie `cmsSID` (Path=/, HttpOnly, Secure under TLS; none with
                            --no-cookie, a broken server). Wrong: 401.
                            Not a JSON object with string members: 400.
  POST /iap/auth/logout     forgets the session of the cookie sent; 200.
  PUT  /iap/dp/updates/subscribe
                            needs a valid cookie (else 401); the body must be a JSON array of
                            strings (else 400). It replaces the subscription of the login
                            (one per user: the last subscriber wins). Answers 204 (or the
                            status given with --subscribe-status).
  GET  /iap/ws              WebSocket upgrade; needs a valid cookie, else 401 before the
                            upgrade (or, with --ws-unauth close, the socket opens and closes
                            at once with 1008). Without a query it is the general-purpose
                            socket: the server sends `{"action":..,"payload":..}` frames and
                            ignores what the client sends. With a query it is a data-log
                            socket (below).

Data-log sockets (§3.4): the query's `value` must be `*+COND[&COND]`, COND being `utc` with
one of > >= => < <= == and a timestamp `YYYY-MM-DDTHH:MM:SS.mmm` (anything else: 400 before
the upgrade); `dev`, `blockName`, `blockIndex`, `dpName` are accepted and ignored. The log
holds --log-entries entries (default 4) one hour apart from 2026-01-01T00:30:00.000, for
datapoints `nvoTemp` (even) and `nvoHumidity` (odd) of device `Sensor 1`; those inside the
window are sent newest first (entries may arrive out of order, §3.4). Then, by
--datalog-mode:
  end          the JSON string "end", then a close with 1000 (the documented behaviour)
  early-close  a close with 1000 and no "end"
  drop         the TCP connection is cut, no close frame
  garbage      the frame `not json` before the entries, then as `end`
  end-at-once  as `end`, but the entries, "end", the close frame and the end of the TCP
               stream leave at once (a client reads them all in one go)

Control endpoints (no cookie needed; on both ports):
  GET  /_ctl/stats          JSON counters: logins, login_failures, logouts, puts (each
                            {"status","body"} in order), ws_opens, ws_refused, live (open
                            general-purpose sockets), datalog_queries (the decoded `value`
                            of each accepted query), ws_cookies (the cmsSID values the
                            upgrades carried, "" when none)
  POST /_ctl/expire         forgets every session (as a session timeout would). With
                            ?close=CODE, also closes every open general-purpose socket with
                            that code.
  POST /_ctl/update         body {"updates": [[qualifier, value], ...]}: every open
                            general-purpose socket gets one UPD:DATAPOINT frame with the
                            entries its login is subscribed to (none: no frame). Answers
                            {"sent": sockets, "entries": entries sent in all}.
  POST /_ctl/push           sends the body, verbatim, as a text frame on every open
                            general-purpose socket; ?binary=1 sends it as a binary frame.
                            Answers {"sent": sockets}.
  POST /_ctl/take-over      body: a JSON array; replaces the subscription of --user as another
                            client with the same login would.
  POST /_ctl/password       body: the new password of --user (as an administrator changing it).
"""

import argparse
import asyncio
import json
import os
import re
import secrets
import socket
import ssl
import sys
import tempfile
import threading
from datetime import datetime, timedelta, timezone

from aiohttp import WSMsgType, web

TIMESTAMP = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}"
COND = re.compile(rf"^utc(>=|=>|<=|==|>|<)({TIMESTAMP})$")

args = None
sessions = {}  # cmsSID -> user
subscriptions = {}  # user -> [qualifier]
live = {}  # WebSocketResponse -> user
stats = {
    "logins": 0,
    "login_failures": 0,
    "logouts": 0,
    "puts": [],
    "ws_opens": 0,
    "ws_refused": 0,
    "datalog_queries": [],
    "ws_cookies": [],
}


def user_of(request):
    return sessions.get(request.cookies.get("cmsSID", ""))


async def login(request):
    try:
        body = await request.json()
        user, password = body["username"], body["password"]
        if not isinstance(user, str) or not isinstance(password, str):
            raise ValueError("not strings")
    except Exception:
        return web.Response(status=400, text="bad login request")
    if (user, password) != (args.user, args.password):
        stats["login_failures"] += 1
        return web.Response(status=401, text="wrong username or password")
    stats["logins"] += 1
    sid = secrets.token_hex(16)
    sessions[sid] = user
    resp = web.json_response({"status": "ok"})
    if not args.no_cookie:
        resp.set_cookie("cmsSID", sid, path="/", httponly=True, secure=args.tls_env)
    return resp


async def logout(request):
    sessions.pop(request.cookies.get("cmsSID", ""), None)
    stats["logouts"] += 1
    return web.Response(status=200)


async def subscribe(request):
    user = user_of(request)
    raw = await request.text()
    if user is None:
        stats["puts"].append({"status": 401, "body": raw})
        return web.Response(status=401, text="not logged in")
    try:
        names = json.loads(raw)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError("not a list of strings")
    except ValueError:
        stats["puts"].append({"status": 400, "body": raw})
        return web.Response(status=400, text="expected a JSON array of datapoint names")
    stats["puts"].append({"status": args.subscribe_status, "body": names})
    subscriptions[user] = names
    return web.Response(status=args.subscribe_status)


def parse_window(value):
    """The conditions of a `value` filter, or None if it is not one this server knows."""
    if value is None or not value.startswith("*+"):
        return None
    conds = []
    for part in value[2:].split("&"):
        m = COND.match(part)
        if m is None:
            return None
        conds.append((m.group(1), m.group(2)))
    return conds


def inside(utc, conds):
    ops = {
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
        "=>": lambda a, b: a >= b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        "==": lambda a, b: a == b,
    }
    return all(ops[op](utc, ts) for op, ts in conds)  # fixed-width timestamps sort as text


def text_frame(payload):
    """An unmasked text frame (payloads here stay under 64 KiB)."""
    if len(payload) < 126:
        return bytes([0x81, len(payload)]) + payload
    return bytes([0x81, 126]) + len(payload).to_bytes(2, "big") + payload


def log_entries():
    start = datetime(2026, 1, 1, 0, 30)
    for i in range(args.log_entries):
        utc = (start + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%S.000")
        yield {
            "deviceName": "Sensor 1",
            "blockName": "TempSensor",
            "blockIndex": 0,
            "datapointName": "nvoTemp" if i % 2 == 0 else "nvoHumidity",
            "utc": utc,
            "value": 20 + i,
        }


async def websocket(request):
    stats["ws_cookies"].append(request.cookies.get("cmsSID", ""))
    user = user_of(request)
    datalog = bool(request.query_string)
    conds = None
    if datalog:
        conds = parse_window(request.query.get("value"))
        if conds is None:
            return web.Response(status=400, text="bad data-log query")
    if user is None and args.ws_unauth == "401":
        stats["ws_refused"] += 1
        return web.Response(status=401, text="not logged in")
    ws = web.WebSocketResponse(autoping=True)
    transport = request.transport  # the request lets go of it once upgraded
    await ws.prepare(request)
    if user is None:
        stats["ws_refused"] += 1
        await ws.close(code=1008, message=b"not logged in")
        return ws
    stats["ws_opens"] += 1
    if datalog:
        stats["datalog_queries"].append(request.query["value"])
        await datalog_socket(transport, ws, conds)
        return ws
    live[ws] = user
    try:
        async for msg in ws:
            if msg.type == WSMsgType.ERROR:
                break  # client text is ignored (§3.2)
    finally:
        live.pop(ws, None)
    return ws


async def datalog_socket(transport, ws, conds):
    mode = args.datalog_mode
    if mode == "garbage":
        await ws.send_str("not json")
    entries = [json.dumps(e) for e in log_entries() if inside(e["utc"], conds)]
    entries.reverse()
    if mode == "end-at-once":
        # Unmasked server frames in one write: the entries, `"end"`, then close 1000.
        out = b"".join(text_frame(e.encode()) for e in entries)
        transport.write(out + text_frame(b'"end"') + b"\x88\x02\x03\xe8")
        transport.close()  # FIN right behind the close frame
        return
    for entry in entries:
        await ws.send_str(entry)
    if mode == "drop":
        transport.abort()
        return
    if mode in ("end", "garbage"):
        await ws.send_str(json.dumps("end"))
    await ws.close(code=1000)


async def ctl_stats(request):
    return web.json_response({**stats, "live": len(live)})


async def ctl_expire(request):
    sessions.clear()
    code = request.query.get("close")
    if code is not None:
        for ws in list(live):
            await ws.close(code=int(code), message=b"session expired")
    return web.json_response({"live": len(live)})


async def ctl_update(request):
    body = await request.json()
    sent = entries = 0
    for ws, user in list(live.items()):
        wanted = subscriptions.get(user, [])
        payload = [
            {
                "datapointQualifier": q,
                "value": v,
                "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            }
            for q, v in body["updates"]
            if q in wanted
        ]
        if payload:
            await ws.send_str(json.dumps({"action": "UPD:DATAPOINT", "payload": payload}))
            sent += 1
            entries += len(payload)
    return web.json_response({"sent": sent, "entries": entries})


async def ctl_push(request):
    body = await request.read()
    binary = request.query.get("binary") == "1"
    for ws in list(live):
        if binary:
            await ws.send_bytes(body)
        else:
            await ws.send_str(body.decode("utf-8"))
    return web.json_response({"sent": len(live)})


async def ctl_password(request):
    args.password = await request.text()
    return web.json_response({"ok": True})


async def ctl_take_over(request):
    subscriptions[args.user] = await request.json()
    return web.json_response({"ok": True})


def bound_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    return s


def tls_context():
    with tempfile.TemporaryDirectory() as d:
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        with open(cert, "w") as f:
            f.write(os.environ["LF_TLS_CERT"])
        with open(key, "w") as f:
            f.write(os.environ["LF_TLS_KEY"])
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
    return ctx


def exit_when_stdin_closes():
    try:
        sys.stdin.buffer.read()
    finally:
        os._exit(0)


async def main():
    app = web.Application()
    app.router.add_post("/iap/auth/login", login)
    app.router.add_post("/iap/auth/logout", logout)
    app.router.add_put("/iap/dp/updates/subscribe", subscribe)
    app.router.add_get("/iap/ws", websocket)
    app.router.add_get("/_ctl/stats", ctl_stats)
    app.router.add_post("/_ctl/expire", ctl_expire)
    app.router.add_post("/_ctl/update", ctl_update)
    app.router.add_post("/_ctl/push", ctl_push)
    app.router.add_post("/_ctl/take-over", ctl_take_over)
    app.router.add_post("/_ctl/password", ctl_password)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    main_sock, ctl_sock = bound_socket(), bound_socket()
    ctx = tls_context() if args.tls_env else None
    await web.SockSite(runner, main_sock, ssl_context=ctx).start()
    await web.SockSite(runner, ctl_sock).start()
    print(main_sock.getsockname()[1], flush=True)
    print(f"ctl {ctl_sock.getsockname()[1]}", flush=True)
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--user", default="gateway")
    p.add_argument("--password", default="secret")
    p.add_argument("--tls-env", action="store_true",
                   help="serve TLS with the PEM chain and key in LF_TLS_CERT and LF_TLS_KEY")
    p.add_argument("--ws-unauth", choices=["401", "close"], default="401")
    p.add_argument("--no-cookie", action="store_true",
                   help="a broken server: the login succeeds but sets no cookie")
    p.add_argument("--subscribe-status", type=int, default=204)
    p.add_argument("--log-entries", type=int, default=4)
    p.add_argument("--datalog-mode", choices=["end", "early-close", "drop", "garbage", "end-at-once"],
                   default="end")
    args = p.parse_args()
    asyncio.run(main())
