#!/usr/bin/env bash
# Where the time goes on livefeed's small-message path: bench/recv.c receiving 150-byte text
# messages from examples/flood_server.rs (as in `make bench`), profiled with perf (sampling,
# user + kernel, call graphs through inlined frames) and valgrind's callgrind (exact
# instruction counts, user space only), plus a perf profile of the Socket.IO path
# (bench/sio_recv.c against flood_server --socketio). Summary in docs/performance.md.
#
#   scripts/profile.sh            everything; reports in build/profile/
#
# Knobs: PROFILE_MESSAGES (perf run, default 1000000), PROFILE_CG_MESSAGES (callgrind run,
# default 200000), PROFILE_SIO_EVENTS (default 200000), PROFILE_TOP (rows shown, default 15).
#
# The library is built a second time into target/profiling with line tables added
# (CARGO_PROFILE_RELEASE_DEBUG=line-tables-only): the same release profile (opt-level 3, LTO,
# one codegen unit), so the same machine code, but perf and callgrind can name the inlined
# functions (the frame decoder and std are inlined into livefeed's Link::frames).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
CC=${CC:-cc}
N=${PROFILE_MESSAGES:-1000000}
CG_N=${PROFILE_CG_MESSAGES:-200000}
SIO_N=${PROFILE_SIO_EVENTS:-200000}
TOP=${PROFILE_TOP:-15}
OUT=build/profile
PROF_TARGET=target/profiling
LIB=$PROF_TARGET/release/liblivefeed.a
SERVER=target/release/examples/flood_server
RECV=$OUT/recv
SIO_RECV=$OUT/sio_recv
NATIVE_STATIC_LIBS=(-lssl -lcrypto -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc)

say() { echo "profile: $*" >&2; }

tmp=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$OUT"
say "building the library with line tables into $PROF_TARGET (release profile otherwise unchanged)"
CARGO_TARGET_DIR=$PROF_TARGET CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
  "$CARGO" build --release --locked --quiet
"$CARGO" build --release --locked --quiet --example flood_server
"$CC" -std=c11 -O2 -g -Iinclude bench/recv.c -o "$RECV" "$LIB" "${NATIVE_STATIC_LIBS[@]}"
"$CC" -std=c11 -O2 -g -Iinclude bench/sio_recv.c -o "$SIO_RECV" "$LIB" "${NATIVE_STATIC_LIBS[@]}"

# start_server ARGS...: flood_server in the background; sets $url and $server_pid.
start_server() {
  local fd line
  exec {fd}< <(exec "$SERVER" "$@" 2>>"$OUT/server.log")
  server_pid=$!
  pids+=("$server_pid")
  read -r -t 120 line <&"$fd" || { say "flood_server did not start"; exit 1; }
  url=${line#listening }
}
stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
}
: >"$OUT/server.log"

# The lines of a perf report that carry figures.
figures() { grep -E '^ +[0-9]+\.[0-9]+%' | sed -E 's/ +- +- +$//; s/ +$//'; }

perf_ok=0
if command -v perf >/dev/null 2>&1 && perf record -q -o "$tmp/probe.data" true >/dev/null 2>&1; then
  perf_ok=1
else
  say "perf is missing or not permitted here: callgrind only"
fi

