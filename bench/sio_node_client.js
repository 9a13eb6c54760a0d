#!/usr/bin/env node
// sio_node_client.js: the peer for the Socket.IO benchmark: npm socket.io-client 4.8.4 (from
// tests/peers/socketio), WebSocket transport only, receiving the stream of bench/sio_flood.js.
//
//   node bench/sio_node_client.js URL N
//
// Counts N events "tick" (touching every argument: sums its "seq"), timing the first to the N-th
// with the monotonic clock and measuring this process's CPU time (process.cpuUsage: user +
// system, all threads, GC included) over the same interval; then waits for "done" and checks it.
// socket.io-client hands every event to its listener as parsed JSON: that parse is part of the
// cost measured here (the library does it whether or not the listener reads the values).
//
// Prints one line of key=value pairs, the same keys as bench/sio_recv.c (parsed by
// scripts/bench.sh); failures go to stderr with a non-zero exit status. Every wait is bounded.
'use strict';

const path = require('path');

const PEERS = path.join(__dirname, '..', 'tests', 'peers', 'socketio', 'node_modules');
const { io } = require(path.join(PEERS, 'socket.io-client'));

/** Upper bound for the whole run (connect, stream, "done"). */
const DEADLINE_MS = 60000;

function fail(msg) {
  process.stderr.write(`sio_node_client: ${msg}\n`);
  process.exit(1);
}

const [url, nText] = process.argv.slice(2);
const n = Number(nText);
if (!url || !Number.isInteger(n) || n < 2) {
  process.stderr.write('usage: node bench/sio_node_client.js URL N   (N >= 2)\n');
  process.exit(2);
}

const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

const socket = io(url, { transports: ['websocket'], reconnection: false, timeout: 10000 });

let count = 0;
let checksum = 0;
let t0 = 0n;
let t1 = 0n;
let c0 = 0;
let c1 = 0;

const timer = setTimeout(() => fail(`got ${count} of ${n} events before the deadline`), DEADLINE_MS);

socket.on('tick', (reading) => {
  if (count === 0) {
    t0 = process.hrtime.bigint();
    c0 = cpuSeconds();
  }
  checksum += reading.seq;
  count++;
  if (count === n) {
    t1 = process.hrtime.bigint();
    c1 = cpuSeconds();
  }
});

socket.on('done', (info) => {
  clearTimeout(timer);
  socket.off('disconnect');
  socket.close();
  if (count !== n || (info && info.count !== n)) {
    fail(`got ${count} events, expected ${n} (server sent ${info && info.count})`);
  }
  const secs = Number(t1 - t0) / 1e9;
  const cpu = c1 - c0;
  if (secs <= 0) fail('too few events to time');
  const expect = (n * (n - 1)) / 2;
  if (checksum !== expect) fail(`checksum ${checksum}, expected ${expect}`);
  process.stdout.write(`mode=node events=${n} seconds=${secs.toFixed(4)} ` +
    `events_per_s=${((n - 1) / secs).toFixed(0)} cpu_seconds=${cpu.toFixed(4)} ` +
    `ns_cpu_per_event=${(cpu * 1e9 / (n - 1)).toFixed(1)} ` +
    `server_seconds=${info.seconds} server_cpu_seconds=${info.cpu_seconds} checksum=${checksum}\n`);
  process.exit(0);
});

socket.on('connect_error', (err) => fail(`connect error: ${err.message}`));
socket.on('disconnect', (reason) => fail(`disconnected after ${count} events: ${reason}`));
