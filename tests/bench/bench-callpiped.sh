#!/bin/sh
# callpiped: POST /calls response time and concurrent calls per core with
# RSS per call (tests/bench/README.md). Usage:
#   tests/bench/bench-callpiped.sh BUILD_DIR [bench-callpiped.py options]
set -eu
build=${1:?usage: bench-callpiped.sh BUILD_DIR [options]}
shift
src=$(cd "$(dirname "$0")/../.." && pwd)
ninja -C "$build" >/dev/null
exec python3 "$src/tests/bench/bench-callpiped.py" "$build" "$src" "$@"
