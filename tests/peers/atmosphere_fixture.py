#!/usr/bin/env python3
"""A fixture Atmosphere-framework server speaking the Navixy WebSocket API, for livefeed's tests.

Written from /work/shared/PROTOCOLS.md section 5 only (not from what livefeed's client sends).
Python 3.11 + aiohttp 3.13.2 (tests/peers/requirements.txt): HTTP, WebSocket and long-polling
on one port.

Start-up: listens on 127.0.0.1 port 0, prints `{"port": N}` as the first (and only) stdout
line, runs until its stdin closes or it is killed. `--verbose` logs frames and requests to
stderr; otherwise nothing is logged per message.

Times in this document: `ms` = milliseconds, `s` = seconds (floats accepted everywhere).

=============================================================================================
COMMAND LINE
=============================================================================================
  --base PATH                 REST/socket base path (default /v2): POST <base>/user/auth,
                              socket at <base>/event/subscription
  --apikey HASH               a valid API key hash (repeatable; none by default)
  --user LOGIN:PASSWORD       a valid user for <base>/user/auth (repeatable; none by default)
  --auth-error-code N         status.code for wrong login/password (default 4, see CHOICES)
  --client-heartbeat-ms N     client heartbeat interval announced in the handshake (default
                              30000; 0 = client heartbeats off, no watchdog)
  --heartbeat-grace F         a WebSocket connection from which no text frame arrived for
                              more than F x interval is dropped (default 2.5)
  --server-heartbeat-s S      server idle time after which the padding is written raw
                              (default 60; 0 = never)
  --padding STR               padding / heartbeat string (default X)
  --hold-s S                  long-polling: how long a data GET is held before an empty
                              200 (default 10)
  --refuse-websocket          refuse WebSocket upgrades (clients must fall back)
  --refuse-websocket-status N status used for the refusal (default 501, see CHOICES)
  --no-version-check          accept any X-Atmosphere-Framework (enforcement is the default)
  --unknown-uuid adopt|refuse what to do with a non-zero tracking id the fixture never
                              issued (default adopt, see CHOICES)
  --framing MODE              plain | split | batch | split+batch (default plain)
  --split-style sizes|unicode how split mode cuts (default sizes)
  --split-sizes LIST          comma list of piece sizes in code points (default 1,2,3,5,8,13)
  --split-delay-ms N          pause between the pieces of one split frame (default 0)
  --split-handshake           split mode also splits the handshake frame
  --batch-window-ms N         batch mode: how long to collect messages (default 50)
  --batch-max N               batch mode: at most N messages per frame (default 0 = no limit)
  --trackers LIST             comma list of the account's tracker ids (default
                              15564,15565,15568,21080)
  --blocked LIST / --unknown LIST / --disallowed LIST
                              tracker ids with that status (default: 15565 blocked, others
                              none; any id not in --trackers is "unknown" anyway)
  --event-interval-s S        every S seconds push one update per subscribed event type to
                              every subscribed connection (default 0 = only initial events
                              and control-triggered ones)
  --doc-quirks                emit the documented doc inconsistencies (PROTOCOLS 5.6): the
                              response "events" list is empty strings and readings_batch
                              events are named "state_batch"
  --silent                    start silent (see /_control/config "silent")
  --verbose                   log to stderr

Every command-line setting can also be changed at run time through /_control/config (keys are
the option names with "_" for "-": client_heartbeat_ms, heartbeat_grace, server_heartbeat_s,
padding, hold_s, refuse_websocket, refuse_websocket_status, version_check, unknown_uuid,
framing, split_style, split_sizes, split_delay_ms, split_handshake, batch_window_ms,
batch_max, trackers, blocked, unknown, disallowed, event_interval_s, doc_quirks, silent,
apikeys, users {login: password}, auth_error_code). Connection-level values
(heartbeat intervals, tracked-ness) are fixed when a connection opens; framing, silent and
tracker statuses apply at once.

=============================================================================================
NAVIXY REST
=============================================================================================
POST <base>/user/auth  with {"login":..,"password":..} as a JSON body (form body or query
parameters also accepted):
  - valid    -> 200 {"success":true,"type":"authenticated","hash":"<32 lowercase hex>"}
               (a new session hash per call; it is valid for subscribe until revoked)
  - wrong    -> 400 {"success":false,"status":{"code":4,"description":"User or API key not
               found or session ended"}}
  - missing login or password -> 400 code 7 "Invalid parameters"
Any other path under <base> (not the socket) -> 404 with a code 7 error body.

=============================================================================================
ATMOSPHERE SOCKET  <base>/event/subscription
=============================================================================================
Parameters are read from the query string, case-insensitively, falling back to request headers
(Atmosphere turns query parameters into headers): X-Atmosphere-tracking-id (missing = "0"),
X-Atmosphere-Framework, X-Atmosphere-Transport, Content-Type (recorded, not checked),
X-atmo-protocol (present = any value except "false"), X-Atmosphere-TrackMessageSize ("true"
turns on length framing), X-Heartbeat-Server (seconds), X-Atmosphere-Post-Body.

Request dispatch, in this order:
  1. X-Atmosphere-Transport=close (any method): 200, empty body; counted in close_requests
     (with the uuid and whether it was known); open connections with that uuid are closed
     (WebSocket close 1000, long-polling session ended).
  2. POST, or any request with X-Atmosphere-Post-Body: a client push for the connection
     with that tracking id; body = the message (empty body -> X-Atmosphere-Post-Body);
     200, empty body. Handled exactly like a WebSocket text frame (heartbeat or action);
     replies go to that uuid's open connection (its WebSocket or its long-polling queue).
     Unknown uuid: counted (posts_unknown_uuid), 200, message dropped.
  3. transport websocket:
       not an Upgrade request                      -> 400
       --refuse-websocket                          -> refuse status (default 501 with
                                                      X-Atmosphere-error: Websocket protocol
                                                      not supported)
       X-Atmosphere-Framework below 2.2.1          -> 501, header
          (missing or unparseable = below)            X-Atmosphere-error: Atmosphere Protocol
                                                      version not supported.
       unknown non-zero tracking id and --unknown-uuid refuse -> 400
       otherwise upgrade.
  4. transport long-polling (GET): the same version check (every poll), then see LONG-POLLING.
  5. any other transport -> 400 "unsupported transport".

Version parsing: "2.3.6-javascript" -> text before the first "-", dot-separated integers,
missing parts 0, compared as a tuple with (2, 2, 1).

Tracking ids: "0" -> a fresh uuid4 (a new client). A uuid the fixture issued or adopted before
(a reconnect) -> reused, no handshake. Unknown non-zero -> adopted as that client's uuid (no
handshake, counted in unknown_uuid_opens) or refused (see CHOICES).

Handshake: only when the tracking id is "0" and X-atmo-protocol is present, the first frame
is `<uuid>|<clientHeartbeatMs>|<padding>|` (e.g. `...|30000|X|`), and with TrackMessageSize
it is length-prefixed as a whole: `<len>|<uuid>|<ms>|X|`. /_control/handshake can replace it
(malformed handshakes) and /_control/greeting can append a message in the same frame.

Heartbeats:
  - client -> server: a text frame (or POST body) equal to the padding is a heartbeat
    (counted, never answered). WebSocket watchdog: if no text/binary frame at all arrives for
    more than heartbeat_grace x the interval announced to that connection, the fixture closes
    it with code 1001 "missing heartbeat" and counts heartbeat_drops. WebSocket ping frames are
    answered (unless silent) but do not count as activity. Interval 0 = no watchdog.
    Long-polling sessions have no watchdog.
  - server -> client (WebSocket only): after server_heartbeat_s without any write, the padding
    is written raw (never length-prefixed). X-Heartbeat-Server=<s>: 0 disables server
    heartbeats for that connection; other values below server_heartbeat_s are raised to it;
    larger values are used as they are; unparseable values are ignored.

Length framing (only for connections that asked X-Atmosphere-TrackMessageSize=true):
every server message is `<len>|<message>`, len = UTF-16 code units; whitespace-only messages
are not prefixed; heartbeats are raw. Framing modes (config "framing"):
  plain        one message per frame
  batch        messages produced within batch_window_ms (up to batch_max) go into one frame
               (the subscribe response and its initial events arrive together)
  split        each frame's text is cut into several frames: style "sizes" cuts pieces of
               split_sizes code points, cycling, restarting at each frame (default 1,2,3,5,8,13:
               the first piece is the first length digit); style "unicode" cuts after the first
               character, around every "|" and immediately before and after every non-ASCII
               character (so é, €, and 😀 -- 2 UTF-16 units -- each end a frame)
  split+batch  batch, then split the batched frame
Frames are always valid UTF-8 text: a cut never falls inside a code point. Connections
without TrackMessageSize always get one message per frame, whatever the mode.
Generated events carry labels with "é", "€" and "😀" so that lengths differ from byte and
code-point counts.

=============================================================================================
NAVIXY MESSAGES (client -> server, JSON text)
=============================================================================================
{"action":"subscribe","hash":H,"requests":[...]}   (or the deprecated top-level
"events":[types] + "trackers":[ids])
  request types: state ("trackers":[ids], or a target), state_batch, readings_batch,
  iot_monitor (target {"type":"all"} or {"type":"selected","tracker_ids":[..]}); lifecycle
  and logout are accepted as no-ops. rate_limit / format / sensor_type are recorded only.
  Hash check: an issued-then-revoked hash -> error code 4 "User or API key not found or
  session ended"; any other hash not in the valid set -> error code 3 "Wrong hash":
    {"type":"error","action":"subscription/subscribe","status":{"code":3,"description":
     "Wrong hash"},"data":{"events":[types],"trackers":[ids]}}
  Unknown request type, no requests, or iot_monitor with more than 10 trackers -> error 7
  "Invalid parameters" (same shape).
  Success -> {"type":"response","action":"subscription/subscribe","events":[types],
    "data":{"<type>":{"success":true,"value":{"<tracker id>":"normal|blocked|unknown|
    disallowed"}}}}   ("all" targets list every --trackers id)
  then the initial events, for "normal" trackers only:
    state           one {"type":"event","event":"state","user_time":..,"data":{state}} per
                    tracker
    state_batch     {"type":"event","event":"state_batch","user_time":..,"data":[states]}
    readings_batch  {"type":"event","event":"readings_batch","user_time":..,"data":[{
                    "tracker_id":id,"update_time":..,"sensors":[{"id":1,"type":
                    "temperature","label":..,"value":..}]}]}
    iot_monitor     {"type":"event","event":"iot_monitor","data":{"iot_last_values":[{
                    "tracker_id":id,"nonnull_fields":{"temp":[{"value","msg_time",
                    "srv_time"}]},"all_fields":{...}}]}}
  A state object: {"source_id": 1000000+tracker id (deliberately NOT the tracker id),
  "label":..,"gps":{"updated":..,"location":{"lat","lng"},"heading","speed","alt"},
  "connection_status":"active","movement_status":"moving","last_update":..}.
  Subscribing again replaces the requests of the same types on that connection.
  Subscriptions belong to the connection: a reconnect (same uuid) starts with none.
{"action":"unsubscribe","hash":H,"requests":[...]} -> same hash check, then
  {"type":"response","action":"subscription/unsubscribe","events":[types],"data":{..same..}}
  and those types stop.
The padding text -> heartbeat. Non-JSON, non-object, or an unknown/missing action ->
  {"type":"error","action":"null","status":{"code":5,"description":"Wrong request format"}}
  (counted in bad_client_messages). Client messages are expected raw (never length-prefixed).

=============================================================================================
LONG-POLLING
=============================================================================================
GET with X-Atmosphere-Transport=long-polling:
  - tracking id 0 + X-atmo-protocol: creates the connection, answers the handshake (length-
    prefixed if tracked) at once, 200 text/plain.
  - a known uuid (or an adopted unknown one): blocks until the connection has a queued frame,
    then returns exactly ONE frame (what a WebSocket frame would have carried: one message,
    a batch, or one split piece); after hold_s with nothing, 200 with an empty body.
    A newer GET for the same uuid completes an older pending one with an empty 200.
    If that uuid's long-polling connection was closed (drop, close request, bad-input close),
    the GET opens a new connection with the same uuid (no handshake), like a reconnect.
  - tracking id 0 without X-atmo-protocol: a new connection, held like a data GET.
Pushes: see dispatch step 2. No server heartbeats, no client-heartbeat watchdog.
While silent, GETs are held (not answered) until silence ends.

=============================================================================================
CONTROL ENDPOINTS  /_control/...   (GET or POST; parameters from the query string and/or a
JSON object body, body wins; "uuid" absent = every open connection)
=============================================================================================
  stats            GET: JSON {"totals":{..}, "connections":[..], "subscribes":[..],
                   "unsubscribes":[..], "close_requests":[..], "posts":[..], "auth":[..],
                   "config":{..}}. ?frames=1 adds each connection's first 200 frames sent.
                   totals keys: connections, websocket_connections, longpoll_connections,
                   open_connections, handshakes_sent, heartbeats_received, heartbeat_drops,
                   close_requests, posts, posts_unknown_uuid, polls, version_refusals,
                   websocket_refusals, unknown_uuid_opens, unknown_uuid_refusals, auth_ok,
                   auth_failed, subscribes, unsubscribes, subscribe_errors,
                   bad_client_messages, server_heartbeats_sent, frames_sent,
                   suppressed_frames, drops, pings_received.
                   connection: id, transport, uuid, tracking_id (as sent), query (all
                   parameters), framework, atmo_protocol, tracked, handshake_sent,
                   handshake, client_heartbeat_ms, server_heartbeat_s,
                   heartbeat_server_requested, opened_ms, closed_ms, close_reason, open,
                   heartbeats, heartbeat_ms (times since open, first 1000), messages,
                   pings, subscriptions {type: request}, hash, frames_sent,
                   server_heartbeats, polls, posts.
                   subscribes / unsubscribes: {"conn","uuid","t_ms","json"} (full JSON),
                   every action received, refused ones (wrong hash, ...) included.
                   close_requests: {"t_ms","uuid","known","method"}; posts: {"t_ms","uuid",
                   "method","via":"body"|"X-Atmosphere-Post-Body","body","known"};
                   auth: {"t_ms","login","ok","hash"?}.
  wait             ?key=<totals key>&at_least=N&timeout=S (default 5): waits until
                   totals[key] >= N; {"ok":bool,"value":v}
  reset            clears totals and lists; connections already closed are no longer
                   reported (open ones stay open and keep their per-connection counters)
  config           GET: current config; with parameters: sets them (see COMMAND LINE),
                   returns the new config. e.g. ?silent=true, ?framing=split+batch,
                   {"split_sizes":[1]}, {"blocked":[15564]}
  push             {"uuid"?, "message": text|JSON value}  framed per connection, or
                   {"uuid"?, "raw": text}  sent verbatim as one frame (no prefix);
                   returns {"sent_to":[uuids]}
  drop             {"uuid"?, "how":"close"|"abort", "code":1001}: closes WebSocket
                   connection(s) (close frame with code, or TCP abort without one) or ends
                   long-polling connection(s) (a pending GET is aborted); the uuid stays known
                   so a reconnect with it gets no handshake. {"dropped":[uuids]}
  event            {"event":"state"|"state_batch"|"readings_batch"|"iot_monitor"|
                   "lifecycle", "tracker_ids"?:[..], "lifecycle_event":"block"|"unblock"|
                   "corrupt", "uuid"?}: sends a fresh event to the connections subscribed to
                   it (lifecycle: to those subscribed to state/state_batch/readings_batch),
                   for the requested trackers they cover (non-lifecycle: normal ones only).
                   lifecycle block/unblock also sets the tracker's status; unblock re-sends
                   the current state (state / state_batch subscribers). {"sent":N}
  logout           {"uuid"?, "hash"?, "reason":"session closed", "invalidate":true,
                   "close":false}: sends {"type":"event","event":"logout","data":reason} to
                   subscribed connections matching hash (with uuid: that connection, even if
                   it has not subscribed); invalidate revokes their
                   hashes (later subscribes -> error 4); close closes them afterwards (1000)
  error            {"uuid"?, "hash"?, "code":4, "description":"User or API key not found or
                   session ended", "action":"subscription/subscribe", "invalidate":true,
                   "close":false}: sends {"type":"error","action":..,"status":{"code":..,
                   "description":..}}, targets and invalidate as for logout
  bad              {"kind":K, "uuid"?}:
                     nonnumeric-length   raw frame `abc|{"type":"event",...}`
                     overlong-length     raw frame `<real len + 100>|<msg>`, then close (1000)
                     unknown-type        message {"type":"weird"} (framed normally)
                     unknown-event       message {"type":"event","event":"mystery","data":{}}
                     non-json            message `this is not JSON {` (framed normally)
                     truncated-json      message `{"type":"event","event":"state","data":{`
                     handshake-missing-fields   the NEXT handshake is `<uuid>|` only
                   (everything but handshake-missing-fields goes to open connections)
  handshake        {"text":"{uuid}|{ms}|{padding}|", "count":1}: the next `count`
                   handshakes use this template ({uuid}, {ms}, {padding} substituted; framed
                   as usual); {"text":null} cancels
  greeting         {"message": text|JSON|null, "same_frame": true}: after every handshake
                   send this message, in the handshake's frame (same_frame) or as the next
                   frame; null cancels
Unknown /_control/ path -> 404.

=============================================================================================
CHOICES WHERE PROTOCOLS.md 5 IS SILENT
=============================================================================================
- Wrong login/password: code 4 ("user/API key not found or session ended" is the documented
  code closest to a wrong login); missing fields: code 7. Configurable (--auth-error-code).
- Unknown non-zero tracking id: adopted (no handshake) -- 5.7 says the server sends the
  handshake only for id 0, and a client that reconnects after a server restart presents a uuid
  the server never issued. --unknown-uuid refuse answers HTTP 400 instead.
- Missing/unparseable X-Atmosphere-Framework: treated as below 2.2.1 (501).
- Refused WebSocket upgrade: 501 + `X-Atmosphere-error: Websocket protocol not supported`
  (not in 5; configurable status). The version check comes after it.
- Revoked hashes give error 4, never-valid ones error 3.
- Server heartbeat: the padding after server_heartbeat_s of write inactivity, per connection;
  the writer is single so a heartbeat never lands inside a split message.
- "silent": nothing is written to any socket (handshakes, replies, events, heartbeats, pongs;
  they are counted in suppressed_frames and lost), long-poll GETs are held; reading, the
  client watchdog, REST and control endpoints keep working.
- Server-initiated closes: 1001 for drops (watchdog, /drop), 1000 for close requests,
  logout/error close and the overlong-length scenario.
- Binary frames from the client are treated as UTF-8 text.
- rate_limit is not enforced; "format" full/compact produce the same state objects.
"""

