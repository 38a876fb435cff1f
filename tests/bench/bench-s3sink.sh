#!/usr/bin/env bash
# s3sink upload throughput with 1, 4 and 8 parts in flight, through
# tests/s3/s3peer.py adding a fixed latency to every request (a WAN round
# trip). The peer answers the uploads itself (--discard: correct ETags,
# data dropped, the ETag taken from the part's Content-MD5 rather than
# hashed again) so that the Python endpoint's own CPU cost does not hide
# the latency; s3sink still checks every ETag against its own MD5. max-inflight-parts=1 is what
# the Rust awss3sink does (UploadPart inside render()). Same data for every
# run; one table.
#
#   tests/bench/bench-s3sink.sh [BUILD_DIR] [MIB] [LATENCY_MS]
#
# Defaults: build, 128 MiB, 50 ms. Needs python3 with moto, and
# /usr/bin/time (Debian package "time") for the peak RSS.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
build="$(cd "${1:-$here/../../build}" && pwd)"
mib="${2:-128}"
latency="${3:-50}"
part_size=$((8 * 1024 * 1024))

export GST_PLUGIN_PATH_1_0="$build/plugins"
work="$(mktemp -d)"
coproc PEER {
  exec python3 "$here/../s3/s3peer.py" --latency-ms "$latency" --discard \
    2>/dev/null
}
cleanup() {
  exec {PEER[1]}>&- 2>/dev/null || true
  kill "$PEER_PID" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

read -r ready <&"${PEER[0]}"
case "$ready" in
  SKIP*) echo "bench-s3sink: $ready" >&2; exit 77 ;;
esac
proxy="http://127.0.0.1:${ready#* }"

head -c "$((mib * 1024 * 1024))" /dev/urandom > "$work/data.bin"

printf '%s MiB, part-size 8 MiB, %s ms added to every request\n\n' \
  "$mib" "$latency"
# Part buffers: max-inflight-parts + 2 (the part being filled, and part 1
# held until EOS by header-rewrite, the default).
printf '| max-inflight-parts | wall time (s) | throughput (MiB/s) | speed-up | peak RSS (MiB) | part buffers bound (MiB) |\n'
printf '|---:|---:|---:|---:|---:|---:|\n'
base=""
for n in 1 4 8; do
  /usr/bin/time -f '%e %M' -o "$work/time" \
    gst-launch-1.0 -q filesrc location="$work/data.bin" blocksize=1048576 ! \
    s3sink location="s3://bench/run-$n.bin" endpoint="$proxy" \
    access-key=bench secret-key=bench part-size="$part_size" \
    max-inflight-parts="$n" > "$work/log" 2>&1 || {
      cat "$work/log" >&2
      exit 1
    }
  read -r wall rss_kb < "$work/time"
  base="${base:-$wall}"
  awk -v n="$n" -v wall="$wall" -v mib="$mib" -v rss="$rss_kb" \
    -v base="$base" -v part="$part_size" 'BEGIN {
      printf "| %d | %.2f | %.1f | %.2fx | %.1f | %d |\n", n, wall,
        mib / wall, base / wall, rss / 1024, part * (n + 2) / 1048576
    }'
done
