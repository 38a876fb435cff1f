#!/usr/bin/env python3
"""callpiped benchmark: POST /calls response time, and how many concurrent
calls one core carries with their memory per call.

  bench-callpiped.py BUILD_DIR SOURCE_DIR [--requests N] [--bridged 25,50,100]
                     [--blocks 128,64] [--local 2,4] [--window S]

Three parts, each against its own callpiped on 127.0.0.1 (port 0):

- POST /calls: --requests sequential requests on one keep-alive
  connection, each starting a media-record call of 0.5 s of audio (a
  pipeline that starts quickly); p50/p99 of the time to the 202.
- bridged calls: [bot] backend = bedrock against tests/novasonic/sonicpeer.py
  (Debian's /usr/bin/python3 with python3-h2). Each call plays a WAV (1 s
  of tone, 2 s of silence, repeated; 8 kHz like Connect's audio, or
  --media-rate) in real time, resamples it to 16 kHz, frames it as Nova
  Sonic events to the peer and records the peer's spoken replies;
  no local speech recognition. For each count N: N calls started, all
  running, then callpiped's CPU time and RSS are sampled over --window
  seconds (and the peer's CPU, which may be the bottleneck). --blocks
  gives the caller's buffer sizes to run: 64 is Connect's KVS block (512
  samples at 8 kHz), cut by audiobuffersplit in a copy of
  connect-bot-media; 0 keeps wavparse's own buffers (4096 bytes: 256 ms at
  8 kHz, 128 ms at 16 kHz).
- local-bot calls: [bot] backend = local (VAD, pocketsphinx, dialog, flite),
  the caller's question spoken by flite (ttssrc), repeated.

BENCH_DAEMON_LOG=FILE appends the daemons' stderr (JSON logs, GST_DEBUG) to
FILE; calls that were not running during the window are listed with their
state and reason under the table.

Per-call figures: CPU% of one core per call (callpiped's CPU over the window
/ N), calls per core (100 / that), RSS growth per call ((RSS - RSS of the
idle daemon) / N).
"""

import argparse
import http.client
import json
import math
import os
import re
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import wave

CLK_TCK = os.sysconf("SC_CLK_TCK")
TOKEN = "bench-token"


def write_wav(path, rate, samples):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(struct.pack("<%dh" % len(samples), *samples))


def tone_wav(path, seconds, tone_s=1.0, quiet_s=2.0, rate=16000):
    out = []
    period = tone_s + quiet_s
    for i in range(int(seconds * rate)):
        t = i / rate
        loud = (t % period) < tone_s
        out.append(int(8000 * math.sin(2 * math.pi * 440 * t)) if loud else 0)
    write_wav(path, rate, out)