import argparse
import asyncio
import collections
import json
import os
import sys
import threading
import time
import uuid as uuidlib
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

START = time.monotonic()
SOURCE_BASE = 1_000_000
LABELS = ["Café é", "Tank 5€", "Smile 😀", "plain", "Mix é€😀"]
KNOWN_TYPES = {"state", "state_batch", "readings_batch", "iot_monitor"}
NOOP_TYPES = {"lifecycle", "logout"}
LIFECYCLE_CARRIERS = {"state", "state_batch", "readings_batch"}
DESC_4 = "User or API key not found or session ended"

CFG = {}
VERBOSE = False


def now_ms():
    return round((time.monotonic() - START) * 1000, 1)


def dumps(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def log(*a):
    if VERBOSE:
        print(f"[atmo {now_ms():9.1f}]", *a, file=sys.stderr, flush=True)


def u16len(s):
    return len(s.encode("utf-16-le")) // 2


def user_time():
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())


# ---------------------------------------------------------------------------------------------
# State


def fresh_totals():
    keys = (
        "connections websocket_connections longpoll_connections handshakes_sent "
        "heartbeats_received heartbeat_drops close_requests posts posts_unknown_uuid polls "
        "version_refusals websocket_refusals unknown_uuid_opens unknown_uuid_refusals auth_ok "
        "auth_failed subscribes unsubscribes subscribe_errors bad_client_messages "
        "server_heartbeats_sent frames_sent suppressed_frames drops pings_received"
    ).split()
    return {k: 0 for k in keys}


