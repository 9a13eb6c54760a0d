#!/usr/bin/env bash
# livefeed and its peers, side by side, in one run on this machine: one table with ratios.
# Run by `make bench` (after `make`). Loopback only. What each row measures, and a recorded
# run, are in docs/performance.md.
#
# Clients (each a separate process, taking turns against the same local server):
#   livefeed       bench/recv.c, bench/sio_recv.c: the C API, static liblivefeed.a
#   libwebsockets  bench/lws_recv.c against Debian's libwebsockets-dev (4.1.6 on bookworm;
#                  installed with apt-get if missing and possible, else the column is empty)
#   tungstenite    examples/tungstenite_recv.rs: tungstenite's plain blocking client
#   node           bench/ws_node_client.js (npm ws 8), bench/sio_node_client.js
#                  (socket.io-client 4.8.4); Node >= 18, packages from tests/peers/socketio
# Servers: examples/flood_server.rs (flood, --size, --echo, --idle, --socketio, --atmosphere)
# and, for one Socket.IO row, a real socket.io 4.8.4 server (bench/sio_flood.js).
# The sender column is `tungstenite_recv drain`: a client that only walks frame headers, i.e.
# what the sender can push when the receiver costs nothing (the ceiling of every figure).
#
# Every figure is the median of several runs (the clients take turns inside each round);
# the min..max spread follows the table. Knobs (environment):
#   BENCH_RUNS=7              rounds for the throughput, latency and Socket.IO rows
#   BENCH_MESSAGES=2000000    150-byte messages per throughput run (also Atmosphere)
#   BENCH_LARGE=200           1 MiB messages per run
#   BENCH_ECHO=20000          timed echo round trips per run (after 1000 untimed ones)
#   BENCH_SESSIONS=1000       idle sessions for the connect-time and memory rows
#   BENCH_SCALE=10000         sessions held in one loop for the scale rows
#   BENCH_MEM_RUNS=3          rounds for the session rows
#   BENCH_SIO_EVENTS=200000   Socket.IO events per run
#   BENCH_SIO_REAL_RUNS=3     rounds against the real socket.io server (0: skip those rows)
#   BENCH_PEERS="lws tungstenite node"   which peers to run
# The table goes to stdout and to build/bench-table.txt; every run's raw line to stderr and
# build/bench-runs.log.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
CC=${CC:-cc}
NODE=${NODE:-node}
NPM=${NPM:-npm}
RUNS=${BENCH_RUNS:-7}
MESSAGES=${BENCH_MESSAGES:-2000000}
LARGE=${BENCH_LARGE:-200}
ECHO=${BENCH_ECHO:-20000}
SESSIONS=${BENCH_SESSIONS:-1000}
SCALE=${BENCH_SCALE:-10000}
MEM_RUNS=${BENCH_MEM_RUNS:-3}
SIO_EVENTS=${BENCH_SIO_EVENTS:-200000}
SIO_REAL_RUNS=${BENCH_SIO_REAL_RUNS:-3}
PEERS=" ${BENCH_PEERS:-lws tungstenite node} "
NATIVE_STATIC_LIBS=(-lssl -lcrypto -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc)
LF_A=target/release/liblivefeed.a
LF_SO=target/release/liblivefeed.so
RECV=build/bench-recv
SIO_RECV=build/bench-sio-recv
LWS_RECV=build/bench-lws-recv
SERVER=target/release/examples/flood_server
TUNG=target/release/examples/tungstenite_recv
SIO_PEERS=tests/peers/socketio
LOG=build/bench-runs.log
TABLE=build/bench-table.txt
LARGE_SIZE=1048576

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

started=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- build ---------------------------------------------------------------------------------
say "building examples/flood_server.rs, examples/tungstenite_recv.rs and the C clients (release)"
"$CARGO" build --release --locked --quiet --example flood_server --example tungstenite_recv
[ -f "$LF_A" ] && [ -f "$LF_SO" ] || "$CARGO" build --release --locked --quiet
mkdir -p build
: >"$LOG"
for p in recv sio_recv; do
  "$CC" -std=c11 -Wall -Wextra -Werror -pedantic -O2 -Iinclude "bench/$p.c" \
    -o "build/bench-${p//_/-}" "$LF_A" "${NATIVE_STATIC_LIBS[@]}"
