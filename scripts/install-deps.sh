#!/usr/bin/env bash
# Installs what the tests and the demo need; does nothing that is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v cc >/dev/null || missing+=(gcc)
command -v c++ >/dev/null || missing+=(g++)
command -v valgrind >/dev/null || missing+=(valgrind)
command -v openssl >/dev/null || missing+=(openssl)
command -v nm >/dev/null || missing+=(binutils)
command -v pkg-config >/dev/null || missing+=(pkg-config)
[ -f /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
command -v python3 >/dev/null || missing+=(python3 python3-pip)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
# A real HTTP proxy for the CONNECT tests (tests/proxy.rs).
[ -x /usr/bin/tinyproxy ] || missing+=(tinyproxy)
# scripts/test-install.sh: the CMake package, the module map, the Kotlin/JNA binding.
command -v cmake >/dev/null || missing+=(cmake)
command -v clang >/dev/null || missing+=(clang)
command -v kotlinc >/dev/null || missing+=(kotlin)
[ -f /usr/share/java/jna.jar ] || missing+=(libjna-java)
if [ ${#missing[@]} -gt 0 ]; then
  echo "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
fi
if [ -f tests/peers/requirements.txt ]; then
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r tests/peers/requirements.txt
fi
# The real socket.io servers (2.x and 4.x), pinned by package-lock.json.
if [ -f tests/peers/socketio/package-lock.json ]; then
  npm ci --prefix tests/peers/socketio --no-audit --no-fund --loglevel=error
fi
rustup component add clippy rustfmt >/dev/null 2>&1 || true