class Stats:
    def __init__(self):
        self.reset()

    def reset(self):
        self.totals = fresh_totals()
        self.subscribes = []
        self.unsubscribes = []
        self.close_requests = []
        self.posts = []
        self.auth = []
        self.forgotten = set()  # ids of connections closed before the last reset


STATS = Stats()
CONNS = []  # every Conn ever opened (closed ones are reported until reset)
KNOWN_UUIDS = set()
VALID_HASHES = set()  # API keys + issued session hashes
REVOKED_HASHES = set()
STATUS_OVERRIDE = {}  # tracker id -> status set by lifecycle control
HANDSHAKE_OVERRIDE = {"text": None, "count": 0}
GREETING = {"message": None, "same_frame": True}
SEQ = collections.Counter()
conn_counter = 0


def tracker_status(tid):
    if tid in CFG["disallowed"]:
        return "disallowed"
    if tid in CFG["unknown"] or tid not in CFG["trackers"]:
        return "unknown"
    if tid in STATUS_OVERRIDE:
        return STATUS_OVERRIDE[tid]
    if tid in CFG["blocked"]:
        return "blocked"
    return "normal"


# ---------------------------------------------------------------------------------------------
# Event bodies


def state_obj(tid):
    SEQ[tid] += 1
    n = SEQ[tid]
    ts = user_time()
    return {
        "source_id": SOURCE_BASE + tid,
        "label": LABELS[tid % len(LABELS)],
        "gps": {
            "updated": ts,
            "signal_level": 100,
            "location": {"lat": 52.5 + n * 1e-4, "lng": 13.4 + (tid % 100) * 1e-3},
            "heading": (n * 7) % 360,
            "speed": n % 90,
            "alt": 34,
        },
        "connection_status": "active",
        "movement_status": "moving",
        "last_update": ts,
    }


def event_msgs(etype, ids):
    """Event messages (JSON values) of type etype for tracker ids (already filtered)."""
    ids = list(ids)
    if not ids:
        return []
    ut = user_time()
    if etype == "state":
        return [{"type": "event", "event": "state", "user_time": ut, "data": state_obj(t)} for t in ids]
    if etype == "state_batch":
        data = [state_obj(t) for t in ids]
        return [{"type": "event", "event": "state_batch", "user_time": ut, "data": data}]
    if etype == "readings_batch":
        data = []
        for t in ids:
            SEQ[("r", t)] += 1
            data.append(
                {
                    "tracker_id": t,
                    "update_time": ut,
                    "sensors": [
                        {"id": 1, "type": "temperature", "label": LABELS[(t + 1) % len(LABELS)],
                         "value": 20 + SEQ[("r", t)] % 10 + 0.5}
                    ],
                }
            )
        name = "state_batch" if CFG["doc_quirks"] else "readings_batch"
        return [{"type": "event", "event": name, "user_time": ut, "data": data}]
    if etype == "iot_monitor":
        vals = []
        for t in ids:
            SEQ[("i", t)] += 1
            q = [{"value": 20 + k, "msg_time": ut, "srv_time": ut} for k in range(min(SEQ[("i", t)], 12))]
            vals.append(
                {
                    "tracker_id": t,
                    "nonnull_fields": {
                        "temp": q,
                        "note": [{"value": "naïve €😀", "msg_time": ut, "srv_time": ut}],
                    },
                    "all_fields": {"temp": q, "door": [{"value": None, "msg_time": ut, "srv_time": ut}]},
                }
            )
        return [{"type": "event", "event": "iot_monitor", "data": {"iot_last_values": vals}}]
    return []


