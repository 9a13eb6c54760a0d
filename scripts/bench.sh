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
say "building examples/flood_server.rs and bench/recv.c (release)"
"$CARGO" build --release --locked --quiet --example flood_server
mkdir -p build
"$CC" -std=c11 -Wall -Wextra -Werror -pedantic -O2 -Iinclude bench/recv.c -o "$RECV" \
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
