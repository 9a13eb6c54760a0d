#!/usr/bin/env node
// sio_flood.js: a real Socket.IO 4 server (npm socket.io 4.8.4, from tests/peers/socketio) that
// floods every client with events, for benchmarks. Loopback only.
//
//   node bench/sio_flood.js [--count N] [--namespace NS] [--eio3] [--no-cork]
//
//   --count N       events "tick" per connection (default 200000)
//   --namespace NS  the namespace that streams (default "/")
//   --eio3          also accept Engine.IO 3 clients (socket.io's allowEIO3)
//   --no-cork       stock socket.io writes: one write(2) per WebSocket frame (see below); a
//                   client can also choose per connection with ?cork=0 or ?cork=1 on its URL
//
// Every client that joins the namespace receives N events "tick", each with one argument: a JSON
// object that serializes to exactly 150 bytes (a sensor reading with "seq" 0..N-1, the same shape
// as examples/flood_server.rs sends), then one event "done" with
//   {"count":N,"seconds":S,"cpu_seconds":C}
// where S is the server's wall time from the first emit to the moment the last "tick" was handed
// to the kernel, and C the server process's CPU time (user + system, all threads) over the same
// interval; C / S close to 1 means the server (one JavaScript thread) was the bottleneck.
//
// Back-pressure: events are emitted in batches of BATCH; the next batch is emitted only once the
// Engine.IO write buffer is empty and the WebSocket transport has had every frame written to the
// socket (its "drain" event), so the process never queues more than one batch per client.
//
// Writes: stock socket.io (engine.io 6 over ws 8) writes every frame with its own write(2), so
// the sender spends most of its time in syscalls and the receiver gets a few frames per read.
// By default this server corks the TCP socket whenever Engine.IO flushes its buffer to the
// transport and uncorks it on the next tick (Node's documented cork/nextTick pattern), so a
// batch leaves in one writev(2): same frames, same bytes, larger segments, and a sender that
// keeps up better with the receivers. --no-cork measures the stock behaviour.
//
// Only the WebSocket transport is offered (both benchmark clients use it). Listens on 127.0.0.1,
// port 0; prints {"port":N} as the first stdout line; exits when stdin closes (or on
// SIGTERM/SIGINT). One line per finished stream goes to stderr.
'use strict';

const path = require('path');
const http = require('http');

const PEERS = path.join(__dirname, '..', 'tests', 'peers', 'socketio', 'node_modules');
const { Server } = require(path.join(PEERS, 'socket.io'));

/** Events emitted per batch before waiting for the transport to drain. */
const BATCH = 512;
/** Serialized size of every "tick" argument. */
const MESSAGE_LEN = 150;

