#!/usr/bin/env bash
# Builds a single self-contained binary, dist/weft, with `deno compile`.
# deno compile needs the Deno runtime for the target (denort). It downloads it when it can;
# offline, point DENORT_BIN at a denort binary of the same Deno version (2.9.6).
set -euo pipefail
cd "$(dirname "$0")"
if command -v deno >/dev/null 2>&1; then deno=(deno); else deno=(npx -y deno@2.9.6); fi
if [ -n "${DENORT_BIN:-}" ] && [ ! -x "$DENORT_BIN" ]; then
  echo "compile.sh: DENORT_BIN=$DENORT_BIN is not an executable file" >&2
  exit 2
fi
mkdir -p dist
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Permissions the agent needs: sockets (net), data dir (read/write), hostname and
# interfaces (sys), config from the environment (env), and libc through FFI for the epoll
# socket backend of the proxy (without it the proxy uses Deno's sockets); nothing else.
# V8 flags: see lib/runtime_flags.ts (a test checks this line says the same).
if ! "${deno[@]}" compile --v8-flags=--no-allocation-site-pretenuring \
  --allow-net --allow-read --allow-write --allow-env --allow-sys --allow-ffi \
  --output dist/weft main.ts >"$log" 2>&1; then
  if grep -qiE 'denort|download|dl\.deno\.land|error sending request' "$log"; then
    echo "compile.sh: the Deno runtime (denort) for compiling could not be downloaded; set DENORT_BIN to a denort 2.9.6 binary and run again" >&2
  else
    cat "$log" >&2
  fi
  exit 1
fi
echo "built dist/weft ($(du -h dist/weft | cut -f1))"
