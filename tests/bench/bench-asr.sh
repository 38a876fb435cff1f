#!/usr/bin/env bash
# Offline ASR benchmark: WER, real-time factor and end-of-utterance latency
# at 16 kHz and at 8 kHz through each recognizer front-end, on the sentence
# set of tests/speech. Prints one table. See tests/bench/README.md.
#
# Usage: tests/bench/bench-asr.sh [BUILD_DIR]   (default: build)
set -euo pipefail
src_dir=$(cd "$(dirname "$0")/../.." && pwd)
build_dir=${1:-$src_dir/build}

meson compile -C "$build_dir" bench-asr >/dev/null
exec "$build_dir/tests/speech/bench-asr"
