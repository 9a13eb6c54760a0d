#!/usr/bin/env bash
# The header compiles as C99, C11 and C++, survives double inclusion, and its version
# macros agree with the library.
set -euo pipefail
cd "$(dirname "$0")/.."
# Every macro the header defines is ours: LF_-prefixed (or the include guard).
bad=$(grep -E '^#define ' include/livefeed.h | awk '{print $2}' | grep -vE '^(LF_|LIVEFEED_H$)' || true)
if [ -n "$bad" ]; then
  echo "macros without the LF_ prefix in include/livefeed.h: $bad (exclude them in cbindgen.toml)"
  exit 1
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
flags="-Wall -Wextra -Werror -pedantic -Iinclude"
for std in c99 c11; do
  cc -std=$std $flags -c tests-c/header_c.c -o "$out/header_$std.o"
  cc -std=$std $flags -c tests-c/header_twice.c -o "$out/twice_$std.o"
done
c++ -std=c++11 -Wall -Wextra -Werror -pedantic -Iinclude -c tests-c/header_cpp.cc -o "$out/header_cpp.o"
cc -std=c11 $flags tests-c/header_c.c -o "$out/version_check" target/release/liblivefeed.a \
  -lssl -lcrypto -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
"$out/version_check"
echo "ok: C99, C11, C++11, double inclusion, version macros"