done

# libwebsockets: Debian's package (bookworm: 4.1.6).
have_lws() { [ -f /usr/include/libwebsockets.h ] && [ -f /usr/include/lws_config.h ]; }
lws_ok=0
if [[ $PEERS == *" lws "* ]]; then
  if ! have_lws && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "installing libwebsockets-dev with apt-get (the libwebsockets peer)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq libwebsockets-dev >&2 ||
      { apt-get update -qq >&2 && apt-get install -y -qq libwebsockets-dev >&2; } || true
  fi
  if have_lws && "$CC" -std=gnu11 -Wall -Wextra -Werror -O2 bench/lws_recv.c -o "$LWS_RECV" \
    -lwebsockets; then
    lws_ok=1
    lws_version=$(sed -n 's/^#define LWS_LIBRARY_VERSION "\(.*\)"$/\1/p' /usr/include/lws_config.h)
    lws_version=${lws_version%-}
  else
    say "libwebsockets-dev is not available: no libwebsockets column"
  fi
fi
tung_ok=0
[[ $PEERS == *" tungstenite "* ]] && tung_ok=1
tung_version=$(sed -n '/^name = "tungstenite"$/{n;s/^version = "\(.*\)"$/\1/p}' Cargo.lock)

# Node >= 18 with the pinned packages (socket.io 4.8.4, its ws 8, socket.io-client 4.8.4).
node_versions_ok() {
  "$NODE" -e '
    const path = require("path");
    const dir = path.resolve(process.argv[1], "node_modules");
    const v = (m) => require(path.join(dir, m, "package.json")).version;
    const major = Number(process.versions.node.split(".")[0]);
    process.exit(major >= 18 && v("socket.io") === "4.8.4" && v("socket.io-client") === "4.8.4"
      && v("ws").startsWith("8.") ? 0 : 1);
  ' "$SIO_PEERS" 2>/dev/null
}
node_ok=0
if [[ $PEERS == *" node "* ]] && command -v "$NODE" >/dev/null 2>&1; then
  if ! node_versions_ok && command -v "$NPM" >/dev/null 2>&1; then
    say "installing $SIO_PEERS/node_modules with npm ci (the Node peers)"
    "$NPM" ci --prefix "$SIO_PEERS" --no-audit --no-fund --loglevel=error >&2 || true
  fi
  if node_versions_ok; then
    node_ok=1
    node_version=$("$NODE" --version)
    ws_version=$("$NODE" -p "require('./$SIO_PEERS/node_modules/ws/package.json').version")
  fi
fi
[[ $PEERS != *" node "* ]] || [ "$node_ok" = 1 ] ||
  say "Node >= 18 with the packages of $SIO_PEERS is not available: no node column"

# ---- descriptors: one per session on each side, plus slack --------------------------------
want=$((SCALE + 512))
soft=$(ulimit -Sn)
hard=$(ulimit -Hn)
if [ "$soft" != unlimited ] && [ "$soft" -lt "$want" ]; then
  if [ "$hard" = unlimited ] || [ "$hard" -ge "$want" ]; then
    ulimit -Sn "$want"
  else
    ulimit -Sn "$hard"
    SCALE=$((hard - 512))
    say "open-file limit is $hard: holding $SCALE sessions instead of ${BENCH_SCALE:-10000}"
  fi
fi

# ---- helpers ---------------------------------------------------------------------------------
# start_server NAME ARGS...: starts flood_server, sets $url from its first stdout line and
# $server_pid.
start_server() {
  local name=$1 fd line
  shift
  exec {fd}< <(exec "$SERVER" "$@" 2>"$tmp/$name.log")
  server_pid=$!
  pids+=("$server_pid")
  if ! read -r -t 120 line <&"$fd"; then
    say "flood_server $* did not report its address within 120 s"
    cat "$tmp/$name.log" >&2
    exit 1
  fi
  url=${line#listening }
}
stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
}

# field KEY LINE: the value of KEY=value in LINE.
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

# V[key] holds the values of every run, space-separated; key = ROW:CLIENT.
declare -A V
add() { [ -n "$2" ] && V[$1]+="$2 " || true; }