if [ "$perf_ok" = 1 ]; then
  start_server --count "$N"
  say "perf: $RECV throughput $url $N"
  perf record -q -F 10000 --call-graph dwarf,16384 -o "$OUT/perf.data" \
    "$RECV" throughput "$url" "$N" | tee "$OUT/perf-run.txt"
  stop_server
  # Self time per function (user and kernel), per binary, and inclusive time (call chains
  # through inlined frames).
  perf report -i "$OUT/perf.data" --stdio --no-children --sort symbol 2>/dev/null | figures \
    >"$OUT/perf-self.txt"
  perf report -i "$OUT/perf.data" --stdio --no-children --sort dso 2>/dev/null | figures \
    >"$OUT/perf-dso.txt"
  perf report -i "$OUT/perf.data" --stdio --children --sort symbol -g none --percent-limit 2 \
    2>/dev/null | figures >"$OUT/perf-inclusive.txt"
  # UTF-8 validation, split by caller: the decoder's check of the frame, or lf_event_text.
  perf report -i "$OUT/perf.data" --stdio --no-children --symbols='core::str::converts::from_utf8' \
    -g folded,0,caller,count --max-stack=20 2>/dev/null | awk '
      /^ +[0-9.]+%/ { total = $1 }
      /^[0-9]+ / { if ($0 ~ /lf_event_text/) a += $1; else b += $1 }
      END { if (a + b > 0) printf "from_utf8 (%s of all samples): %.0f%% of it under lf_event_text, %.0f%% in the decoder reading the frame\n", total, 100 * a / (a + b), 100 * b / (a + b) }' \
    >"$OUT/perf-utf8.txt"

  start_server --socketio --count "$SIO_N"
  say "perf: $SIO_RECV ${url/ws:/http:} $SIO_N (Socket.IO)"
  perf record -q -F 10000 --call-graph dwarf,16384 -o "$OUT/perf-sio.data" \
    "$SIO_RECV" "${url/ws:/http:}" "$SIO_N" | tee "$OUT/perf-sio-run.txt"
  stop_server
  perf report -i "$OUT/perf-sio.data" --stdio --no-children --sort symbol 2>/dev/null |
    figures >"$OUT/perf-sio-self.txt"
  perf report -i "$OUT/perf-sio.data" --stdio --children --sort symbol -g none \
    --percent-limit 2 2>/dev/null | figures >"$OUT/perf-sio-inclusive.txt"
fi

cg_ok=0
if command -v valgrind >/dev/null 2>&1; then
  start_server --count "$CG_N"
  say "callgrind: $RECV throughput $url $CG_N"
  valgrind -q --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" \
    "$RECV" throughput "$url" "$CG_N" | tee "$OUT/callgrind-run.txt"
  stop_server
  callgrind_annotate "$OUT/callgrind.out" 2>/dev/null >"$OUT/callgrind-self.txt"
  callgrind_annotate --inclusive=yes "$OUT/callgrind.out" 2>/dev/null >"$OUT/callgrind-inclusive.txt"
  callgrind_annotate --tree=caller "$OUT/callgrind.out" 2>/dev/null >"$OUT/callgrind-callers.txt"
  cg_ok=1
else
  say "valgrind is missing: no callgrind profile"
fi

# ---- summary -------------------------------------------------------------------------------
short() { cut -c1-150; }
{
  echo "livefeed small-message profile, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $(uname -sr)"
  if [ "$perf_ok" = 1 ]; then
    echo
    echo "== perf: $N x 150-byte messages; $(cat "$OUT/perf-run.txt")"
    echo "-- time by binary (self):"
    sed -n 1,8p "$OUT/perf-dso.txt"
    echo "-- top $TOP functions by self time ([k] kernel, [.] user):"
    sed -n "1,${TOP}p" "$OUT/perf-self.txt" | short
    cat "$OUT/perf-utf8.txt"
    echo "-- inclusive time (children included), >= 2%:"
    grep -v -E 'libc_start|_start$| main$|run_throughput|run_until|call_once|catch_unwind|do_call|AssertUnwindSafe' \
      "$OUT/perf-inclusive.txt" | short | sed -n 1,45p
    echo
    echo "== perf, Socket.IO: $SIO_N events; $(cat "$OUT/perf-sio-run.txt")"
    echo "-- top $TOP functions by self time:"
    sed -n "1,${TOP}p" "$OUT/perf-sio-self.txt" | short
  fi
  if [ "$cg_ok" = 1 ]; then
    total=$(sed -n 's/^ *\([0-9,]*\) (100.0%) *PROGRAM TOTALS.*/\1/p' "$OUT/callgrind-self.txt" | tr -d ,)
    echo
    echo "== callgrind: $CG_N messages; $total instructions in all, $((total / CG_N)) per message"
    echo "-- top $TOP functions by instructions (self):"
    sed -n '/file:function/,$p' "$OUT/callgrind-self.txt" | grep -E '^ *[0-9,]+ \(' | sed -n "1,${TOP}p" | short
    echo "-- inclusive:"
    sed -n '/file:function/,$p' "$OUT/callgrind-inclusive.txt" | grep -E '^ *[0-9,]+ \(' | sed -n 1,25p | short
  fi
  echo
  echo "full reports: $OUT/ (perf.data: perf report -i $OUT/perf.data; callgrind.out: callgrind_annotate)"
} | tee "$OUT/summary.txt"