# ---------------------------------------------------------------------------------------------
# Connections


def frame_msg(text, tracked):
    if not tracked or text.strip() == "":
        return text
    return f"{u16len(text)}|{text}"


def split_text(text):
    """Cut a frame's text into pieces per the split style (never inside a code point)."""
    if len(text) <= 1:
        return [text]
    cuts = set()
    if CFG["split_style"] == "unicode":
        cuts.add(1)
        for i, ch in enumerate(text):
            if ch == "|" or ord(ch) > 127:
                cuts.add(i)
                cuts.add(i + 1)
    else:
        sizes = [max(1, int(s)) for s in CFG["split_sizes"]] or [1]
        pos, k = 0, 0
        while True:
            pos += sizes[k % len(sizes)]
            k += 1
            if pos >= len(text):
                break
            cuts.add(pos)
    cuts = sorted(c for c in cuts if 0 < c < len(text))
    pieces, prev = [], 0
    for c in cuts:
        pieces.append(text[prev:c])
        prev = c
    pieces.append(text[prev:])
    return pieces


class Conn:
    def __init__(self, transport, uuid, q, tracking_id, request):
        global conn_counter
        conn_counter += 1
        self.id = conn_counter
        self.transport = transport
        self.uuid = uuid
        self.q = q
        self.tracking_id = tracking_id
        self.request = request
        self.tracked = q.get("x-atmosphere-trackmessagesize", "").lower() == "true"
        self.atmo_protocol = atmo_present(q)
        self.client_hb_ms = int(CFG["client_heartbeat_ms"])
        self.hb_server_requested = q.get("x-heartbeat-server")
        self.server_hb_s = effective_server_hb(self.hb_server_requested) if transport == "websocket" else 0
        self.queue = asyncio.Queue()
        self.pending = collections.deque()
        self.open = True
        self.opened_ms = now_ms()
        self.closed_ms = None
        self.close_reason = None
        self.last_write = time.monotonic()
        self.last_client = time.monotonic()
        self.subs = {}
        self.hash = None
        self.handshake = None
        self.heartbeats = 0
        self.heartbeat_ms = []
        self.messages = 0
        self.pings = 0
        self.frames_sent = 0
        self.frames_log = []
        self.server_heartbeats = 0
        self.polls = 0
        self.posts = 0
        self.tasks = []
        self.q_original = dict(request.query)
        CONNS.append(self)
        STATS.totals["connections"] += 1
        key = "websocket_connections" if transport == "websocket" else "longpoll_connections"
        STATS.totals[key] += 1
        log(f"conn {self.id} open {transport} uuid={uuid} tracking_id={tracking_id} tracked={self.tracked}")

    def report(self, frames=False):
        r = {
            "id": self.id,
            "transport": self.transport,
            "uuid": self.uuid,
            "tracking_id": self.tracking_id,
            "query": self.q_original,
            "framework": self.q.get("x-atmosphere-framework"),
            "atmo_protocol": self.atmo_protocol,
            "tracked": self.tracked,
            "handshake_sent": self.handshake is not None,
            "handshake": self.handshake,
            "client_heartbeat_ms": self.client_hb_ms,
            "server_heartbeat_s": self.server_hb_s,
            "heartbeat_server_requested": self.hb_server_requested,
            "opened_ms": self.opened_ms,
            "closed_ms": self.closed_ms,
            "close_reason": self.close_reason,
            "open": self.open,
            "heartbeats": self.heartbeats,
            "heartbeat_ms": self.heartbeat_ms,
            "messages": self.messages,
            "pings": self.pings,
            "subscriptions": {t: req["raw"] for t, req in self.subs.items()},
            "hash": self.hash,
            "frames_sent": self.frames_sent,
            "server_heartbeats": self.server_heartbeats,
            "polls": self.polls,
            "posts": self.posts,
        }
        if frames:
            r["frames"] = self.frames_log
        return r

    # --- queueing (called from anywhere) ---
    def send_msg(self, text):
        if self.open:
            self.queue.put_nowait(("msg", text))

    def send_json(self, obj):
        self.send_msg(dumps(obj))

    def send_raw(self, text):
        if self.open:
            self.queue.put_nowait(("raw", text))

    def send_handshake(self, text):
        self.handshake = text
        STATS.totals["handshakes_sent"] += 1
        self.queue.put_nowait(("handshake", text))

    def send_close(self, code, reason):
        if self.open:
            self.queue.put_nowait(("close", code, reason))

    # --- writer ---
    async def next_item(self, timeout):
        if self.pending:
            return self.pending.popleft()
        if timeout is None:
            return await self.queue.get()
        return await asyncio.wait_for(self.queue.get(), timeout)

    async def writer(self):
        try:
            while self.open:
                timeout = None
                if self.server_hb_s > 0:
                    timeout = max(0.0, self.last_write + self.server_hb_s - time.monotonic())
                try:
                    item = await self.next_item(timeout)
                except (asyncio.TimeoutError, TimeoutError):
                    if CFG["silent"]:
                        self.last_write = time.monotonic()
                        continue
                    self.server_heartbeats += 1
                    STATS.totals["server_heartbeats_sent"] += 1
                    await self.write_frame(CFG["padding"])
                    continue
                kind = item[0]
                if kind == "msg":
                    msgs = [item[1]]
                    mode = CFG["framing"]
                    if self.tracked and "batch" in mode:
                        deadline = time.monotonic() + CFG["batch_window_ms"] / 1000
                        while CFG["batch_max"] <= 0 or len(msgs) < CFG["batch_max"]:
                            left = deadline - time.monotonic()
                            if left <= 0:
                                break
                            try:
                                nxt = await self.next_item(left)
                            except (asyncio.TimeoutError, TimeoutError):
                                break
                            if nxt[0] == "msg":
                                msgs.append(nxt[1])
                            else:
                                self.pending.appendleft(nxt)
                                break
                    if self.tracked:
                        await self.write_split("".join(frame_msg(m, True) for m in msgs))
                    else:
                        for m in msgs:
                            await self.write_frame(m)
                elif kind == "handshake":
                    text = frame_msg(item[1], self.tracked)
                    g = GREETING["message"]
                    if g is not None and GREETING["same_frame"]:
                        text += frame_msg(g, self.tracked)
                    if CFG["split_handshake"]:
                        await self.write_split(text)
                    else:
                        await self.write_frame(text)
                    if g is not None and not GREETING["same_frame"]:
                        self.pending.appendleft(("msg", g))
                elif kind == "raw":
                    await self.write_frame(item[1])
                elif kind == "close":
                    await self.close(item[1], item[2])
                    return
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the peer went away mid-write
            log(f"conn {self.id} writer ended: {e!r}")
            await self.close(None, f"write failed: {e!r}")

    async def write_split(self, text):
        if self.tracked and "split" in CFG["framing"]:
            pieces = split_text(text)
            for i, p in enumerate(pieces):
                if i and CFG["split_delay_ms"] > 0:
                    await asyncio.sleep(CFG["split_delay_ms"] / 1000)
                await self.write_frame(p)
        else:
            await self.write_frame(text)

    async def write_frame(self, text):
        if CFG["silent"]:
            STATS.totals["suppressed_frames"] += 1
            return
        if not self.open:
            return
        await self.emit(text)
        self.last_write = time.monotonic()
        self.frames_sent += 1
        STATS.totals["frames_sent"] += 1
        if len(self.frames_log) < 200:
            self.frames_log.append(text)
        log(f"conn {self.id} -> {text[:200]!r}")

    def mark_closed(self, reason):
        if self.open:
            self.open = False
            self.closed_ms = now_ms()
            self.close_reason = reason
            log(f"conn {self.id} closed: {reason}")
            for t in self.tasks:
                if t is not asyncio.current_task():
                    t.cancel()

    # --- client input ---
    def client_text(self, text):
        self.last_client = time.monotonic()
        if text == CFG["padding"]:
            self.heartbeats += 1
            STATS.totals["heartbeats_received"] += 1
            if len(self.heartbeat_ms) < 1000:
                self.heartbeat_ms.append(round(self.opened_ms_since(), 1))
            return
        self.messages += 1
        handle_action(self, text)

    def opened_ms_since(self):
        return now_ms() - self.opened_ms