# run LABEL CMD...: runs one client (bounded), logs its line, leaves it in $out ("" on failure).
run() {
  local label=$1
  shift
  if out=$(timeout 120 "$@" 2>"$tmp/err"); then
    echo "  $label: $out" | tee -a "$LOG" >&2
  else
    echo "  $label: FAILED: $(tail -2 "$tmp/err" | tr '\n' ' ')" | tee -a "$LOG" >&2
    out=""
  fi
}

# stat KEY: "median min max" of V[key], empty if no values.
stats() {
  local vals=${V[$1]:-}
  [ -n "$vals" ] || return 0
  # shellcheck disable=SC2086
  printf '%s\n' $vals | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)], v[1], v[NR] }'
}
med() { stats "$1" | cut -d' ' -f1; }

# ---- small messages ------------------------------------------------------------------------
start_server small --count "$MESSAGES"
say "small messages: $RUNS rounds, $MESSAGES x 150-byte text messages from $url"
for i in $(seq "$RUNS"); do
  run "livefeed run $i" "$RECV" throughput "$url" "$MESSAGES"
  add small:lf "$(field msgs_per_s "$out")"
  add small_ns:lf "$(field ns_cpu_per_msg "$out")"
  run "livefeed 128 KiB read buffer run $i" "$RECV" throughput "$url" "$MESSAGES" 131072
  add small128:lf "$(field msgs_per_s "$out")"
  add small128_ns:lf "$(field ns_cpu_per_msg "$out")"
  if [ "$lws_ok" = 1 ]; then
    run "libwebsockets run $i" "$LWS_RECV" throughput "$url" "$MESSAGES"
    add small:lws "$(field msgs_per_s "$out")"
    add small_ns:lws "$(field ns_cpu_per_msg "$out")"
  fi
  if [ "$tung_ok" = 1 ]; then
    run "tungstenite run $i" "$TUNG" throughput "$url" "$MESSAGES"
    add small:tung "$(field msgs_per_s "$out")"
    add small_ns:tung "$(field ns_cpu_per_msg "$out")"
  fi
  if [ "$node_ok" = 1 ]; then
    run "node ws run $i" "$NODE" bench/ws_node_client.js throughput "$url" "$MESSAGES"
    add small:node "$(field msgs_per_s "$out")"
    add small_ns:node "$(field ns_cpu_per_msg "$out")"
  fi
  run "sender (drain) run $i" "$TUNG" drain "$url" "$MESSAGES" 0
  add small:sender "$(field msgs_per_s "$out")"
done
stop_server

# ---- 1 MiB messages ------------------------------------------------------------------------
start_server large --count "$LARGE" --size "$LARGE_SIZE"
say "large messages: $RUNS rounds, $LARGE x 1 MiB text messages from $url"
for i in $(seq "$RUNS"); do
  run "livefeed run $i" "$RECV" throughput "$url" "$LARGE"
  add large:lf "$(field mb_per_s "$out")"
  if [ "$lws_ok" = 1 ]; then
    run "libwebsockets run $i" "$LWS_RECV" throughput "$url" "$LARGE"
    add large:lws "$(field mb_per_s "$out")"
  fi
  if [ "$tung_ok" = 1 ]; then
    run "tungstenite run $i" "$TUNG" throughput "$url" "$LARGE"
    add large:tung "$(field mb_per_s "$out")"
  fi
  if [ "$node_ok" = 1 ]; then
    run "node ws run $i" "$NODE" bench/ws_node_client.js throughput "$url" "$LARGE"
    add large:node "$(field mb_per_s "$out")"
  fi
  run "sender (drain) run $i" "$TUNG" drain "$url" "$LARGE" 0
  add large:sender "$(field mb_per_s "$out")"
done
stop_server

