#!/usr/bin/env node
// ws_node_client.js: the Node peer for the plain WebSocket rows: npm ws 8 (the copy that
// socket.io 4.8.4 depends on, in tests/peers/socketio/node_modules; no bufferutil or
// utf-8-validate, permessage-deflate off).
//
//   node bench/ws_node_client.js throughput URL N
//   node bench/ws_node_client.js echo URL N [WARMUP]
//
// throughput: counts N text messages in the 'message' listener (touching every payload: its
// length and first byte, like bench/recv.c), timing the first to the N-th with the monotonic
// clock and this process's CPU time (process.cpuUsage: user + system, all threads, GC included)
// over the same interval. ws hands text messages over as Buffers (no string decoding, as
// livefeed hands C the bytes); UTF-8 is still validated by ws.
// echo: sends a 150-byte JSON text message and waits for its echo, N times after WARMUP
// (default 1000) untimed round trips; percentiles of the round-trip time.
//
// Prints one line of key=value pairs, the same keys as bench/recv.c (parsed by
// scripts/bench.sh); failures go to stderr with a non-zero exit status. Every wait is bounded.
'use strict';

const path = require('path');

const PEERS = path.join(__dirname, '..', 'tests', 'peers', 'socketio', 'node_modules');
const WebSocket = require(path.join(PEERS, 'ws'));

const DEADLINE_MS = 60000;
const ECHO_MESSAGE = '{"sensor":"greenhouse-07","seq":0,"temperature":21.50,"humidity":55.5,' +
  '"pressure":1013.25,"ts":1732400000000,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}';

function fail(msg) {
  process.stderr.write(`ws_node_client: ${msg}\n`);
  process.exit(1);
}

const [mode, url, nText, warmText] = process.argv.slice(2);
const n = Number(nText);
if (!['throughput', 'echo'].includes(mode) || !url || !Number.isInteger(n) || n < 2) {
  process.stderr.write('usage: node bench/ws_node_client.js throughput|echo URL N [WARMUP]\n');
  process.exit(2);
}
if (ECHO_MESSAGE.length !== 150) throw new Error('echo message size');

const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

setTimeout(() => fail('deadline passed'), DEADLINE_MS).unref();
const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
ws.on('error', (e) => fail(`error: ${e.message}`));

if (mode === 'throughput') {
  let count = 0;
  let bytes = 0;
  let checksum = 0;
  let t0 = 0n;
  let c0 = 0;
  ws.on('message', (data) => {
    if (count === 0) {
      t0 = process.hrtime.bigint();
      c0 = cpuSeconds();
    } else {
      bytes += data.length;
    }
    count++;
    if (data.length > 0) checksum += data[0];
    if (count === n) {
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      const cpu = cpuSeconds() - c0;
      process.stdout.write(`mode=throughput messages=${n} seconds=${secs.toFixed(4)} ` +
        `msgs_per_s=${((n - 1) / secs).toFixed(0)} mb_per_s=${(bytes / secs / 1e6).toFixed(1)} ` +
        `cpu_seconds=${cpu.toFixed(4)} ns_cpu_per_msg=${(cpu * 1e9 / (n - 1)).toFixed(1)} ` +
        `payload_bytes=${bytes} checksum=${checksum}\n`);
      process.exit(0);
    }
  });
  ws.on('close', () => fail(`closed after ${count} messages`));
} else {
  const warmup = warmText === undefined ? 1000 : Number(warmText);
  const rtts = new Float64Array(n);
  let rounds = 0;
  let sent = 0n;
  const send = () => {
    sent = process.hrtime.bigint();
    ws.send(ECHO_MESSAGE);
  };
  ws.on('open', send);
  ws.on('message', () => {
    const t = process.hrtime.bigint();
    if (rounds >= warmup) rtts[rounds - warmup] = Number(t - sent) / 1e3;
    rounds++;
    if (rounds < warmup + n) {
      send();
      return;
    }
    rtts.sort();
    const pct = (p) => rtts[Math.min(n - 1, Math.floor((n * p) / 100))].toFixed(1);
    const mean = rtts.reduce((a, b) => a + b, 0) / n;
    process.stdout.write(`mode=echo roundtrips=${n} p50_us=${pct(50)} p90_us=${pct(90)} ` +
      `p99_us=${pct(99)} mean_us=${mean.toFixed(1)} max_us=${rtts[n - 1].toFixed(1)}\n`);
    process.exit(0);
  });
  ws.on('close', () => fail(`closed after ${rounds} round trips`));
}
