// Plumbing shared by the socket.io test peers (server.js, thethings.js): command line,
// a real socket.io server of the chosen major version, the port announcement, and exiting
// when the test runner closes our stdin.
'use strict';

// Options every peer takes; `extra` maps further flags to option names (integer values).
function parsePeerArgs(name, argv, defaults, extra, usageText) {
  const o = Object.assign(
    { quiet: false, allowEIO3: false, pingInterval: null, pingTimeout: null, transports: null },
    defaults,
  );
  const usage = (msg) => {
    process.stderr.write(`${name}: ${msg}\nusage: node ${name} ${usageText}\n`);
    process.exit(2);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) usage(`missing value for ${a}`);
      return argv[++i];
    };
    const num = () => {
      const v = Number(val());
      if (!Number.isInteger(v) || v < 0) usage(`bad number for ${a}`);
      return v;
    };
    switch (a) {
      case '--version': o.version = Number(val()); break;
      case '--allow-eio3': o.allowEIO3 = true; break;
      case '--quiet': o.quiet = true; break;
      case '--ping-interval': o.pingInterval = num(); break;
      case '--ping-timeout': o.pingTimeout = num(); break;
      case '--transports': o.transports = val().split(',').map((s) => s.trim()).filter(Boolean); break;
      default:
        if (!(a in extra)) usage(`unknown argument ${a}`);
        o[extra[a]] = num();
    }
  }
  if (o.version !== 2 && o.version !== 4) usage('--version must be 2 or 4');
  if (o.allowEIO3 && o.version !== 4) usage('--allow-eio3 only makes sense with --version 4');
  return { opts: o, usage };
}

// A socket.io server (4.x or 2.x, pinned in package.json) on `httpServer`.
function createIo(httpServer, opts, extraV4 = {}) {
  const ioOpts = {};
  if (opts.pingInterval !== null) ioOpts.pingInterval = opts.pingInterval;
  if (opts.pingTimeout !== null) ioOpts.pingTimeout = opts.pingTimeout;
  if (opts.transports) ioOpts.transports = opts.transports;
  if (opts.version === 4) {
    const { Server } = require('socket.io');
    if (opts.allowEIO3) ioOpts.allowEIO3 = true;
    return new Server(httpServer, Object.assign(ioOpts, extraV4));
  }
  ioOpts.serveClient = false;
  return require('socket.io-v2')(httpServer, ioOpts);
}

// Listens on 127.0.0.1 port 0, prints {"port":N} first, and exits when stdin closes (so a
// killed test runner leaves no peer behind) or on SIGTERM/SIGINT.
function serve(httpServer, log, opts) {
  httpServer.listen(0, '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({ port: httpServer.address().port }) + '\n');
    log(`listening on 127.0.0.1:${httpServer.address().port} opts=${JSON.stringify(opts)}`);
  });
  const quit = () => process.exit(0);
  process.stdin.on('end', quit);
  process.stdin.on('close', quit);
  process.stdin.on('error', quit);
  process.stdin.resume();
  process.on('SIGTERM', quit);
  process.on('SIGINT', quit);
}

module.exports = { parsePeerArgs, createIo, serve };