# ---- echo latency --------------------------------------------------------------------------
start_server echo --echo
say "echo: $RUNS rounds of $ECHO round trips (after 1000 untimed) against $url"
for i in $(seq "$RUNS"); do
  run "livefeed run $i" "$RECV" echo "$url" "$ECHO"
  add p50:lf "$(field p50_us "$out")"
  add p99:lf "$(field p99_us "$out")"
  if [ "$lws_ok" = 1 ]; then
    run "libwebsockets run $i" "$LWS_RECV" echo "$url" "$ECHO"
    add p50:lws "$(field p50_us "$out")"
    add p99:lws "$(field p99_us "$out")"
  fi
  if [ "$tung_ok" = 1 ]; then
    run "tungstenite run $i" "$TUNG" echo "$url" "$ECHO"
    add p50:tung "$(field p50_us "$out")"
    add p99:tung "$(field p99_us "$out")"
  fi
  if [ "$node_ok" = 1 ]; then
    run "node ws run $i" "$NODE" bench/ws_node_client.js echo "$url" "$ECHO"
    add p50:node "$(field p50_us "$out")"
    add p99:node "$(field p99_us "$out")"
  fi
done
stop_server

# ---- sessions: connect time, idle memory, 10,000 in one loop ------------------------------
start_server idle --idle
say "sessions: $MEM_RUNS rounds of $SESSIONS and of $SCALE idle sessions on one loop, $url"
# sessions ROW N LABEL: one memory run of each client with N sessions.
sessions() {
  local row=$1 n=$2 label=$3
  run "livefeed $label" "$RECV" memory "$url" "$n"
  add "${row}_open:lf" "$(field open "$out")"
  add "${row}_s:lf" "$(field open_seconds "$out")"
  add "${row}_kib:lf" "$(field kib_per_session "$out")"
  add "${row}_thr:lf" "$(field threads "$out")"
  if [ "$lws_ok" = 1 ]; then
    run "libwebsockets $label" "$LWS_RECV" memory "$url" "$n"
    add "${row}_open:lws" "$(field open "$out")"
    add "${row}_s:lws" "$(field open_seconds "$out")"
    add "${row}_kib:lws" "$(field kib_per_session "$out")"
    add "${row}_thr:lws" "$(field threads "$out")"
  fi
}
for i in $(seq "$MEM_RUNS"); do
  sessions sess "$SESSIONS" "$SESSIONS sessions run $i"
  sessions scale "$SCALE" "$SCALE sessions run $i"
done
stop_server

# ---- Socket.IO -----------------------------------------------------------------------------
# sio_round LABEL URL ROW: one run each of livefeed, livefeed reading JSON and node.
sio_round() {
  local label=$1 u=$2 row=$3
  run "livefeed $label" "$SIO_RECV" "$u" "$SIO_EVENTS"
  add "$row:lf" "$(field events_per_s "$out")"
  add "${row}_ns:lf" "$(field ns_cpu_per_event "$out")"
  run "livefeed json $label" "$SIO_RECV" "$u" "$SIO_EVENTS" json
  add "${row}_json:lf" "$(field events_per_s "$out")"
  add "${row}_json_ns:lf" "$(field ns_cpu_per_event "$out")"
  if [ "$node_ok" = 1 ]; then
    run "node socket.io-client $label" "$NODE" bench/sio_node_client.js "$u" "$SIO_EVENTS"
    add "$row:node" "$(field events_per_s "$out")"
    add "${row}_ns:node" "$(field ns_cpu_per_event "$out")"
    add "${row}_json:node" "$(field events_per_s "$out")"
    add "${row}_json_ns:node" "$(field ns_cpu_per_event "$out")"
  fi
}
start_server sio --socketio --count "$SIO_EVENTS"
sio_url=${url/ws:/http:}
say "Socket.IO: $RUNS rounds of $SIO_EVENTS events from flood_server --socketio ($sio_url)"
for i in $(seq "$RUNS"); do
  sio_round "run $i" "$sio_url" sio
  run "sender (drain) run $i" "$TUNG" drain "${url}socket.io/?EIO=4&transport=websocket" \
    "$SIO_EVENTS" 2 40
  add sio:sender "$(field msgs_per_s "$out")"
done
stop_server

