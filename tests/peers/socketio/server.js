#!/usr/bin/env node
// A real Socket.IO server for livefeed's tests: socket.io 4.x (Engine.IO 4, Socket.IO protocol 5)
// or socket.io 2.x (Engine.IO 3, Socket.IO protocol 4), pinned in package.json.
//
//   node server.js --version 4|2 [--allow-eio3] [--ping-interval MS] [--ping-timeout MS]
//                  [--transports websocket,polling] [--quiet] [--connect-timeout MS]
//
// Listens on 127.0.0.1, port 0; prints {"port":N} as the first stdout line; exits when its stdin
// closes (or on SIGTERM/SIGINT). Path /socket.io/ (the default). Every connection, namespace
// connect, incoming event and disconnect is logged to stderr, one line each (not with --quiet).
//
// Namespaces "/", "/chat" and "/private" all answer these events:
//   echo  ...args      -> emits "echo" with exactly the same args (Buffers included: binary echo);
//                         an ack callback, if the client asked for one, is ignored
//   ack   ...args, cb  -> calls the ack with the same args
//   ask                -> emits "question" "q1", 42 asking the client for an ack; when the ack
//                         comes, emits "answer" with the ack's args
//   bin                -> emits "bin" <1 KiB Buffer, byte i = i % 256>, {"n":1}
//   kick               -> disconnects that socket from its namespace (server DISCONNECT packet)
//   close-all          -> socket.disconnect(true): DISCONNECT for every namespace of that client,
//                         then closes the Engine.IO connection
//   drop               -> closes the Engine.IO connection directly (socket.conn.close()), no
//                         Socket.IO DISCONNECT packets
//   stream {"n":K}     -> emits K events "tick" {"i":0} ... {"i":K-1}, back to back
// "/private" needs a token: v4 reads the CONNECT auth payload ({"token":"good"}); v2 reads the
// handshake query (?token=good on the namespace URL). Otherwise a middleware refuses with
// new Error("bad token") -> v4: CONNECT_ERROR {"message":"bad token"}, v2: ERROR "bad token".
// On success the server emits "welcome" {"ns":"/private"}.
'use strict';

const http = require('http');
const { parsePeerArgs, createIo, serve } = require('./common');

const { opts, usage } = parsePeerArgs(
  'server.js',
  process.argv.slice(2),
  { version: 4, connectTimeout: null },
  { '--connect-timeout': 'connectTimeout' },
  '--version 4|2 [--allow-eio3] [--ping-interval MS] [--ping-timeout MS] ' +
    '[--transports websocket,polling] [--quiet] [--connect-timeout MS]',
);
const V = opts.version;

function log(...parts) {
  if (opts.quiet) return;
  process.stderr.write(`[sio-v${V}] ${parts.join(' ')}\n`);
}

function show(args) {
  return JSON.stringify(args, (k, v) => {
    if (v && v.type === 'Buffer' && Array.isArray(v.data)) return `<Buffer ${v.data.length} bytes>`;
    if (typeof v === 'function') return '<ack>';
    return v;
  });
}

const httpServer = http.createServer((req, res) => {
  res.writeHead(404, { 'Content-Type': 'text/plain' });
  res.end('not found\n');
});

if (V === 2 && opts.connectTimeout !== null) usage('--connect-timeout is a socket.io 4 option');
const io = createIo(httpServer, opts, opts.connectTimeout !== null ? { connectTimeout: opts.connectTimeout } : {});

io.engine.on('connection', (conn) => {
  const proto = conn.protocol !== undefined ? conn.protocol : 3;
  log(`engine open sid=${conn.id} eio=${proto} transport=${conn.transport.name}`);
  conn.on('upgrade', (t) => log(`engine upgrade sid=${conn.id} transport=${t.name}`));
  conn.on('close', (reason, desc) => log(`engine close sid=${conn.id} reason=${reason}${desc && desc.message ? ' ' + desc.message : ''}`));
});

function handlers(socket) {
  const ns = socket.nsp.name;
  log(`connect ns=${ns} id=${socket.id} engine=${socket.conn.id}`);

  // Log every incoming event (works on 2.x and 4.x alike).
  socket.use((packet, next) => {
    log(`event ns=${ns} id=${socket.id} ${show(packet)}`);
    next();
  });

  socket.on('echo', (...args) => {
    if (args.length && typeof args[args.length - 1] === 'function') args.pop();
    socket.emit('echo', ...args);
  });
  socket.on('ack', (...args) => {
    const cb = args.length && typeof args[args.length - 1] === 'function' ? args.pop() : null;
    if (cb) cb(...args);
    else log(`ack ns=${ns}: client asked for no ack`);
  });
  socket.on('ask', () => {
    socket.emit('question', 'q1', 42, (...reply) => {
      log(`answer ns=${ns} id=${socket.id} ${show(reply)}`);
      socket.emit('answer', ...reply);
    });
  });
  socket.on('bin', () => {
    const buf = Buffer.alloc(1024);
    for (let i = 0; i < buf.length; i++) buf[i] = i % 256;
    socket.emit('bin', buf, { n: 1 });
  });
  socket.on('kick', () => socket.disconnect(false));
  socket.on('close-all', () => socket.disconnect(true));
  socket.on('drop', () => socket.conn.close());
  socket.on('stream', (arg) => {
    const n = arg && Number.isInteger(arg.n) && arg.n >= 0 ? arg.n : 0;
    for (let i = 0; i < n; i++) socket.emit('tick', { i });
  });
  socket.on('disconnect', (reason) => log(`disconnect ns=${ns} id=${socket.id} reason=${reason}`));
}

// '/hang' never answers a CONNECT: its middleware never calls next().
io.of('/hang').use(() => log('holding a connect to /hang'));

for (const name of ['/', '/chat', '/private']) {
  const nsp = io.of(name);
  if (name === '/private') {
    nsp.use((socket, next) => {
      const token = V === 4 ? (socket.handshake.auth || {}).token : (socket.handshake.query || {}).token;
      if (token === 'good') return next();
      log(`refuse ns=/private token=${JSON.stringify(token)}`);
      next(new Error('bad token'));
    });
  }
  nsp.on('connection', (socket) => {
    handlers(socket);
    if (name === '/private') socket.emit('welcome', { ns: '/private' });
  });
}

serve(httpServer, log, opts);