class WsConn(Conn):
    def __init__(self, ws, *a):
        super().__init__("websocket", *a)
        self.ws = ws

    async def emit(self, text):
        await self.ws.send_str(text)

    async def close(self, code, reason, abort=False):
        was_open = self.open
        self.mark_closed(reason)
        if not was_open:
            return
        try:
            if abort:
                self.request.transport.abort()
            elif code is not None:
                await self.ws.close(code=code, message=(reason or "").encode()[:120])
        except Exception as e:
            log(f"conn {self.id} close: {e!r}")

    async def watchdog(self):
        if self.client_hb_ms <= 0:
            return
        limit = CFG["heartbeat_grace"] * self.client_hb_ms / 1000
        step = max(0.01, min(0.25, self.client_hb_ms / 4000))
        while self.open:
            await asyncio.sleep(step)
            if time.monotonic() - self.last_client > limit:
                STATS.totals["heartbeat_drops"] += 1
                asyncio.ensure_future(self.close(1001, "missing heartbeat"))
                return


class LpConn(Conn):
    def __init__(self, *a):
        super().__init__("long-polling", *a)
        self.frames = collections.deque()
        self.waiter = None  # (future, request) of the pending GET

    async def emit(self, text):
        self.frames.append(text)
        self.wake("data")

    def wake(self, why):
        if self.waiter and not self.waiter[0].done():
            self.waiter[0].set_result(why)

    async def close(self, code, reason, abort=False):
        was_open = self.open
        self.mark_closed(reason)
        if not was_open:
            return
        if self.waiter and not self.waiter[0].done():
            if abort or code == 1001:
                try:
                    self.waiter[1].transport.abort()
                except Exception:
                    pass
                self.wake("dropped")
            else:
                self.wake("closed")

    async def poll(self, request):
        """A data GET: one frame, or empty after hold_s."""
        self.polls += 1
        STATS.totals["polls"] += 1
        self.wake("superseded")
        while CFG["silent"]:
            fut = asyncio.get_running_loop().create_future()
            self.waiter = (fut, request)
            try:
                r = await asyncio.wait_for(fut, 0.05)
                if r in ("superseded", "dropped"):
                    return text_response("")
            except (asyncio.TimeoutError, TimeoutError):
                pass
        if self.frames:
            return text_response(self.frames.popleft())
        if not self.open:
            return text_response("")
        fut = asyncio.get_running_loop().create_future()
        self.waiter = (fut, request)
        try:
            why = await asyncio.wait_for(fut, CFG["hold_s"])
        except (asyncio.TimeoutError, TimeoutError):
            why = "timeout"
        if self.waiter and self.waiter[0] is fut:
            self.waiter = None
        if why == "data" and self.frames:
            return text_response(self.frames.popleft())
        return text_response("")


def text_response(body, status=200):
    return web.Response(status=status, text=body, content_type="text/plain", charset="utf-8")


def open_conns(uuid=None):
    return [c for c in CONNS if c.open and (uuid is None or c.uuid == uuid)]


# ---------------------------------------------------------------------------------------------
# Navixy actions


def as_id(v):
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        return int(v)
    return None


def resolve_ids(req):
    """Tracker ids a request covers, or None if it names none."""
    if isinstance(req.get("trackers"), list):
        return [i for i in (as_id(v) for v in req["trackers"]) if i is not None]
    tgt = req.get("target")
    if isinstance(tgt, dict):
        if tgt.get("type") == "all":
            return list(CFG["trackers"])
        if isinstance(tgt.get("tracker_ids"), list):
            return [i for i in (as_id(v) for v in tgt["tracker_ids"]) if i is not None]
    return None


def parse_requests(obj):
    reqs = obj.get("requests")
    if not isinstance(reqs, list):
        events, trackers = obj.get("events"), obj.get("trackers")
        if isinstance(events, list):
            reqs = [{"type": e, "trackers": trackers if isinstance(trackers, list) else []} for e in events]
        else:
            return None
    out = []
    for r in reqs:
        if not isinstance(r, dict) or not isinstance(r.get("type"), str):
            return None
        out.append({"type": r["type"], "ids": resolve_ids(r), "raw": r})
    return out


def handle_action(conn, text):
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    action = obj.get("action") if isinstance(obj, dict) else None
    if action not in ("subscribe", "unsubscribe"):
        STATS.totals["bad_client_messages"] += 1
        log(f"conn {conn.id} bad client message {text[:200]!r}")
        status = {"code": 5, "description": "Wrong request format"}
        conn.send_json({"type": "error", "action": "null", "status": status})
        return
    rec = {"conn": conn.id, "uuid": conn.uuid, "t_ms": now_ms(), "json": obj}
    act = f"subscription/{action}"
    if action == "subscribe":
        STATS.totals["subscribes"] += 1
        STATS.subscribes.append(rec)
    else:
        STATS.totals["unsubscribes"] += 1
        STATS.unsubscribes.append(rec)
    reqs = parse_requests(obj)
    types = [r["type"] for r in reqs] if reqs else []
    all_ids = []
    for r in reqs or []:
        for i in r["ids"] or []:
            if i not in all_ids:
                all_ids.append(i)

    def error(code, desc):
        STATS.totals["subscribe_errors"] += 1
        conn.send_json({"type": "error", "action": act, "status": {"code": code, "description": desc},
                        "data": {"events": types, "trackers": all_ids}})

    h = obj.get("hash")
    if h in REVOKED_HASHES:
        return error(4, DESC_4)
    if not isinstance(h, str) or h not in VALID_HASHES:
        return error(3, "Wrong hash")
    if not reqs:
        return error(7, "Invalid parameters")
    for r in reqs:
        if r["type"] not in KNOWN_TYPES | NOOP_TYPES:
            return error(7, "Invalid parameters")
        if r["type"] in KNOWN_TYPES and r["ids"] is None:
            return error(7, "Invalid parameters")
        if r["type"] == "iot_monitor" and len(r["ids"]) > 10:
            return error(7, "Invalid parameters")
    data = {}
    for r in reqs:
        data[r["type"]] = {"success": True, "value": {str(i): tracker_status(i) for i in r["ids"] or []}}
    events = ["" for _ in types] if CFG["doc_quirks"] else types
    conn.send_json({"type": "response", "action": act, "events": events, "data": data})
    if action == "subscribe":
        conn.hash = h
        for r in reqs:
            conn.subs[r["type"]] = r
        for r in reqs:
            send_events(conn, r["type"], r["ids"] or [])
    else:
        for r in reqs:
            conn.subs.pop(r["type"], None)