real_ok=0
if [ "$node_ok" = 1 ] && [ "$SIO_REAL_RUNS" -gt 0 ]; then
  # The server exits when its stdin closes: a FIFO whose write end this script holds.
  mkfifo "$tmp/sio.in"
  exec {sio_out}< <(exec "$NODE" bench/sio_flood.js --count "$SIO_EVENTS" <"$tmp/sio.in" \
    2>"$tmp/sio.log")
  pids+=($!)
  exec {sio_in}>"$tmp/sio.in"
  if read -r -t 60 line <&"$sio_out"; then
    sio_port=$(sed -n 's/^{"port":\([0-9]*\)}$/\1/p' <<<"$line")
    real_url=http://127.0.0.1:$sio_port/
    say "Socket.IO: $SIO_REAL_RUNS rounds against a real socket.io 4.8.4 server ($real_url)"
    for i in $(seq "$SIO_REAL_RUNS"); do
      sio_round "real server run $i" "$real_url" real
    done
    real_ok=1
  else
    say "bench/sio_flood.js did not report its port: no real-server rows"
    cat "$tmp/sio.log" >&2
  fi
  exec {sio_in}>&-
fi

# ---- Atmosphere ----------------------------------------------------------------------------
start_server atmo --atmosphere --count "$MESSAGES"
say "Atmosphere: $RUNS rounds of $MESSAGES messages from flood_server --atmosphere ($url)"
for i in $(seq "$RUNS"); do
  run "livefeed run $i" "$RECV" atmosphere "$url" "$MESSAGES"
  add atmo:lf "$(field msgs_per_s "$out")"
  add atmo_ns:lf "$(field ns_cpu_per_msg "$out")"
  run "sender (drain) run $i" "$TUNG" drain "$url" "$MESSAGES" 1
  add atmo:sender "$(field msgs_per_s "$out")"
done
stop_server

# ---- footprint -----------------------------------------------------------------------------
say "footprint: stripped shared libraries and programs"
fp=$tmp/footprint
mkdir -p "$fp"
size_of() { stat -c %s "$1"; }
cp "$LF_SO" "$fp/liblivefeed.so" && strip --strip-all "$fp/liblivefeed.so"
add so:lf "$(size_of "$fp/liblivefeed.so")"
# recv.c with liblivefeed.a built in (OpenSSL and libc shared), as `make` links C programs,
# plus --gc-sections (without it the linker keeps every unused object of the archive).
"$CC" -std=c11 -O2 -Iinclude bench/recv.c -o "$fp/recv" -Wl,--gc-sections "$LF_A" \
  "${NATIVE_STATIC_LIBS[@]}" && strip "$fp/recv"
add prog:lf "$(size_of "$fp/recv")"
"$CC" -std=c11 -O2 -Iinclude bench/recv.c -o "$fp/recv-nogc" "$LF_A" "${NATIVE_STATIC_LIBS[@]}" &&
  strip "$fp/recv-nogc"
add prog_nogc:lf "$(size_of "$fp/recv-nogc")"
# Everything built in: -static (OpenSSL and glibc too; glibc warns about NSS functions).
if "$CC" -static -std=c11 -O2 -Iinclude bench/recv.c -o "$fp/recv-static" -Wl,--gc-sections \
  "$LF_A" -lssl -lcrypto -lpthread -lm -ldl -lc 2>"$tmp/static.log"; then
  strip "$fp/recv-static"
  add static:lf "$(size_of "$fp/recv-static")"
fi
lws_a=$(find /usr/lib -name libwebsockets.a 2>/dev/null | head -1)
if [ "$lws_ok" = 1 ]; then
  lws_so=$(find /usr/lib -name 'libwebsockets.so.*' 2>/dev/null | head -1)
  cp -L "$lws_so" "$fp/libwebsockets.so" && strip --strip-all "$fp/libwebsockets.so"
  add so:lws "$(size_of "$fp/libwebsockets.so")"
  if [ -n "$lws_a" ]; then
    if "$CC" -std=gnu11 -O2 bench/lws_recv.c -o "$fp/lws" -Wl,--gc-sections "$lws_a" \
      -lssl -lcrypto -lz -lcap -lpthread 2>>"$tmp/static.log"; then
      strip "$fp/lws"
      add prog:lws "$(size_of "$fp/lws")"
    fi
    if "$CC" -static -std=gnu11 -O2 bench/lws_recv.c -o "$fp/lws-static" -Wl,--gc-sections \
      "$lws_a" -lssl -lcrypto -lz -lcap -lpthread 2>>"$tmp/static.log"; then
      strip "$fp/lws-static"
      add static:lws "$(size_of "$fp/lws-static")"
    fi
  fi
