#!/usr/bin/env bash
# Live events through the C API: starts the bundled sensor simulator on 127.0.0.1 and
# lets build/lfcat print what it streams. Run by `make demo` (after `make`).
#
#   DEMO_COUNT (default 20)    messages to show before exiting
#   DEMO_TIMEOUT (default 30)  seconds lfcat waits before giving up
#   DEMO_RATE (default 5)      messages per second the simulator sends
#
# Exits with lfcat's status (0 when the count was reached).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
COUNT=${DEMO_COUNT:-20}
TIMEOUT=${DEMO_TIMEOUT:-30}
RATE=${DEMO_RATE:-5}
LFCAT=${LFCAT:-build/lfcat}
SIM=target/release/examples/sensor_sim

if [ ! -x "$LFCAT" ]; then
  echo "demo: $LFCAT is missing: run 'make' first (or 'make demo', which does)" >&2
  exit 1
fi

echo "demo: building the sensor simulator" >&2
"$CARGO" build --release --locked --quiet --example sensor_sim

tmp=$(mktemp -d)
sim_pid=""
cleanup() {
  if [ -n "$sim_pid" ]; then
    kill "$sim_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The simulator's first stdout line is its address; its log goes to a file, shown on failure.
exec 3< <(exec "$SIM" --rate "$RATE" 2>"$tmp/sim.log")
sim_pid=$!

line=""
if ! read -r -t 15 line <&3; then
  echo "demo: the simulator did not report its address within 15 s" >&2
  cat "$tmp/sim.log" >&2
  exit 1
fi
case $line in
  "listening ws://127.0.0.1:"*) url=${line#listening } ;;
  *)
    echo "demo: unexpected first line from the simulator: $line" >&2
    exit 1
    ;;
esac

echo "demo: simulator at $url, $RATE readings/s" >&2
echo "demo: \$ $LFCAT --count $COUNT --timeout $TIMEOUT $url" >&2
status=0
"$LFCAT" --count "$COUNT" --timeout "$TIMEOUT" "$url" || status=$?
if [ "$status" -eq 0 ]; then
  echo "demo: received $COUNT live events through the C API" >&2
else
  echo "demo: lfcat exited with status $status; simulator log:" >&2
  cat "$tmp/sim.log" >&2
fi
exit "$status"
