#!/usr/bin/env bash
# Throughput and memory figures for livefeed through its C API, with a peer measured in
# the same run for context. Run by `make bench` (after `make`). Loopback only.
#
#   throughput  bench/recv.c receives BENCH_MESSAGES (default 1000000) 150-byte JSON
#               text messages from examples/flood_server.rs on one session; timed from
#               the first message to the last. Median of BENCH_RUNS (default 7) runs.
#   memory      bench/recv.c opens BENCH_SESSIONS (default 1000) idle sessions to
#               flood_server --idle; VmRSS growth per session.
#   peer        a Python `websockets` 15.0.1 sync client receives the same messages
#               from the same server (skipped with a note if Python is unavailable).
#   socketio    bench/sio_recv.c (livefeed, LF_PROTOCOL_SOCKET_IO) and its peer, Node's
#               socket.io-client 4.8.4 (bench/sio_node_client.js), each receive
#               BENCH_SIO_EVENTS (default 200000) events "tick" from one real socket.io
#               4.8.4 server (bench/sio_flood.js), taking turns, BENCH_SIO_RUNS (default 5)
#               runs each, medians; then BENCH_SIO_STOCK_RUNS (default 3) runs each with the
#               server's stock one-write-per-frame output. Needs Node >= 18 (the pinned npm
#               packages are installed into tests/peers/socketio if missing); skipped with a
#               note otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
CC=${CC:-cc}
MESSAGES=${BENCH_MESSAGES:-1000000}
SESSIONS=${BENCH_SESSIONS:-1000}
RUNS=${BENCH_RUNS:-7}
PYTHON=${PYTHON:-python3}
PY_WEBSOCKETS=15.0.1
NATIVE_STATIC_LIBS=(-lssl -lcrypto -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc)
RECV=build/bench-recv
SERVER=target/release/examples/flood_server
NODE=${NODE:-node}
NPM=${NPM:-npm}
SIO_EVENTS=${BENCH_SIO_EVENTS:-200000}
SIO_RUNS=${BENCH_SIO_RUNS:-5}
SIO_STOCK_RUNS=${BENCH_SIO_STOCK_RUNS:-3}
SIO_PEERS=tests/peers/socketio
SIO_RECV=build/bench-sio-recv

say() { echo "bench: $*" >&2; }

tmp=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- build ---------------------------------------------------------------------------
say "building examples/flood_server.rs, bench/recv.c and bench/sio_recv.c (release)"
"$CARGO" build --release --locked --quiet --example flood_server
mkdir -p build
"$CC" -std=c11 -Wall -Wextra -Werror -pedantic -O2 -Iinclude bench/recv.c -o "$RECV" \
  target/release/liblivefeed.a "${NATIVE_STATIC_LIBS[@]}"
"$CC" -std=c11 -Wall -Wextra -Werror -pedantic -O2 -Iinclude bench/sio_recv.c -o "$SIO_RECV" \
  target/release/liblivefeed.a "${NATIVE_STATIC_LIBS[@]}"

# ---- descriptors: one per session on each side, plus slack ----------------------------
want=$((SESSIONS + 256))
soft=$(ulimit -Sn)
hard=$(ulimit -Hn)
if [ "$soft" != unlimited ] && [ "$soft" -lt "$want" ]; then
  if [ "$hard" = unlimited ] || [ "$hard" -ge "$want" ]; then
    ulimit -Sn "$want"
  else
    ulimit -Sn "$hard"
    SESSIONS=$((hard - 256))
    say "open-file limit is $hard: measuring $SESSIONS sessions instead"
  fi
fi