fi

# ---- report --------------------------------------------------------------------------------
# fmt KIND VALUE: how a figure is printed.
fmt() {
  local kind=$1 v=$2
  [ -n "$v" ] || { echo -; return; }
  case $kind in
    rate) awk -v v="$v" 'BEGIN { printf "%.2f M", v / 1e6 }' ;;
    krate) awk -v v="$v" 'BEGIN { printf "%.0f k", v / 1e3 }' ;;
    mib) awk -v v="$v" 'BEGIN { printf "%.2f MiB", v / 1048576 }' ;;
    int) awk -v v="$v" 'BEGIN { printf "%.0f", v }' ;;
    *) echo "$v" ;;
  esac
}
# ratio A B: A / B.
ratio() {
  [ -n "$1" ] && [ -n "$2" ] || { echo -; return; }
  awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'
}
W='%-42s %-4s %10s %10s %10s %10s %10s  %7s %7s %7s\n'
# row LABEL DIR KIND KEY: one table line (DIR: which way is better); ratios are livefeed / peer.
row() {
  local label=$1 dir=$2 kind=$3 key=$4 lf lws tung node snd
  lf=$(med "$key:lf")
  lws=$(med "$key:lws")
  tung=$(med "$key:tung")
  node=$(med "$key:node")
  snd=$(med "$key:sender")
  # shellcheck disable=SC2059
  printf "$W" "$label" "$dir" "$(fmt "$kind" "$lf")" "$(fmt "$kind" "$lws")" "$(fmt "$kind" "$tung")" \
    "$(fmt "$kind" "$node")" "$(fmt "$kind" "$snd")" \
    "$(ratio "$lf" "$lws")" "$(ratio "$lf" "$tung")" "$(ratio "$lf" "$node")"
}
spread() {
  local label=$1 kind=$2 key=$3 c s out=""
  for c in lf lws tung node sender; do
    s=$(stats "$key:$c")
    if [ -n "$s" ]; then
      read -r _ lo hi <<<"$s"
      out+=$(printf ' %s: %s..%s' "$c" "$(fmt "$kind" "$lo")" "$(fmt "$kind" "$hi")")
    fi
  done
  [ -z "$out" ] || printf '%-46s%s\n' "$label" "$out"
}

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
elapsed=$(($(date +%s) - started))
{
  echo
  echo "livefeed benchmark, $(date -u +%Y-%m-%dT%H:%MZ): $(nproc) CPUs ($cpu_model), $(uname -sr)"
  echo "loopback; load average $load_before before, $(cut -d' ' -f1-3 /proc/loadavg) after; ${elapsed} s"
  echo "peers: libwebsockets ${lws_version:--} (Debian), tungstenite ${tung_version:--} blocking client," \
    "node ${node_version:--} with ws ${ws_version:--} / socket.io-client 4.8.4"
  echo "medians of $RUNS rounds ($MEM_RUNS for the session rows); ratios are livefeed / peer"
  echo
  # shellcheck disable=SC2059
  printf "$W" "" "" livefeed libwebsock tungstenite node sender "lf/lws" "lf/tung" "lf/node"
  row "small messages (150 B), msgs/s" up rate small
  row "  receiver CPU, ns/msg" down plain small_ns
  row "  livefeed, 128 KiB read buffer, msgs/s" up rate small128
  row "  livefeed, 128 KiB read buffer, ns/msg" down plain small128_ns
  row "large messages (1 MiB), MB/s" up int large
  row "echo round trip (150 B), p50 us" down plain p50
  row "echo round trip (150 B), p99 us" down plain p99
  row "connect+handshake $SESSIONS sessions, s" down plain sess_s
  row "idle session RSS, KiB ($SESSIONS sessions)" down plain sess_kib
  row "sessions held in one loop (of $SCALE)" up int scale_open
  row "  threads in the process" "" int scale_thr
  row "  time to open all $SCALE, s" down plain scale_s
  row "  RSS per session, KiB" down plain scale_kib
  row "Socket.IO events/s (fast sender)" up krate sio
  row "  receiver CPU, ns/event" down plain sio_ns
  row "  livefeed reading /0/seq, events/s" up krate sio_json
  row "  livefeed reading /0/seq, ns/event" down plain sio_json_ns
  if [ "$real_ok" = 1 ]; then
    row "Socket.IO events/s, socket.io 4.8.4 server" up krate real
    row "  receiver CPU, ns/event" down plain real_ns
  fi
  row "Atmosphere messages (150 B), msgs/s" up rate atmo
  row "  receiver CPU, ns/msg" down plain atmo_ns
  row "shared library, stripped" down mib so
  row "C program, library built in, stripped" down mib prog
  row "  the same without -Wl,--gc-sections" down mib prog_nogc
  row "C program, fully static (-static)" down mib static
  echo
  echo "spread (min..max of the runs):"
  spread "small msgs/s" rate small
  spread "small ns/msg" plain small_ns
  spread "small, 128 KiB read buffer, msgs/s" rate small128
  spread "large MB/s" int large
  spread "echo p50 us" plain p50
  spread "echo p99 us" plain p99
  spread "connect $SESSIONS, s" plain sess_s
  spread "idle KiB/session" plain sess_kib
  spread "$SCALE sessions held" int scale_open
  spread "$SCALE sessions, open s" plain scale_s
  spread "$SCALE sessions, KiB/session" plain scale_kib
  spread "Socket.IO events/s" krate sio
  spread "Socket.IO ns/event" plain sio_ns
  [ "$real_ok" = 1 ] && spread "Socket.IO real server events/s" krate real
  spread "Atmosphere msgs/s" rate atmo
  echo
  echo "targets:"
  target() { printf '  %-74s %s\n' "$1" "$2"; }
  verdict() { awk -v a="$1" -v b="$2" -v op="$3" 'BEGIN {
    if (a == "" || b == "") { print "n/a"; exit }
    ok = (op == ">=") ? (a >= b) : (op == "<=") ? (a <= b) : (a < b);
    print ok ? "met" : "MISSED" }'; }
  lf_s=$(med small:lf) lws_s=$(med small:lws) tu_s=$(med small:tung)
  r=$(awk -v a="$lf_s" -v b="$lws_s" 'BEGIN { if (b > 0) printf "%.2f", a / b }')
  target "small msgs/s >= 1.5x libwebsockets ($(ratio "$lf_s" "$lws_s"))" "$(verdict "$r" 1.5 ">=")"
  r=$(awk -v a="$tu_s" -v b="$lf_s" 'BEGIN { if (b > 0) printf "%.3f", a / b }')
  target "small msgs/s within 1.25x of tungstenite (tungstenite/livefeed ${r:--}x)" \
    "$(verdict "$r" 1.25 "<=")"
  r=$(awk -v a="$(med small_ns:lf)" -v b="$(med small_ns:tung)" 'BEGIN { if (b > 0) printf "%.3f", a / b }')
  target "  (CPU per message: livefeed/tungstenite ${r:--}x)" "$(verdict "$r" 1.25 "<=")"
  target "echo p99 no worse than libwebsockets ($(med p99:lf) vs $(med p99:lws) us)" \
    "$(verdict "$(med p99:lf)" "$(med p99:lws)" "<=")"
  target "idle session below 16 KiB ($(med sess_kib:lf) KiB)" "$(verdict "$(med sess_kib:lf)" 16 "<")"
  target "idle session below libwebsockets ($(med sess_kib:lf) vs $(med sess_kib:lws) KiB)" \
    "$(verdict "$(med sess_kib:lf)" "$(med sess_kib:lws)" "<")"
  target "$SCALE sessions held in one loop ($(med scale_open:lf), $(med scale_thr:lf) thread(s))" \
    "$(verdict "$(med scale_open:lf)" "$SCALE" ">=")"
  target "stripped shared library under 1.5 MiB ($(fmt mib "$(med so:lf)"))" \
    "$(verdict "$(med so:lf)" 1572864 "<")"
  echo
  echo "up/down: higher/lower is better. sender: tungstenite_recv drain (frame headers"
  echo "only), the most the local sender delivers. msgs/s and MB/s are wall-clock from the first"
  echo "message to the last; ns/msg is the receiver's own CPU time over that interval."
} | tee "$TABLE"