def send_events(conn, etype, ids, only=None):
    ids = [i for i in ids if tracker_status(i) == "normal" and (only is None or i in only)]
    for m in event_msgs(etype, ids):
        conn.send_json(m)
    return len(ids)


async def periodic_events():
    while True:
        iv = CFG["event_interval_s"]
        if iv <= 0:
            await asyncio.sleep(0.05)
            continue
        await asyncio.sleep(iv)
        for c in open_conns():
            for t, r in list(c.subs.items()):
                if t in KNOWN_TYPES:
                    send_events(c, t, r["ids"] or [])


# ---------------------------------------------------------------------------------------------
# HTTP helpers


def lower_query(request):
    return {k.lower(): v for k, v in request.query.items()}


def param(request, q, name):
    v = q.get(name.lower())
    if v is None:
        v = request.headers.get(name)
    return v


def atmo_present(q):
    v = q.get("x-atmo-protocol")
    return v is not None and v.lower() != "false"


def effective_server_hb(requested):
    base = float(CFG["server_heartbeat_s"])
    if requested is None:
        return base
    try:
        r = float(requested)
    except ValueError:
        return base
    if r == 0:
        return 0.0
    if base <= 0:
        return 0.0
    return max(r, base)


def version_ok(v):
    if not CFG["version_check"]:
        return True
    if not v:
        return False
    parts = v.split("-")[0].split(".")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        return False
    while len(nums) < 3:
        nums.append(0)
    return tuple(nums) >= (2, 2, 1)


def version_refusal():
    STATS.totals["version_refusals"] += 1
    hdrs = {"X-Atmosphere-error": "Atmosphere Protocol version not supported."}
    return web.Response(status=501, headers=hdrs)


def socket_params(request):
    """Merged Atmosphere parameters (query first, then headers), lower-case keys."""
    q = lower_query(request)
    for name in ("X-Atmosphere-tracking-id", "X-Atmosphere-Framework", "X-Atmosphere-Transport",
                 "X-atmo-protocol", "X-Atmosphere-TrackMessageSize", "X-Heartbeat-Server",
                 "X-Atmosphere-Post-Body"):
        if name.lower() not in q and name in request.headers:
            q[name.lower()] = request.headers[name]
    return q


def resolve_uuid(q):
    """(uuid, tracking_id, is_new_client) or None to refuse."""
    tid = q.get("x-atmosphere-tracking-id") or "0"
    if tid == "0":
        u = str(uuidlib.uuid4())
        KNOWN_UUIDS.add(u)
        return u, tid, True
    if tid in KNOWN_UUIDS:
        return tid, tid, False
    if CFG["unknown_uuid"] == "refuse":
        STATS.totals["unknown_uuid_refusals"] += 1
        return None
    STATS.totals["unknown_uuid_opens"] += 1
    KNOWN_UUIDS.add(tid)
    return tid, tid, False


def handshake_text(uuid):
    tmpl = "{uuid}|{ms}|{padding}|"
    if HANDSHAKE_OVERRIDE["text"] is not None and HANDSHAKE_OVERRIDE["count"] > 0:
        tmpl = HANDSHAKE_OVERRIDE["text"]
        HANDSHAKE_OVERRIDE["count"] -= 1
        if HANDSHAKE_OVERRIDE["count"] <= 0:
            HANDSHAKE_OVERRIDE["text"] = None
    return tmpl.replace("{uuid}", uuid).replace("{ms}", str(int(CFG["client_heartbeat_ms"]))).replace(
        "{padding}", CFG["padding"])


# ---------------------------------------------------------------------------------------------
# Handlers


async def handle_auth(request):
    p = dict(request.query)
    body = await request.text()
    if body:
        try:
            j = json.loads(body)
            if isinstance(j, dict):
                p.update(j)
        except ValueError:
            p.update(dict(parse_qsl(body)))
    login, password = p.get("login"), p.get("password")
    rec = {"t_ms": now_ms(), "login": login}
    STATS.auth.append(rec)
    if not isinstance(login, str) or not isinstance(password, str):
        STATS.totals["auth_failed"] += 1
        rec["ok"] = False
        return web.json_response({"success": False, "status": {"code": 7, "description": "Invalid parameters"}},
                                 status=400)
    if CFG["users"].get(login) != password:
        STATS.totals["auth_failed"] += 1
        rec["ok"] = False
        code = int(CFG["auth_error_code"])
        status = {"code": code, "description": DESC_4}
        return web.json_response({"success": False, "status": status}, status=400)
    h = uuidlib.uuid4().hex
    VALID_HASHES.add(h)
    STATS.totals["auth_ok"] += 1
    rec["ok"] = True
    rec["hash"] = h
    return web.json_response({"success": True, "type": "authenticated", "hash": h})


async def handle_socket(request):
    q = socket_params(request)
    transport = (q.get("x-atmosphere-transport") or "").lower()
    log(f"{request.method} {request.path_qs}")
    if transport == "close":
        u = q.get("x-atmosphere-tracking-id")
        STATS.totals["close_requests"] += 1
        STATS.close_requests.append(
            {"t_ms": now_ms(), "uuid": u, "known": u in KNOWN_UUIDS, "method": request.method})
        for c in open_conns(u):
            await c.close(1000, "close request")
        return text_response("")
    if request.method == "POST" or "x-atmosphere-post-body" in q:
        return await handle_push(request, q)
    if transport == "websocket":
        ws = web.WebSocketResponse(autoping=False, max_msg_size=16 << 20, timeout=2.0, compress=False)
        if not ws.can_prepare(request).ok:
            return text_response("websocket transport needs a WebSocket upgrade\n", 400)
        if CFG["refuse_websocket"]:
            STATS.totals["websocket_refusals"] += 1
            st = int(CFG["refuse_websocket_status"])
            hdrs = {"X-Atmosphere-error": "Websocket protocol not supported"} if st == 501 else {}
            return web.Response(status=st, headers=hdrs)
        if not version_ok(q.get("x-atmosphere-framework")):
            return version_refusal()
        r = resolve_uuid(q)
        if r is None:
            return text_response("unknown tracking id\n", 400)
        return await run_websocket(request, ws, q, *r)
    if transport == "long-polling":
        if request.method != "GET":
            return text_response("long-polling needs GET\n", 400)
        if not version_ok(q.get("x-atmosphere-framework")):
            return version_refusal()
        return await long_poll(request, q)
    return text_response(f"unsupported transport {transport!r}\n", 400)


def new_conn(cls, request, q, u, tid, *extra):
    return cls(*extra, u, q, tid, request)


async def run_websocket(request, ws, q, u, tid, is_new):
    await ws.prepare(request)
    c = new_conn(WsConn, request, q, u, tid, ws)
    writer = asyncio.ensure_future(c.writer())
    dog = asyncio.ensure_future(c.watchdog())
    c.tasks = [writer, dog]
    if is_new and c.atmo_protocol:
        c.send_handshake(handshake_text(u))
    try:
        while True:
            msg = await ws.receive()
            if msg.type == WSMsgType.TEXT:
                log(f"conn {c.id} <- {msg.data[:200]!r}")
                c.client_text(msg.data)
            elif msg.type == WSMsgType.BINARY:
                c.client_text(msg.data.decode("utf-8", "replace"))
            elif msg.type == WSMsgType.PING:
                c.pings += 1
                STATS.totals["pings_received"] += 1
                if not CFG["silent"]:
                    await ws.pong(msg.data)
            elif msg.type == WSMsgType.PONG:
                pass
            else:  # CLOSE, CLOSING, CLOSED, ERROR
                break
    except Exception as e:
        log(f"conn {c.id} reader ended: {e!r}")
    finally:
        if c.open:
            c.mark_closed(f"client closed ({ws.close_code})")
        for t in (writer, dog):
            t.cancel()
    return ws