# ---- Python peer: websockets==$PY_WEBSOCKETS, installed privately if missing ----------
peer_ok=0
if command -v "$PYTHON" >/dev/null 2>&1; then
  have=$("$PYTHON" -c 'import websockets; print(websockets.__version__)' 2>/dev/null || true)
  if [ "$have" != "$PY_WEBSOCKETS" ]; then
    pydeps=build/pydeps
    if [ "$(PYTHONPATH=$pydeps "$PYTHON" -c 'import websockets; print(websockets.__version__)' 2>/dev/null || true)" != "$PY_WEBSOCKETS" ]; then
      say "installing websockets==$PY_WEBSOCKETS into $pydeps (for the peer measurement)"
      "$PYTHON" -m pip install --quiet --disable-pip-version-check --target "$pydeps" \
        "websockets==$PY_WEBSOCKETS" >&2 || true
    fi
    export PYTHONPATH=$pydeps${PYTHONPATH:+:$PYTHONPATH}
  fi
  if [ "$("$PYTHON" -c 'import websockets; print(websockets.__version__)' 2>/dev/null || true)" = "$PY_WEBSOCKETS" ]; then
    peer_ok=1
  fi
fi
[ "$peer_ok" = 1 ] || say "Python with websockets==$PY_WEBSOCKETS is not available: skipping the peer"

cat >"$tmp/peer.py" <<'EOF'
"""Receives N messages with the websockets sync client; times the first to the N-th."""
import sys
import time

from websockets.sync.client import connect

url, n = sys.argv[1], int(sys.argv[2])
# No compression (the server offers none anyway) and no keepalive pings (the flood
# server does not answer them; livefeed sends none either while data flows).
with connect(url, compression=None, max_size=None, ping_interval=None) as ws:
    first = ws.recv()
    t0, c0 = time.monotonic(), time.process_time()
    checksum, nbytes = ord(first[0]), 0
    for _ in range(n - 1):
        m = ws.recv()
        checksum += ord(m[0])
        nbytes += len(m)
    t1, c1 = time.monotonic(), time.process_time()
secs, cpu = t1 - t0, c1 - c0
print(f"mode=peer messages={n} seconds={secs:.4f} msgs_per_s={(n - 1) / secs:.0f} "
      f"mb_per_s={nbytes / secs / 1e6:.1f} cpu_seconds={cpu:.4f} "
      f"ns_cpu_per_msg={cpu * 1e9 / (n - 1):.1f} checksum={checksum}")
EOF

