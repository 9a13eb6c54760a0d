#!/usr/bin/env node
// A thethings.io real-time API fixture built on a real socket.io server (2.x by default, as
// thethings.io's own sample client is socket.io 1.x/2.x era; --version 4 switches to 4.x).
// See /work/shared/PROTOCOLS.md §2.1 and README.md next to this file.
//
//   node thethings.js [--version 2|4] [--allow-eio3] [--ping-interval MS] [--ping-timeout MS]
//                     [--transports websocket,polling] [--quiet] [--interval MS]
//
// One port (127.0.0.1, port 0) for HTTP and Socket.IO; prints {"port":N} as the first stdout
// line; exits when its stdin closes.
//
// HTTP:
//   POST /v2/login {"email","password","app"} -> 200 {"status":"success","token":"<session token>"}
//        for user@example.com / secret (any app), else 401
//        {"status":"error","code":401,"message":"Invalid credentials"}
//   GET  /stats -> JSON counters (logins, per-connection authenticates/subscribes, ...)
// Socket.IO, path /socket.io/, namespace "/v2":
//   "authenticate" {"sessionToken":T} -> "authenticate" {"status":"success"} if T was issued by
//        /v2/login or is "tok-good", else {"status":"error","message":"Invalid session token"}
//   "subscribe" {"resource":"/me/resources/<key>"} (after a successful authenticate) -> every
//        --interval ms (default 100) an event named exactly the resource string with one
//        argument: [{"key":"<key>","value":<n>,"datetime":"<ISO 8601>"}], n = 1, 2, 3, ...
//        Not authenticated / malformed resource -> event "error" {"status":"error","message":...}
//        Subscribing again to the same resource restarts its stream (no duplicate timers).
//   "unsubscribe" {"resource":R} -> stops that stream.
'use strict';

const http = require('http');
const { parsePeerArgs, createIo, serve } = require('./common');
const crypto = require('crypto');

const { opts, usage } = parsePeerArgs(
  'thethings.js',
  process.argv.slice(2),
  { version: 2, interval: 100 },
  { '--interval': 'interval' },
  '[--version 2|4] [--allow-eio3] [--ping-interval MS] [--ping-timeout MS] ' +
    '[--transports websocket,polling] [--quiet] [--interval MS]',
);
if (opts.interval < 1) usage('--interval must be >= 1');
const V = opts.version;

function log(...parts) {
  if (opts.quiet) return;
  process.stderr.write(`[thethings-v${V}] ${parts.join(' ')}\n`);
}

const EMAIL = 'user@example.com';
const PASSWORD = 'secret';
const issued = new Set(['tok-good']);
const stats = { logins: 0, loginFailures: 0, connections: [] };

function sendJson(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function onRequest(req, res) {
  const path = req.url.split('?')[0];
  if (req.method === 'POST' && path === '/v2/login') {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let body = null;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch (e) {
        body = null;
      }
      if (body && body.email === EMAIL && body.password === PASSWORD) {
        const token = crypto.randomBytes(24).toString('hex');
        issued.add(token);
        stats.logins++;
        log(`login ok app=${JSON.stringify(body.app)} token=${token}`);
        sendJson(res, 200, { status: 'success', token });
      } else {
        stats.loginFailures++;
        log(`login refused body=${JSON.stringify(body)}`);
        sendJson(res, 401, { status: 'error', code: 401, message: 'Invalid credentials' });
      }
    });
    return;
  }
  if (req.method === 'GET' && path === '/stats') {
    sendJson(res, 200, {
      logins: stats.logins,
      loginFailures: stats.loginFailures,
      connections: stats.connections.map((c) => ({
        id: c.id, engineId: c.engineId, eio: c.eio, transport: c.socket.conn.transport.name,
        connected: c.socket.connected, authenticates: c.authenticates, authOk: c.authOk,
        subscribes: c.subscribes, unsubscribes: c.unsubscribes, events: c.events,
        active: Array.from(c.streams.keys()),
      })),
    });
    return;
  }
  sendJson(res, 404, { status: 'error', code: 404, message: 'Not found' });
}

const httpServer = http.createServer(onRequest);

const io = createIo(httpServer, opts);

io.engine.on('connection', (conn) => {
  const proto = conn.protocol !== undefined ? conn.protocol : 3;
  log(`engine open sid=${conn.id} eio=${proto} transport=${conn.transport.name}`);
  conn.on('upgrade', (t) => log(`engine upgrade sid=${conn.id} transport=${t.name}`));
  conn.on('close', (reason) => log(`engine close sid=${conn.id} reason=${reason}`));
});

// Sends an event named "error" to the client. socket.io 2.x treats "error" as a reserved name
// in socket.emit() (it would only fire local listeners), so write the packet directly there.
function emitError(socket, message) {
  const payload = { status: 'error', message };
  if (V === 2) socket.packet({ type: 2 /* EVENT */, data: ['error', payload] });
  else socket.emit('error', payload);
}

io.of('/v2').on('connection', (socket) => {
  const c = {
    id: socket.id, engineId: socket.conn.id, eio: socket.conn.protocol !== undefined ? socket.conn.protocol : 3,
    socket, authenticated: false, authenticates: 0, authOk: 0, subscribes: 0, unsubscribes: 0, events: 0,
    streams: new Map(),
  };
  stats.connections.push(c);
  log(`connect ns=/v2 id=${socket.id} engine=${socket.conn.id}`);

  socket.use((packet, next) => {
    c.events++;
    log(`event id=${socket.id} ${JSON.stringify(packet.filter((x) => typeof x !== 'function'))}`);
    next();
  });

  socket.on('authenticate', (arg) => {
    c.authenticates++;
    const tok = arg && typeof arg.sessionToken === 'string' ? arg.sessionToken : null;
    if (tok !== null && issued.has(tok)) {
      c.authenticated = true;
      c.authOk++;
      socket.emit('authenticate', { status: 'success' });
    } else {
      c.authenticated = false;
      socket.emit('authenticate', { status: 'error', message: 'Invalid session token' });
    }
  });

  socket.on('subscribe', (arg) => {
    c.subscribes++;
    const resource = arg && typeof arg.resource === 'string' ? arg.resource : null;
    if (!c.authenticated) return emitError(socket, 'Not authenticated');
    const m = resource && /^\/me\/resources\/([^/]+)$/.exec(resource);
    if (!m) return emitError(socket, 'Invalid resource');
    const key = m[1];
    if (c.streams.has(resource)) clearInterval(c.streams.get(resource));
    let value = 0;
    c.streams.set(resource, setInterval(() => {
      value++;
      socket.emit(resource, [{ key, value, datetime: new Date().toISOString() }]);
    }, opts.interval));
  });

  socket.on('unsubscribe', (arg) => {
    c.unsubscribes++;
    const resource = arg && typeof arg.resource === 'string' ? arg.resource : null;
    if (resource !== null && c.streams.has(resource)) {
      clearInterval(c.streams.get(resource));
      c.streams.delete(resource);
    }
  });

  socket.on('disconnect', (reason) => {
    log(`disconnect id=${socket.id} reason=${reason}`);
    for (const t of c.streams.values()) clearInterval(t);
    c.streams.clear();
  });
});

serve(httpServer, log, opts);