function usage(msg) {
  process.stderr.write(`sio_flood: ${msg}\nusage: node bench/sio_flood.js [--count N] [--namespace NS] [--eio3] [--no-cork]\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const o = { count: 200000, namespace: '/', eio3: false, cork: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) usage(`missing value for ${a}`);
      return argv[++i];
    };
    switch (a) {
      case '--count': {
        const n = Number(val());
        if (!Number.isInteger(n) || n < 1) usage('--count must be a positive integer');
        o.count = n;
        break;
      }
      case '--namespace':
        o.namespace = val();
        if (!o.namespace.startsWith('/')) usage('a namespace starts with "/"');
        break;
      case '--eio3': o.eio3 = true; break;
      case '--no-cork': o.cork = false; break;
      default: usage(`unknown argument ${a}`);
    }
  }
  return o;
}

const opts = parseArgs(process.argv.slice(2));

// The reading for sequence number `seq`, padded so JSON.stringify gives exactly MESSAGE_LEN bytes.
// JSON.stringify writes a finite number as String(number), so the serialized length is the fixed
// part plus the lengths of the four numbers.
const PAD = 'x'.repeat(MESSAGE_LEN);
const FIXED = JSON.stringify({
  sensor: 'greenhouse-00', seq: 0, temperature: 0, humidity: 0, pressure: 1013.25, ts: 0, pad: '',
}).length - 4;
function reading(seq) {
  const temperature = Number((18 + (seq % 1000) / 100).toFixed(2));
  const humidity = Number((40 + (seq % 400) / 10).toFixed(1));
  const ts = 1732400000000 + seq;
  const len = FIXED + String(seq).length + String(temperature).length + String(humidity).length +
    String(ts).length;
  return {
    sensor: `greenhouse-${String(seq % 16).padStart(2, '0')}`,
    seq,
    temperature,
    humidity,
    pressure: 1013.25,
    ts,
    pad: PAD.slice(0, MESSAGE_LEN - len),
  };
}
for (const seq of [0, 7, 123, 99999, 1234567]) {
  if (JSON.stringify(reading(seq)).length !== MESSAGE_LEN) throw new Error(`reading ${seq} size`);
}

function cpuSeconds() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

const httpServer = http.createServer((req, res) => {
  res.writeHead(404, { 'Content-Type': 'text/plain' });
  res.end('not found\n');
});
const io = new Server(httpServer, {
  transports: ['websocket'],
  allowEIO3: opts.eio3,
  serveClient: false,
  perMessageDeflate: false,
});

io.of(opts.namespace).on('connection', (socket) => {
  const conn = socket.conn; // the Engine.IO socket
  const n = opts.count;
  // Per connection, `?cork=0` / `?cork=1` on the client's URL overrides the command line.
  const asked = socket.handshake.query.cork;
  const cork = asked === '0' ? false : asked === '1' ? true : opts.cork;
  const who = `${socket.id} (eio ${conn.protocol}${cork ? '' : ', no cork'})`;
  if (cork) {
    // Engine.IO hands its whole write buffer to the transport at once ("flush"); corking the TCP
    // socket until the next tick turns the one write per frame into one writev per flush.
    const tcp = conn.transport.socket._socket; // ws 8's net.Socket
    if (!tcp || typeof tcp.cork !== 'function') throw new Error('no TCP socket to cork (ws changed?)');
    conn.on('flush', () => {
      tcp.cork();
      process.nextTick(() => tcp.uncork());
    });
  }
  let seq = 0;
  let t0 = 0;
  let c0 = 0;

  // True once every emitted packet left the Engine.IO buffer and the transport wrote them all.
  const flushed = () => conn.writeBuffer.length === 0 && conn.transport.writable;

  // Waits for the transport's "drain" (last frame of a send written to the socket) until the
  // buffer is empty; the transport sets `writable` right after emitting "drain", so check on
  // the next tick.
  const whenFlushed = (then) => {
    if (flushed()) {
      setImmediate(then);
      return;
    }
    conn.transport.once('drain', () => process.nextTick(() => whenFlushed(then)));
  };

  const finish = () => {
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = cpuSeconds() - c0;
    socket.emit('done', { count: n, seconds: Number(secs.toFixed(4)), cpu_seconds: Number(cpu.toFixed(4)) });
    process.stderr.write(`sio_flood: ${who}: sent ${n} events in ${secs.toFixed(3)} s, ` +
      `${Math.round(n / secs)} events/s, server CPU ${cpu.toFixed(3)} s (${(100 * cpu / secs).toFixed(0)}%)\n`);
  };

  const pump = () => {
    if (!socket.connected) {
      process.stderr.write(`sio_flood: ${who}: client left after ${seq} of ${n} events\n`);
      return;
    }
    if (seq >= n) {
      finish();
      return;
    }
    const end = Math.min(n, seq + BATCH);
    for (; seq < end; seq++) socket.emit('tick', reading(seq));
    whenFlushed(pump);
  };

  t0 = process.hrtime.bigint();
  c0 = cpuSeconds();
  pump();
});

httpServer.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: httpServer.address().port }) + '\n');
});

function stop() {
  io.close();
  httpServer.close();
  process.exit(0);
}
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