def speech_wav(path, tmp, env, text, seconds):
    """flite (ttssrc) at 8 kHz, repeated with 3 s pauses for @seconds."""
    raw = os.path.join(tmp, "speech.raw")
    subprocess.run(["gst-launch-1.0", "-q", "ttssrc", "text=" + text, "!",
                    "audioconvert", "!", "audioresample", "!",
                    "audio/x-raw,format=S16LE,rate=8000,channels=1", "!",
                    "filesink", "location=" + raw], env=env, check=True)
    with open(raw, "rb") as f:
        speech = list(struct.unpack("<%dh" % (os.path.getsize(raw) // 2),
                                    f.read()))
    out = [0] * 4000
    while len(out) < seconds * 8000:
        out += speech + [0] * 24000
    write_wav(path, 8000, out)


class Daemon:
    def __init__(self, args, tmp, name, config, env):
        d = os.path.join(tmp, name)
        os.makedirs(d)
        cfg = os.path.join(d, "callpiped.ini")
        with open(cfg, "w") as f:
            f.write("[server]\naddress = 127.0.0.1\ntoken = %s\n"
                    "drain-timeout = 5\nmax-body-bytes = 65536\n%s"
                    % (TOKEN, config))
        # BENCH_DAEMON_LOG=FILE keeps the daemons' logs (with GST_DEBUG).
        with open(os.environ.get("BENCH_DAEMON_LOG", os.devnull), "ab") as log:
            self.proc = subprocess.Popen(
                [os.path.join(args.build, "services/callpiped/callpiped"),
                 "--port", "0", "--data-dir", os.path.join(d, "var"),
                 "--config", cfg],
                stdout=subprocess.PIPE, stderr=log, env=env)
        line = self.proc.stdout.readline().decode()
        if "port " not in line:
            raise RuntimeError("callpiped did not start: %r" % line)
        self.port = int(line.split("port ")[1].split()[0])
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                               timeout=60)

    def request(self, method, path, body=None):
        headers = {"Authorization": "Bearer " + TOKEN}
        if body is not None:
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=body, headers=headers)
        r = self.conn.getresponse()
        data = r.read()
        return r.status, json.loads(data) if data else None

    def start_call(self, wav, contact):
        body = json.dumps({"contactId": contact,
                           "mediaUri": "file://" + os.path.abspath(wav)})
        status, doc = self.request("POST", "/calls", body)
        if status != 202:
            raise RuntimeError("POST /calls: %d %s" % (status, doc))
        return doc["sessionId"]

    def states(self, ids):
        return {i: self.request("GET", "/calls/" + i)[1] for i in ids}

    def wait(self, ids, want, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            docs = self.states(ids)
            if all(d["state"] in want for d in docs.values()):
                return docs
            time.sleep(0.5)
        raise RuntimeError("calls did not reach %s in %d s" % (want, timeout))

    def stop(self):
        self.conn.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def status_field(pid, name):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return 0


def rss_kb(pid):
    return status_field(pid, "VmRSS")


def switches(pid):
    """Context switches of all of @pid's threads."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if "ctxt_switches:" in line:
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def measure(pids, window):
    t0 = time.monotonic()
    c0 = [cpu_ticks(p) for p in pids]
    time.sleep(window)
    dt = time.monotonic() - t0
    return [100.0 * (cpu_ticks(p) - c) / CLK_TCK / dt
            for p, c in zip(pids, c0)]


def bench_post(args, tmp, env):
    media = os.path.join(tmp, "short.wav")
    tone_wav(media, 0.5)
    d = Daemon(args, tmp, "post", "[pipelines]\ncall = media-record\n", env)
    try:
        d.start_call(media, "warm-up")
        times = []
        for i in range(args.requests):
            t = time.perf_counter()
            d.start_call(media, "post-%d" % i)
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        p99 = times[min(len(times) - 1, int(math.ceil(0.99 * len(times))) - 1)]
        return statistics.median(times), p99
    finally:
        d.stop()


def bench_calls(args, tmp, env, name, config, media, counts, peer_pid):
    rows = []
    for n in counts:
        tag = re.sub(r"[^A-Za-z0-9]+", "-", name)
        d = Daemon(args, tmp, "%s-%d" % (tag, n), config, env)
        try:
            time.sleep(1)
            idle_rss = rss_kb(d.proc.pid)
            ids = [d.start_call(media, "%s-%d-%d" % (tag, n, i))
                   for i in range(n)]
            d.wait(ids, ("running", "ended", "failed"), 60)
            time.sleep(args.settle)
            pids = [d.proc.pid] + ([peer_pid] if peer_pid else [])
            cs0 = switches(d.proc.pid)
            t0 = time.monotonic()
            cpu = measure(pids, args.window)
            cs = (switches(d.proc.pid) - cs0) / (time.monotonic() - t0)
            rss = rss_kb(d.proc.pid)
            threads = status_field(d.proc.pid, "Threads")
            docs = d.states(ids)
            running = sum(1 for x in docs.values() if x["state"] == "running")
            others = sorted({"%s: %s" % (x["state"], x.get("reason"))
                             for x in docs.values()
                             if x["state"] != "running"})
            replied = sum(1 for x in docs.values()
                          if any(e["role"] == "bot"
                                 for e in x.get("transcript", [])))
            for i in ids:
                d.request("DELETE", "/calls/" + i)
            d.wait(ids, ("ended", "failed"), 60)
            rows.append({
                "name": name, "n": n, "running": running, "replied": replied,
                "cpu": cpu[0], "peer_cpu": cpu[1] if peer_pid else None,
                "idle_rss": idle_rss, "rss": rss, "others": others,
                "threads": threads, "switches": cs,
            })
        finally:
            d.stop()
    return rows


def pipelines_with_blocks(args, tmp, block_ms):
    """A copy of pipelines/ whose connect-bot-media delivers the caller's
    audio in @block_ms buffers."""
    src = os.path.join(args.source, "pipelines")
    dst = os.path.join(tmp, "pipelines-%dms" % block_ms)
    subprocess.run(["cp", "-r", src, dst], check=True)
    path = os.path.join(dst, "connect-bot-media.pipeline")
    with open(path) as f:
        text = f.read()
    split = ("! audiobuffersplit output-buffer-duration=%d/1000\n"
             "  ! identity sync=true" % block_ms)
    if "! identity sync=true" not in text:
        raise RuntimeError("connect-bot-media has no identity sync=true")
    with open(path, "w") as f:
        f.write(text.replace("! identity sync=true", split, 1))
    return dst


def start_peer(args):
    peer = subprocess.Popen(
        ["/usr/bin/python3",
         os.path.join(args.source, "tests/novasonic/sonicpeer.py"),
         "--lifetime", "600"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL)
    line = peer.stdout.readline().decode().strip()
    if not line.isdigit():
        peer.kill()
        raise RuntimeError("sonicpeer.py did not start (python3-h2?)")
    return peer, int(line)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("build")
    p.add_argument("source")
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--bridged", default="25,50,100")
    p.add_argument("--blocks", default="64",
                   help="caller buffer sizes (ms) for the bridged calls; "
                        "0: wavparse's own")
    p.add_argument("--media-rate", type=int, default=8000,
                   help="the bridged calls' WAV rate")
    p.add_argument("--local", default="2,4")
    p.add_argument("--window", type=float, default=8.0)
    p.add_argument("--settle", type=float, default=3.0)
    args = p.parse_args()
    args.build = os.path.abspath(args.build)
    args.source = os.path.abspath(args.source)

    tmp = tempfile.mkdtemp(prefix="bench-callpiped-")
    env = dict(os.environ,
               GST_PLUGIN_PATH_1_0=os.path.join(args.build, "plugins"),
               GST_REGISTRY_1_0=os.path.join(tmp, "registry.bin"),
               CALLPIPE_PIPELINES_DIR=os.path.join(args.source, "pipelines"),
               AWS_ACCESS_KEY_ID="AKIDNOVATEST",
               AWS_SECRET_ACCESS_KEY="novasecret",
               GST_DEBUG=os.environ.get("GST_DEBUG", "*:1"))
    peer = None
    try:
        post_p50, post_p99 = bench_post(args, tmp, env)
        peer, peer_port = start_peer(args)
        seconds = args.window + args.settle + 60
        tones = os.path.join(tmp, "tones.wav")
        tone_wav(tones, seconds, rate=args.media_rate)
        rows = []
        bridged = "[bot]\nbackend = bedrock\nregion = us-east-1\n" \
                  "endpoint = http://127.0.0.1:%d\n" % peer_port
        for block_ms in [int(x) for x in args.blocks.split(",") if x]:
            if block_ms == 0:
                run_env, name = env, "bridged"
            else:
                # CALLPIPE_PIPELINES_DIR is [pipelines] dir, and wins.
                run_env = dict(env, CALLPIPE_PIPELINES_DIR=
                               pipelines_with_blocks(args, tmp, block_ms))
                name = "bridged, %d ms blocks" % block_ms
            name += ", %d kHz media" % (args.media_rate // 1000)
            rows += bench_calls(
                args, tmp, run_env, name, bridged, tones,
                [int(x) for x in args.bridged.split(",") if x], peer.pid)
        speech = os.path.join(tmp, "speech.wav")
        speech_wav(speech, tmp, env, "Where is my order?", seconds)
        rows += bench_calls(
            args, tmp, env, "local-bot", "[bot]\nbackend = local\n", speech,
            [int(x) for x in args.local.split(",") if x], None)
    finally:
        if peer is not None:
            peer.kill()
            peer.wait()
        subprocess.run(["rm", "-rf", tmp])

    print("\nPOST /calls (%d requests, media-record): p50 %.2f ms, "
          "p99 %.2f ms   [goal < 50 ms; seed: ~30 s Lambda-triggered start]"
          % (args.requests, post_p50, post_p99))
    print()
    hdr = ("| calls | kind | running | bot replied | callpiped CPU % "
           "| CPU %/call | calls/core | RSS idle MB | RSS MB "
           "| RSS/call MB | threads | ctx switches/s/call | peer CPU % |")
    print(hdr)
    print("|" + "---|" * (hdr.count("|") - 1))
    for r in rows:
        per = r["cpu"] / r["n"]
        print("| %d | %s | %d | %d | %.1f | %.2f | %s | %.1f | %.1f | %.2f "
              "| %d | %d | %s |"
              % (r["n"], r["name"], r["running"], r["replied"], r["cpu"], per,
                 "%d" % (100 / per) if per > 0 else "-",
                 r["idle_rss"] / 1024, r["rss"] / 1024,
                 (r["rss"] - r["idle_rss"]) / 1024 / r["n"],
                 r["threads"], r["switches"] / r["n"],
                 "%.1f" % r["peer_cpu"] if r["peer_cpu"] is not None else "-"))
    print("| 1 | seed (Fargate task per call) | | | | 100 (1 vCPU) | 1 | "
          "| | 50-100 (2 GB task) | | | |")
    print("\ngoal: >= 500 calls/core at < 5 MB RSS per call")
    for r in rows:
        if r["others"]:
            print("%d %s: not running during the window: %s"
                  % (r["n"], r["name"], "; ".join(r["others"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
