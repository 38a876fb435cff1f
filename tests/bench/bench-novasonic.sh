#!/usr/bin/env bash
# novasonic benchmark: the local backend's reply latency and CPU per
# concurrent conversation, and the bedrock backend's own latency and CPU
# against tests/novasonic/sonicpeer.py. Real time: about 4 minutes. Prints
# one table. See tests/bench/README.md.
#
# Usage: tests/bench/bench-novasonic.sh [BUILD_DIR [OPTIONS]]
#   BUILD_DIR defaults to build; OPTIONS (bench-novasonic --help):
#   --backend local|bedrock, --counts 1,2,4, --feed-ms 20, --threads
set -euo pipefail
src_dir=$(cd "$(dirname "$0")/../.." && pwd)
build_dir=${1:-$src_dir/build}

meson compile -C "$build_dir" bench-novasonic gstcallpipenovasonic >/dev/null
export GST_PLUGIN_PATH_1_0="$build_dir/plugins"
export GST_REGISTRY_1_0="$build_dir/tests/registry.bin"
export CALLPIPE_PIPELINES_DIR="$src_dir/pipelines"
exec "$build_dir/tests/novasonic/bench-novasonic" "${@:2}"
