#!/usr/bin/env bash
# kvsdemux vs matroskademux throughput and memory on generated Connect-shaped
# GetMedia streams (10 min, 20 min, 1 h, 4 h of call). Prints one table.
# See tests/bench/README.md.
#
# Usage: tests/bench/bench-kvsdemux.sh [BUILD_DIR] [bench-kvsdemux options]
#        (default BUILD_DIR: build; options: --timeout S, --minutes LIST,
#        --dir DIR, --keep)
set -euo pipefail
src_dir=$(cd "$(dirname "$0")/../.." && pwd)
build_dir=${1:-$src_dir/build}
shift || true

meson compile -C "$build_dir" bench-kvsdemux gstcallpipekvs >/dev/null
GST_PLUGIN_PATH="$build_dir/plugins" \
  exec "$build_dir/tests/kvs/bench-kvsdemux" "$@"