async def long_poll(request, q):
    tid = q.get("x-atmosphere-tracking-id") or "0"
    existing = [c for c in open_conns(tid) if c.transport == "long-polling"] if tid != "0" else []
    if existing:
        return await existing[-1].poll(request)
    leftovers = [c for c in CONNS if c.uuid == tid and c.transport == "long-polling" and c.frames]
    if tid != "0" and leftovers:  # frames a closed connection wrote before it closed
        c = leftovers[0]
        c.polls += 1
        STATS.totals["polls"] += 1
        return text_response(c.frames.popleft())
    r = resolve_uuid(q)
    if r is None:
        return text_response("unknown tracking id\n", 400)
    u, tid, is_new = r
    c = new_conn(LpConn, request, q, u, tid)
    w = asyncio.ensure_future(c.writer())
    c.tasks = [w]
    if is_new and c.atmo_protocol:
        c.polls += 1
        STATS.totals["polls"] += 1
        text = handshake_text(u)
        c.handshake = text
        STATS.totals["handshakes_sent"] += 1
        body = frame_msg(text, c.tracked)
        g = GREETING["message"]
        if g is not None:
            if GREETING["same_frame"]:
                body += frame_msg(g, c.tracked)
            else:
                c.send_msg(g)
        while CFG["silent"]:
            await asyncio.sleep(0.05)
        c.frames_sent += 1
        STATS.totals["frames_sent"] += 1
        c.frames_log.append(body)
        return text_response(body)
    return await c.poll(request)


async def handle_push(request, q):
    body = await request.text() if request.method == "POST" else ""
    via = "body"
    if body == "" and "x-atmosphere-post-body" in q:
        body = q["x-atmosphere-post-body"]
        via = "X-Atmosphere-Post-Body"
    u = q.get("x-atmosphere-tracking-id")
    STATS.totals["posts"] += 1
    targets = open_conns(u) if u and u != "0" else []
    STATS.posts.append({"t_ms": now_ms(), "uuid": u, "method": request.method, "via": via, "body": body,
                        "known": bool(targets)})
    log(f"push {u} via {via}: {body[:200]!r}")
    if not targets:
        STATS.totals["posts_unknown_uuid"] += 1
        return text_response("")
    c = targets[-1]
    c.posts += 1
    c.client_text(body)
    return text_response("")


async def handle_rest_other(request):
    return web.json_response({"success": False, "status": {"code": 7, "description": "Invalid parameters"}},
                             status=404)


# ---------------------------------------------------------------------------------------------
# Control


async def control_params(request):
    p = dict(request.query)
    if request.can_read_body:
        body = await request.text()
        if body.strip():
            try:
                j = json.loads(body)
            except ValueError:
                raise web.HTTPBadRequest(text="control body must be a JSON object\n")
            if not isinstance(j, dict):
                raise web.HTTPBadRequest(text="control body must be a JSON object\n")
            p.update(j)
    return p


def as_bool(v):
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v != 0
    return str(v).strip().lower() in ("1", "true", "yes", "on")


def as_int_list(v):
    if isinstance(v, list):
        return [int(x) for x in v]
    if isinstance(v, (int, float)):
        return [int(v)]
    return [int(x) for x in str(v).replace(" ", "").split(",") if x]


def maybe_json(v):
    """A query-string value that looks like JSON is parsed, else kept as text."""
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def config_view():
    out = {}
    for k, v in CFG.items():
        out[k] = sorted(v) if isinstance(v, set) else v
    out["apikeys"] = sorted(CFG["apikeys"])
    return out


def set_config(p):
    for k, v in p.items():
        if k not in CFG or k == "base":
            raise web.HTTPBadRequest(text=f"unknown config key {k}\n")
        cur = CFG[k]
        if k in ("trackers", "split_sizes"):
            CFG[k] = as_int_list(v)
        elif k in ("blocked", "unknown", "disallowed"):
            CFG[k] = set(as_int_list(v))
            if k == "blocked":
                STATUS_OVERRIDE.clear()
        elif k == "apikeys":
            new = set(v if isinstance(v, list) else str(v).split(","))
            VALID_HASHES.difference_update(CFG["apikeys"] - new)
            VALID_HASHES.update(new)
            REVOKED_HASHES.difference_update(new)
            CFG[k] = new
        elif k == "users":
            v = maybe_json(v)
            if isinstance(v, str):
                v = dict(x.split(":", 1) for x in v.split(",") if ":" in x)
            CFG[k] = dict(v)
        elif k == "framing":
            if v not in ("plain", "split", "batch", "split+batch", "batch+split"):
                raise web.HTTPBadRequest(text=f"bad framing {v}\n")
            CFG[k] = v
        elif k == "split_style":
            if v not in ("sizes", "unicode"):
                raise web.HTTPBadRequest(text=f"bad split_style {v}\n")
            CFG[k] = v
        elif k == "unknown_uuid":
            if v not in ("adopt", "refuse"):
                raise web.HTTPBadRequest(text=f"bad unknown_uuid {v}\n")
            CFG[k] = v
        elif isinstance(cur, bool):
            CFG[k] = as_bool(v)
        elif isinstance(cur, int):
            CFG[k] = int(float(v))
        elif isinstance(cur, float):
            CFG[k] = float(v)
        else:
            CFG[k] = v


def select_targets(p):
    u = p.get("uuid")
    h = p.get("hash")
    cs = open_conns(u)
    if h is not None:
        cs = [c for c in cs if c.hash == h]
    return cs