# ---- helpers ----------------------------------------------------------------------------
# start_server NAME ARGS...: starts flood_server, sets $url from its first stdout line.
start_server() {
  local name=$1 fd line
  shift
  exec {fd}< <(exec "$SERVER" "$@" 2>"$tmp/$name.log")
  pids+=($!)
  if ! read -r -t 60 line <&"$fd"; then
    say "flood_server $* did not report its address within 60 s"
    cat "$tmp/$name.log" >&2
    exit 1
  fi
  url=${line#listening }
}

# field KEY LINE: the value of KEY=value in LINE.
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

# median VALUES...: the median (lower middle for an even count).
median() { printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"; }

# ---- throughput --------------------------------------------------------------------------
start_server flood --count "$MESSAGES"
flood_url=$url
say "throughput: $RUNS runs of $RECV throughput $flood_url $MESSAGES"
rates=() mbs=() nss=()
for i in $(seq "$RUNS"); do
  out=$("$RECV" throughput "$flood_url" "$MESSAGES")
  echo "  livefeed run $i: $out" >&2
  rates+=("$(field msgs_per_s "$out")")
  mbs+=("$(field mb_per_s "$out")")
  nss+=("$(field ns_cpu_per_msg "$out")")
done
lf_rate=$(median "${rates[@]}")
lf_mb=$(median "${mbs[@]}")
lf_ns=$(median "${nss[@]}")
lf_best=$(printf '%s\n' "${rates[@]}" | sort -g | tail -1)

py_rate="" py_mb="" py_ns=""
if [ "$peer_ok" = 1 ]; then
  say "peer: $PYTHON peer.py $flood_url $MESSAGES (websockets $PY_WEBSOCKETS, sync client)"
  if out=$(timeout 110 "$PYTHON" "$tmp/peer.py" "$flood_url" "$MESSAGES"); then
    echo "  python run: $out" >&2
    py_rate=$(field msgs_per_s "$out")
    py_mb=$(field mb_per_s "$out")
    py_ns=$(field ns_cpu_per_msg "$out")
  else
    say "the Python peer failed; no peer figures"
  fi
fi

# ---- memory ------------------------------------------------------------------------------
start_server idle --idle
say "memory: $RECV memory $url $SESSIONS"
mem=$("$RECV" memory "$url" "$SESSIONS")
echo "  livefeed: $mem" >&2
kib=$(field kib_per_session "$mem")
rss0=$(field rss_before_kib "$mem")
rss1=$(field rss_after_kib "$mem")
open_s=$(field open_seconds "$mem")

# ---- Socket.IO ---------------------------------------------------------------------------
# Node >= 18 and the pinned socket.io / socket.io-client 4.8.4 from tests/peers/socketio.
sio_versions_ok() {
  "$NODE" -e '
    const path = require("path");
    const dir = path.resolve(process.argv[1], "node_modules");
    const v = (m) => require(path.join(dir, m, "package.json")).version;
    const major = Number(process.versions.node.split(".")[0]);
    process.exit(major >= 18 && v("socket.io") === "4.8.4" && v("socket.io-client") === "4.8.4" ? 0 : 1);
  ' "$SIO_PEERS" 2>/dev/null
}
sio_ok=0
if command -v "$NODE" >/dev/null 2>&1; then
  if ! sio_versions_ok && command -v "$NPM" >/dev/null 2>&1; then
    say "installing $SIO_PEERS/node_modules with npm ci (for the Socket.IO section)"
    "$NPM" ci --prefix "$SIO_PEERS" --no-audit --no-fund --loglevel=error >&2 || true
  fi
  sio_versions_ok && sio_ok=1
fi
[ "$sio_ok" = 1 ] || say "Node >= 18 with socket.io 4.8.4 in $SIO_PEERS is not available: skipping Socket.IO"

# busy CPU_SECONDS SECONDS: CPU time as a percentage of the wall-clock interval.
busy() { awk -v c="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", 100 * c / s; else print 0 }'; }
# per_event CPU_SECONDS: nanoseconds per event of the run.
per_event() { awk -v c="$1" -v n="$SIO_EVENTS" 'BEGIN { printf "%.1f", c * 1e9 / n }'; }

# sio_runs LABEL URL RUNS PREFIX: RUNS rounds of livefeed, livefeed reading JSON (only when
# PREFIX is "sio") and the Node peer against URL, in turn; the medians go to PREFIX_lf_rate,
# PREFIX_lf_ns, PREFIX_lj_ns, PREFIX_nd_rate, ... (empty where a peer produced nothing).
sio_runs() {
  local label=$1 u=$2 runs=$3 p=$4 i out
  local -a lr=() ln=() lb=() ls=() jn=() nr=() nn=() nb=() ns=()
  for i in $(seq "$runs"); do
    out=$("$SIO_RECV" "$u" "$SIO_EVENTS")
    echo "  $label livefeed run $i: $out" >&2
    lr+=("$(field events_per_s "$out")")
    ln+=("$(field ns_cpu_per_event "$out")")
    lb+=("$(busy "$(field server_cpu_seconds "$out")" "$(field server_seconds "$out")")")
    ls+=("$(per_event "$(field server_cpu_seconds "$out")")")
    if [ "$p" = sio ]; then
      out=$("$SIO_RECV" "$u" "$SIO_EVENTS" json)
      echo "  $label livefeed json run $i: $out" >&2
      jn+=("$(field ns_cpu_per_event "$out")")
    fi
    if out=$(timeout 90 "$NODE" bench/sio_node_client.js "$u" "$SIO_EVENTS"); then
      echo "  $label node run $i: $out" >&2
      nr+=("$(field events_per_s "$out")")
      nn+=("$(field ns_cpu_per_event "$out")")
      nb+=("$(busy "$(field server_cpu_seconds "$out")" "$(field server_seconds "$out")")")
      ns+=("$(per_event "$(field server_cpu_seconds "$out")")")
    else
      say "$label: the Node peer failed in run $i"
    fi
  done
  printf -v "${p}_lf_rate" '%s' "$(median "${lr[@]}")"
  printf -v "${p}_lf_ns" '%s' "$(median "${ln[@]}")"
  printf -v "${p}_lf_busy" '%s' "$(median "${lb[@]}")"
  printf -v "${p}_lf_srv" '%s' "$(median "${ls[@]}")"
  printf -v "${p}_lj_ns" '%s' "$( [ ${#jn[@]} -gt 0 ] && median "${jn[@]}" || true)"
  printf -v "${p}_nd_rate" '%s' "$( [ ${#nr[@]} -gt 0 ] && median "${nr[@]}" || true)"
  printf -v "${p}_nd_ns" '%s' "$( [ ${#nn[@]} -gt 0 ] && median "${nn[@]}" || true)"
  printf -v "${p}_nd_busy" '%s' "$( [ ${#nb[@]} -gt 0 ] && median "${nb[@]}" || true)"
  printf -v "${p}_nd_srv" '%s' "$( [ ${#ns[@]} -gt 0 ] && median "${ns[@]}" || true)"
}

if [ "$sio_ok" = 1 ]; then
  # The server exits when its stdin closes: a FIFO whose write end this script holds (opened
  # after the server opened its end), so it goes away with the script even without the trap.
  mkfifo "$tmp/sio.in"
  exec {sio_out}< <(exec "$NODE" bench/sio_flood.js --count "$SIO_EVENTS" <"$tmp/sio.in" \
    2>"$tmp/sio.log")
  pids+=($!)
  exec {sio_in}>"$tmp/sio.in"
  if ! read -r -t 60 line <&"$sio_out"; then
    say "bench/sio_flood.js did not report its port within 60 s"
    cat "$tmp/sio.log" >&2
    exit 1
  fi
  sio_port=$(sed -n 's/^{"port":\([0-9]*\)}$/\1/p' <<<"$line")
  [ -n "$sio_port" ] || { say "bench/sio_flood.js said: $line"; exit 1; }
  sio_url=http://127.0.0.1:$sio_port/
  say "socketio: $SIO_RUNS rounds of $SIO_RECV $sio_url $SIO_EVENTS [json] and" \
    "$NODE bench/sio_node_client.js $sio_url $SIO_EVENTS"
  sio_runs socketio "$sio_url" "$SIO_RUNS" sio
  say "socketio, stock server writes: $SIO_STOCK_RUNS rounds against ${sio_url}?cork=0"
  sio_runs "socketio stock" "${sio_url}?cork=0" "$SIO_STOCK_RUNS" stk
  sio_node_version=$("$NODE" --version)
  exec {sio_in}>&-
fi

# ---- report ------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1fx", a / b; else print "-" }'; }
cpus=$(nproc 2>/dev/null || echo "?")
echo
echo "livefeed benchmark: loopback, $cpus CPUs, $(uname -sr), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "messages: 150-byte JSON text frames, $MESSAGES per run; sender: examples/flood_server.rs"
echo
printf '%-40s %16s %18s %8s\n' "" "livefeed (C API)" "python websockets" "ratio"
printf '%-40s %16s %18s %8s\n' "throughput, msgs/s (median of $RUNS)" "$lf_rate" "${py_rate:--}" \
  "$( [ -n "$py_rate" ] && ratio "$lf_rate" "$py_rate" || echo -)"
printf '%-40s %16s %18s %8s\n' "throughput, MB/s of payload" "$lf_mb" "${py_mb:--}" \
  "$( [ -n "$py_mb" ] && ratio "$lf_mb" "$py_mb" || echo -)"
printf '%-40s %16s %18s %8s\n' "receiver CPU, ns per message" "$lf_ns" "${py_ns:--}" \
  "$( [ -n "$py_ns" ] && ratio "$py_ns" "$lf_ns" || echo -)"
printf '%-40s %16s\n' "throughput, msgs/s (best of $RUNS)" "$lf_best"
printf '%-40s %16s\n' "idle session memory, KiB/session" "$kib"
printf '%-40s %16s\n' "  ($SESSIONS sessions: VmRSS KiB before/after)" "$rss0/$rss1"
printf '%-40s %16s\n' "  time to open them all, s" "$open_s"
echo
echo "msgs/s and MB/s are wall-clock and include waiting for the sender, which shares the"
echo "machine; ns/message is the receiver's own CPU time (process CPU clock) over the"
echo "same interval. Ratios are livefeed over python (for CPU: python over livefeed)."

if [ "$sio_ok" = 1 ]; then
  # row LABEL LIVEFEED NODE RATIO
  row() { printf '%-40s %16s %22s %8s\n' "$1" "${2:--}" "${3:--}" "$4"; }
  r_rate() { [ -n "$2" ] && ratio "$1" "$2" || echo -; }
  r_cpu() { [ -n "$1" ] && [ -n "$2" ] && ratio "$2" "$1" || echo -; }
  echo
  echo "Socket.IO: $SIO_EVENTS events \"tick\" per run, each one 150-byte JSON object"
  echo "(161-byte packets 42[\"tick\",{...}]); sender: bench/sio_flood.js, socket.io 4.8.4 on"
  echo "Node $sio_node_version, Engine.IO 4 over WebSocket; load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  row "" "livefeed (C API)" "node socket.io-client" "ratio"
  row "events/s (median of $SIO_RUNS)" "$sio_lf_rate" "$sio_nd_rate" "$(r_rate "$sio_lf_rate" "$sio_nd_rate")"
  row "receiver CPU, ns per event" "$sio_lf_ns" "$sio_nd_ns" "$(r_cpu "$sio_lf_ns" "$sio_nd_ns")"
  row "  reading /0/seq of every event" "$sio_lj_ns" "$sio_nd_ns" "$(r_cpu "$sio_lj_ns" "$sio_nd_ns")"
  row "sender CPU, ns per event (socket.io)" "$sio_lf_srv" "$sio_nd_srv" ""
  row "sender CPU busy, % of the interval" "$sio_lf_busy" "$sio_nd_busy" ""
  echo "stock socket.io writes (one write(2) per frame), median of $SIO_STOCK_RUNS:"
  row "  events/s" "$stk_lf_rate" "$stk_nd_rate" "$(r_rate "$stk_lf_rate" "$stk_nd_rate")"
  row "  receiver CPU, ns per event" "$stk_lf_ns" "$stk_nd_ns" "$(r_cpu "$stk_lf_ns" "$stk_nd_ns")"
  row "  sender CPU, ns per event (socket.io)" "$stk_lf_srv" "$stk_nd_srv" ""
  row "  sender CPU busy, % of the interval" "$stk_lf_busy" "$stk_nd_busy" ""
  echo
  echo "Both receivers take turns on the same server (the sender columns: the server's figures"
  echo "during that receiver's runs). events/s is wall-clock and capped by whichever side needs"
  echo "more CPU per event (rate <= 1e9 / ns per event, less on a busy machine): socket.io emits"
  echo "from one JavaScript thread, so the sender is often the limit, and the comparable figure"
  echo "is ns/event, the receiver's own CPU time (C: process CPU clock; Node: process.cpuUsage,"
  echo "all threads) from the first event to the last."
  echo "By default the server corks its socket per Engine.IO flush (one writev per batch); stock"
  echo "socket.io writes every frame separately, which costs both receivers more wake-ups."
  echo "socket.io-client parses every event's JSON before its listener runs; livefeed hands C"
  echo "the arguments as JSON text, parsed only if asked (the /0/seq row: lf_event_json_number)."
  echo "Ratios are livefeed over node (for CPU: node over livefeed)."
fi