async def control(request):
    name = request.match_info["name"]
    p = await control_params(request)
    if name == "stats":
        frames = as_bool(p.get("frames", False))
        totals = dict(STATS.totals)
        totals["open_connections"] = len(open_conns())
        return web.json_response(
            {
                "totals": totals,
                "connections": [c.report(frames) for c in CONNS if c.id not in STATS.forgotten],
                "subscribes": STATS.subscribes,
                "unsubscribes": STATS.unsubscribes,
                "close_requests": STATS.close_requests,
                "posts": STATS.posts,
                "auth": STATS.auth,
                "config": config_view(),
            },
            dumps=lambda v: json.dumps(v, ensure_ascii=False),
        )
    if name == "wait":
        key = p.get("key", "connections")
        n = int(p.get("at_least", 1))
        deadline = time.monotonic() + float(p.get("timeout", 5))

        def value():
            if key == "open_connections":
                return len(open_conns())
            return STATS.totals.get(key, 0)

        while value() < n and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return web.json_response({"ok": value() >= n, "value": value()})
    if name == "reset":
        STATS.reset()
        STATS.forgotten = {c.id for c in CONNS if not c.open}
        return web.json_response({"ok": True})
    if name == "config":
        if p:
            set_config(p)
        return web.json_response(config_view(), dumps=lambda v: json.dumps(v, ensure_ascii=False))
    if name == "push":
        cs = open_conns(p.get("uuid"))
        for c in cs:
            if "raw" in p:
                c.send_raw(str(p["raw"]))
            else:
                m = p.get("message", "")
                c.send_msg(m if isinstance(m, str) else dumps(m))
        return web.json_response({"sent_to": [c.uuid for c in cs]})
    if name == "drop":
        how = p.get("how", "close")
        code = int(p.get("code", 1001))
        cs = open_conns(p.get("uuid"))
        for c in cs:
            STATS.totals["drops"] += 1
            await c.close(code, "dropped by control", abort=(how == "abort"))
        return web.json_response({"dropped": [c.uuid for c in cs]})
    if name == "event":
        etype = p.get("event", "state")
        only = set(as_int_list(p["tracker_ids"])) if "tracker_ids" in p else None
        sent = 0
        if etype == "lifecycle":
            le = p.get("lifecycle_event", "block")
            ids = sorted(only) if only is not None else list(CFG["trackers"])
            for t in ids:
                if le == "block":
                    STATUS_OVERRIDE[t] = "blocked"
                elif le == "unblock":
                    STATUS_OVERRIDE[t] = "normal"
            for c in open_conns(p.get("uuid")):
                if not (set(c.subs) & LIFECYCLE_CARRIERS):
                    continue
                covered = set()
                for t, r in c.subs.items():
                    if t in LIFECYCLE_CARRIERS:
                        covered |= set(r["ids"] or [])
                for t in ids:
                    if t in covered:
                        c.send_json({"type": "event", "event": "lifecycle",
                                     "data": {"source_id": SOURCE_BASE + t, "lifecycle_event": le}})
                        sent += 1
                if le == "unblock":
                    for t, r in c.subs.items():
                        if t in ("state", "state_batch"):
                            send_events(c, t, r["ids"] or [], only=set(ids))
        else:
            for c in open_conns(p.get("uuid")):
                r = c.subs.get(etype)
                if r is not None:
                    sent += send_events(c, etype, r["ids"] or [], only=only)
        return web.json_response({"sent": sent})
    if name in ("logout", "error"):
        cs = [c for c in select_targets(p) if c.subs or p.get("uuid")]
        if name == "logout":
            msg = {"type": "event", "event": "logout", "data": p.get("reason", "session closed")}
        else:
            msg = {"type": "error", "action": p.get("action", "subscription/subscribe"),
                   "status": {"code": int(p.get("code", 4)), "description": p.get("description", DESC_4)}}
        for c in cs:
            c.send_json(msg)
            if as_bool(p.get("invalidate", True)) and c.hash:
                VALID_HASHES.discard(c.hash)
                REVOKED_HASHES.add(c.hash)
            if as_bool(p.get("close", False)):
                c.send_close(1000, name)
        return web.json_response({"sent_to": [c.uuid for c in cs]})
    if name == "bad":
        kind = p.get("kind", "")
        tid = CFG["trackers"][0] if CFG["trackers"] else 1
        sample = dumps({"type": "event", "event": "state", "user_time": user_time(), "data": state_obj(tid)})
        if kind == "handshake-missing-fields":
            HANDSHAKE_OVERRIDE.update(text="{uuid}|", count=int(p.get("count", 1)))
            return web.json_response({"armed": True})
        cs = open_conns(p.get("uuid"))
        for c in cs:
            if kind == "nonnumeric-length":
                c.send_raw("abc|" + sample)
            elif kind == "overlong-length":
                c.send_raw(f"{u16len(sample) + 100}|{sample}")
                c.send_close(1000, "overlong-length")
            elif kind == "unknown-type":
                c.send_msg('{"type":"weird"}')
            elif kind == "unknown-event":
                c.send_msg('{"type":"event","event":"mystery","data":{}}')
            elif kind == "non-json":
                c.send_msg("this is not JSON {")
            elif kind == "truncated-json":
                c.send_msg('{"type":"event","event":"state","data":{')
            else:
                raise web.HTTPBadRequest(text=f"unknown kind {kind}\n")
        return web.json_response({"sent_to": [c.uuid for c in cs]})
    if name == "handshake":
        t = p.get("text")
        HANDSHAKE_OVERRIDE.update(text=t, count=int(p.get("count", 1)) if t is not None else 0)
        return web.json_response(dict(HANDSHAKE_OVERRIDE))
    if name == "greeting":
        m = p.get("message")
        if m is not None and not isinstance(m, str):
            m = dumps(m)
        GREETING.update(message=m, same_frame=as_bool(p.get("same_frame", True)))
        return web.json_response(dict(GREETING))
    raise web.HTTPNotFound(text=f"unknown control {name}\n")


# ---------------------------------------------------------------------------------------------
# Main


def parse_args(argv):
    ap = argparse.ArgumentParser(description="Atmosphere + Navixy fixture (see module docstring)")
    ap.add_argument("--base", default="/v2")
    ap.add_argument("--apikey", action="append", default=[])
    ap.add_argument("--user", action="append", default=[])
    ap.add_argument("--auth-error-code", type=int, default=4)
    ap.add_argument("--client-heartbeat-ms", type=int, default=30000)
    ap.add_argument("--heartbeat-grace", type=float, default=2.5)
    ap.add_argument("--server-heartbeat-s", type=float, default=60.0)
    ap.add_argument("--padding", default="X")
    ap.add_argument("--hold-s", type=float, default=10.0)
    ap.add_argument("--refuse-websocket", action="store_true")
    ap.add_argument("--refuse-websocket-status", type=int, default=501)
    ap.add_argument("--no-version-check", action="store_true")
    ap.add_argument("--unknown-uuid", choices=["adopt", "refuse"], default="adopt")
    ap.add_argument("--framing", choices=["plain", "split", "batch", "split+batch"], default="plain")
    ap.add_argument("--split-style", choices=["sizes", "unicode"], default="sizes")
    ap.add_argument("--split-sizes", default="1,2,3,5,8,13")
    ap.add_argument("--split-delay-ms", type=float, default=0.0)
    ap.add_argument("--split-handshake", action="store_true")
    ap.add_argument("--batch-window-ms", type=float, default=50.0)
    ap.add_argument("--batch-max", type=int, default=0)
    ap.add_argument("--trackers", default="15564,15565,15568,21080")
    ap.add_argument("--blocked", default="15565")
    ap.add_argument("--unknown", default="")
    ap.add_argument("--disallowed", default="")
    ap.add_argument("--event-interval-s", type=float, default=0.0)
    ap.add_argument("--doc-quirks", action="store_true")
    ap.add_argument("--silent", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    return ap.parse_args(argv)


def configure(a):
    global VERBOSE
    VERBOSE = a.verbose
    users = {}
    for u in a.user:
        if ":" not in u:
            sys.exit(f"--user wants LOGIN:PASSWORD, got {u!r}")
        login, pw = u.split(":", 1)
        users[login] = pw
    base = "/" + a.base.strip("/") if a.base.strip("/") else ""
    CFG.update(
        base=base,
        apikeys=set(a.apikey),
        users=users,
        auth_error_code=a.auth_error_code,
        client_heartbeat_ms=a.client_heartbeat_ms,
        heartbeat_grace=a.heartbeat_grace,
        server_heartbeat_s=a.server_heartbeat_s,
        padding=a.padding,
        hold_s=a.hold_s,
        refuse_websocket=a.refuse_websocket,
        refuse_websocket_status=a.refuse_websocket_status,
        version_check=not a.no_version_check,
        unknown_uuid=a.unknown_uuid,
        framing=a.framing,
        split_style=a.split_style,
        split_sizes=as_int_list(a.split_sizes),
        split_delay_ms=a.split_delay_ms,
        split_handshake=a.split_handshake,
        batch_window_ms=a.batch_window_ms,
        batch_max=a.batch_max,
        trackers=as_int_list(a.trackers),
        blocked=set(as_int_list(a.blocked)),
        unknown=set(as_int_list(a.unknown)),
        disallowed=set(as_int_list(a.disallowed)),
        event_interval_s=a.event_interval_s,
        doc_quirks=a.doc_quirks,
        silent=a.silent,
    )
    VALID_HASHES.update(CFG["apikeys"])


def exit_when_stdin_closes():
    try:
        sys.stdin.buffer.read()
    finally:
        os._exit(0)


async def main(argv):
    configure(parse_args(argv))
    app = web.Application()
    base = CFG["base"]
    app.router.add_route("*", "/_control/{name}", control)
    app.router.add_route("*", f"{base}/user/auth", handle_auth)
    app.router.add_route("*", f"{base}/event/subscription", handle_socket)
    app.router.add_route("*", f"{base}/{{rest:.*}}", handle_rest_other)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(json.dumps({"port": port}), flush=True)
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    asyncio.ensure_future(periodic_events())
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1:]))
    except KeyboardInterrupt:
        pass
