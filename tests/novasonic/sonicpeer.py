#!/usr/bin/python3
"""A local Amazon Nova Sonic peer (InvokeModelWithBidirectionalStream).

Serves h2c with prior knowledge on 127.0.0.1 (port picked at run time,
printed on stdout) for tests/novasonic and tests/bench. Its checks use its
own code (hmac, hashlib, zlib), independent of the C under test:

- the request's SigV4 signature (secret --secret-key, service "bedrock",
  the path's model id double-encoded in the canonical URI) and every
  event's chunk signature in the STREAMING-AWS4-HMAC-SHA256-EVENTS chain,
  both CRCs of each frame;
- the event order: sessionStart, promptStart, the SYSTEM text block first,
  then history blocks (non-interactive, starting with USER, alternating,
  each <= 1 KB, <= 40 KB in all), then the interactive audio contentStart,
  audioInput, tool results, and contentEnd/promptEnd/sessionEnd.
A violation is answered with a validationException naming it.

The conversation: a 32 ms frame whose peak exceeds 1000 is speech; a turn
ends after --pause-ms of silence following speech. The peer then answers
with a USER FINAL transcript "turn N", optionally a toolUse (--tool, first
turn; the reply waits for its toolResult), ASSISTANT SPECULATIVE text,
--reply-ms of audio at the promptStart's output rate (sample value
1000 + N), ASSISTANT FINAL text and a usageEvent. Speech while a reply is
playing (within its duration, counted in received audio) is answered with
the interrupted signal ({ "interrupted" : true } and contentEnd
INTERRUPTED). --timeout-frames N ends the first stream with a
modelTimeoutException after N audio frames; --malformed sends an
undecodable event after the first reply.

--record DIR writes, per stream i (1-based), stream-i.pcm (every audio
sample received) and stream-i.events (one line per input event: its name,
role or type), and DIR/errors (violations). --stamp writes, for the bench,
DIR/sent (the monotonic time in ns at which each reply's first audio
frame was handed to the socket).

The peer exits when stdin closes or after --lifetime seconds.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import socket
import struct
import sys
import threading
import time
import urllib.parse
import zlib

import h2.config
import h2.connection
import h2.events
import h2.exceptions

ARGS = None
STREAM_COUNT = [0]
COUNT_LOCK = threading.Lock()
UNRESERVED = ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
              "0123456789-_.~")


class Violation(Exception):
    pass


def uri_encode(s, keep_slash):
    out = []
    for b in s.encode():
        c = chr(b)
        if c in UNRESERVED or (keep_slash and c == "/"):
            out.append(c)
        else:
            out.append("%%%02X" % b)
    return "".join(out)


def signing_key(secret, day, region, service):
    k = ("AWS4" + secret).encode()
    for part in (day, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def verify_request(headers):
    auth = headers.get("authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        raise Violation("no SigV4 authorization header")
    fields = dict(p.strip().split("=", 1) for p in auth[17:].split(","))
    cred = fields["Credential"].split("/")
    if cred[0] != ARGS.access_key or cred[3] != "bedrock":
        raise Violation("wrong credential scope %s" % fields["Credential"])
    signed = fields["SignedHeaders"].split(";")
    lines = []
    for name in signed:
        value = headers.get(":authority" if name == "host" else name)
        if value is None:
            raise Violation("signed header %s missing" % name)
        lines.append("%s:%s\n" % (name, " ".join(value.split())))
    path = headers[":path"].split("?", 1)[0]
    if headers.get("x-amz-content-sha256") != \
            "STREAMING-AWS4-HMAC-SHA256-EVENTS":
        raise Violation("payload hash is not STREAMING-...-EVENTS")
    canonical = "\n".join([
        "POST", uri_encode(path, True), "", "".join(lines),
        fields["SignedHeaders"], headers["x-amz-content-sha256"]])
    amz_date = headers["x-amz-date"]
    scope = "/".join(cred[1:])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                     hashlib.sha256(canonical.encode()).hexdigest()])
    key = signing_key(ARGS.secret_key, cred[1], cred[2], "bedrock")
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    if sig != fields["Signature"]:
        raise Violation("request signature mismatch")
    return sig, cred[2]


def decode_message(data):
    """Returns (headers dict, raw header bytes, payload) of one message."""
    total, hlen, pcrc = struct.unpack(">III", data[:12])
    if total != len(data) or zlib.crc32(data[:8]) != pcrc:
        raise Violation("bad prelude")
    if zlib.crc32(data[:-4]) != struct.unpack(">I", data[-4:])[0]:
        raise Violation("bad message CRC")
    raw = data[12:12 + hlen]
    payload = data[12 + hlen:-4]
    headers = {}
    i = 0
    while i < len(raw):
        n = raw[i]
        name = raw[i + 1:i + 1 + n].decode()
        t = raw[i + 1 + n]
        i += 2 + n
        if t == 8:
            headers[name] = struct.unpack(">q", raw[i:i + 8])[0]
            i += 8
        elif t in (6, 7):
            ln = struct.unpack(">H", raw[i:i + 2])[0]
            v = raw[i + 2:i + 2 + ln]
            headers[name] = v.decode() if t == 7 else v
            i += 2 + ln
        else:
            raise Violation("unexpected header type %d" % t)
    return headers, raw, payload


def encode_message(headers, payload):
    raw = b""
    for name, value in headers:
        nb = name.encode()
        vb = value.encode()
        raw += bytes([len(nb)]) + nb + b"\x07" + struct.pack(">H", len(vb)) + vb
    total = 16 + len(raw) + len(payload)
    prelude = struct.pack(">II", total, len(raw))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    msg = prelude + raw + payload
    return msg + struct.pack(">I", zlib.crc32(msg))


def event_frame(event):
    body = json.dumps({"event": event}).encode()
    payload = json.dumps({"bytes": base64.b64encode(body).decode()}).encode()
    return encode_message([(":event-type", "chunk"),
                           (":content-type", "application/json"),
                           (":message-type", "event")], payload)


def exception_frame(kind, message):
    return encode_message([(":exception-type", kind),
                           (":content-type", "application/json"),
                           (":message-type", "exception")],
                          json.dumps({"message": message}).encode())


class Session:
    """One bidirectional stream."""

    def __init__(self, handler, sid, headers):
        self.h = handler
        self.sid = sid
        with COUNT_LOCK:
            STREAM_COUNT[0] += 1
            self.index = STREAM_COUNT[0]
        self.buf = b""
        self.prior, self.region = verify_request(headers)
        self.events = []
        self.phase = "start"
        self.history_roles = []
        self.history_total = 0
        self.open_text = None
        self.out_rate = 24000
        self.in_rate = 16000
        self.frames = 0
        self.turn = 0
        self.speaking = False
        self.silent_ms = 0
        self.reply_left_ms = 0
        self.interrupted = False
        self.waiting_tool = None
        self.done = False
        self.cid = 0

    def record(self, name, data):
        if ARGS.record:
            path = os.path.join(ARGS.record, "stream-%d.%s" % (self.index, name))
            with open(path, "ab") as f:
                f.write(data)

    def send(self, event):
        self.h.queue(self.sid, event_frame(event))

    def new_id(self):
        self.cid += 1
        return "c%d-%d" % (self.index, self.cid)

    # -- input --

    def feed(self, data):
        self.buf += data
        while len(self.buf) >= 12 and not self.done:
            total = struct.unpack(">I", self.buf[:4])[0]
            if len(self.buf) < total:
                return
            frame, self.buf = self.buf[:total], self.buf[total:]
            self.on_frame(frame)

    def on_frame(self, frame):
        headers, raw, payload = decode_message(frame)
        date_ms = headers.get(":date")
        sig = headers.get(":chunk-signature")
        if date_ms is None or sig is None:
            raise Violation("frame without :date or :chunk-signature")
        date_raw = b"\x05:date\x08" + struct.pack(">q", date_ms)
        amz = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(date_ms // 1000))
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz,
                         "%s/%s/bedrock/aws4_request" % (amz[:8], self.region),
                         self.prior, hashlib.sha256(date_raw).hexdigest(),
                         hashlib.sha256(payload).hexdigest()])
        key = signing_key(ARGS.secret_key, amz[:8], self.region, "bedrock")
        expect = hmac.new(key, sts.encode(), hashlib.sha256).digest()
        if expect != sig:
            raise Violation("chunk signature mismatch at event %d"
                            % len(self.events))
        self.prior = expect.hex()
        if not payload:
            self.record("events", b"end-frame\n")
            self.done = True
            return
        ih, _, ipayload = decode_message(payload)
        if ih.get(":event-type") != "chunk":
            raise Violation("inner message is not a chunk")
        body = json.loads(base64.b64decode(json.loads(ipayload)["bytes"]))
        (name, ev), = body["event"].items()
        self.on_event(name, ev)

    def on_event(self, name, ev):
        label = name
        if name == "contentStart":
            label += " " + ev.get("role", "") + " " + ev.get("type", "")
        self.events.append(label)
        self.record("events", (label + "\n").encode())
        order = ["sessionStart", "promptStart"]
        if len(self.events) <= 2:
            if name != order[len(self.events) - 1]:
                raise Violation("event %d is %s, not %s"
                                % (len(self.events), name,
                                   order[len(self.events) - 1]))
            if name == "promptStart":
                aoc = ev["audioOutputConfiguration"]
                self.out_rate = aoc["sampleRateHertz"]
            return
        if name == "contentStart":
            self.content_start(ev)
        elif name == "textInput":
            if self.open_text is None:
                raise Violation("textInput outside a text content")
            if self.open_text != "SYSTEM" and \
                    len(ev["content"].encode()) > 1024:
                raise Violation("history textInput over 1 KB")
            if self.open_text != "SYSTEM":
                self.history_total += len(ev["content"].encode())
                if self.history_total > 40 * 1024:
                    raise Violation("history over 40 KB")
        elif name == "contentEnd":
            self.open_text = None
        elif name == "audioInput":
            if self.phase != "audio":
                raise Violation("audioInput before the audio contentStart")
            self.audio(base64.b64decode(ev["content"]))
        elif name == "toolResult":
            if self.waiting_tool is None:
                raise Violation("toolResult without a toolUse")
            self.waiting_tool = None
            self.reply()
        elif name == "sessionEnd":
            self.send({"completionEnd": {"stopReason": "END_TURN"}})
            self.h.end(self.sid)

    def content_start(self, ev):
        role, kind = ev.get("role"), ev.get("type")
        if self.phase == "start":
            if role != "SYSTEM" or kind != "TEXT":
                raise Violation("First content must have SYSTEM role")
            self.phase = "history"
            self.open_text = "SYSTEM"
            return
        if kind == "TEXT" and self.phase == "history":
            if ev.get("interactive"):
                raise Violation("history sent as interactive")
            if not self.history_roles and role != "USER":
                raise Violation("history must start with USER")
            if self.history_roles and self.history_roles[-1] == role:
                raise Violation("history roles must alternate")
            self.history_roles.append(role)
            self.open_text = role
            return
        if kind == "AUDIO":
            if self.phase != "history" or not ev.get("interactive"):
                raise Violation("audio contentStart out of order")
            self.in_rate = ev["audioInputConfiguration"]["sampleRateHertz"]
            self.phase = "audio"
            return
        if kind == "TOOL":
            tid = ev["toolResultInputConfiguration"]["toolUseId"]
            if tid != self.waiting_tool:
                raise Violation("toolResult for unknown toolUseId %s" % tid)
            return
        raise Violation("unexpected contentStart %s %s" % (role, kind))

    # -- the conversation --

    def audio(self, pcm):
        self.record("pcm", pcm)
        self.frames += 1
        n = len(pcm) // 2
        ms = n * 1000 // self.in_rate
        peak = max((abs(v) for v in struct.unpack("<%dh" % n, pcm)),
                   default=0)
        if self.index == 1 and ARGS.timeout_frames and \
                self.frames >= ARGS.timeout_frames:
            self.h.queue(self.sid, exception_frame(
                "modelTimeoutException",
                "Model has timed out in processing the request"))
            self.h.end(self.sid)
            self.done = True
            return
        if self.reply_left_ms > 0:
            self.reply_left_ms = max(0, self.reply_left_ms - ms)
            if peak > 1000 and not self.interrupted:
                self.interrupt()
            elif self.reply_left_ms == 0 and ARGS.barge_in:
                self.finish_reply(self.audio_id, "END_TURN",
                                  "reply %d" % self.turn)
        if peak > 1000:
            self.speaking = True
            self.silent_ms = 0
        elif self.speaking:
            self.silent_ms += ms
            if self.silent_ms >= ARGS.pause_ms:
                self.speaking = False
                self.end_of_turn()

    def end_of_turn(self):
        self.turn += 1
        cid = self.new_id()
        self.send({"completionStart": {"completionId": "x"}})
        self.send({"contentStart": {
            "contentId": cid, "type": "TEXT", "role": "USER",
            "additionalModelFields": '{"generationStage":"FINAL"}'}})
        self.send({"textOutput": {"contentId": cid, "role": "USER",
                                  "content": "turn %d" % self.turn}})
        self.send({"contentEnd": {"contentId": cid, "type": "TEXT",
                                  "stopReason": "PARTIAL_TURN"}})
        if ARGS.tool and self.turn == 1:
            tid = self.new_id()
            self.waiting_tool = "tool-%s" % tid
            self.send({"contentStart": {"contentId": tid, "type": "TOOL",
                                        "role": "TOOL"}})
            self.send({"toolUse": {"contentId": tid, "toolName": ARGS.tool,
                                   "toolUseId": self.waiting_tool,
                                   "content": ARGS.tool_input}})
            self.send({"contentEnd": {"contentId": tid, "type": "TOOL",
                                      "stopReason": "TOOL_USE"}})
            return
        self.reply()

    def reply(self):
        text = "reply %d" % self.turn
        sid = self.new_id()
        self.send({"contentStart": {
            "contentId": sid, "type": "TEXT", "role": "ASSISTANT",
            "additionalModelFields": '{"generationStage":"SPECULATIVE"}'}})
        self.send({"textOutput": {"contentId": sid, "role": "ASSISTANT",
                                  "content": text}})
        self.send({"contentEnd": {"contentId": sid, "type": "TEXT",
                                  "stopReason": "PARTIAL_TURN"}})
        aid = self.new_id()
        self.audio_id = aid
        self.send({"contentStart": {"contentId": aid, "type": "AUDIO",
                                    "role": "ASSISTANT"}})
        n = self.out_rate * ARGS.reply_ms // 1000
        value = 1000 + self.turn
        chunk = self.out_rate // 10
        first = True
        for off in range(0, n, chunk):
            k = min(chunk, n - off)
            pcm = struct.pack("<%dh" % k, *([value] * k))
            self.send({"audioOutput": {"contentId": aid,
                                       "content": base64.b64encode(pcm)
                                       .decode()}})
            if first and ARGS.stamp:
                self.h.flush()
                with open(os.path.join(ARGS.record, "sent"), "a") as f:
                    f.write("%d\n" % time.monotonic_ns())
                first = False
        self.interrupted = False
        self.reply_left_ms = ARGS.reply_ms
        if not ARGS.barge_in:
            self.finish_reply(aid, "END_TURN", text)

    def finish_reply(self, aid, reason, text):
        self.send({"contentEnd": {"contentId": aid, "type": "AUDIO",
                                  "stopReason": reason}})
        if reason == "END_TURN":
            fid = self.new_id()
            self.send({"contentStart": {
                "contentId": fid, "type": "TEXT", "role": "ASSISTANT",
                "additionalModelFields": '{"generationStage":"FINAL"}'}})
            self.send({"textOutput": {"contentId": fid, "role": "ASSISTANT",
                                      "content": text}})
            self.send({"contentEnd": {"contentId": fid, "type": "TEXT",
                                      "stopReason": "END_TURN"}})
        self.send({"usageEvent": {"completionId": "x",
                                  "totalInputTokens": 10 * self.turn,
                                  "totalOutputTokens": 5 * self.turn,
                                  "totalTokens": 15 * self.turn}})
        if ARGS.malformed and self.turn == 1:
            self.h.queue(self.sid, encode_message(
                [(":event-type", "chunk"), (":message-type", "event")],
                b'{"bytes":"not base64!"}'))

    def interrupt(self):
        self.interrupted = True
        self.reply_left_ms = 0
        tid = self.new_id()
        self.send({"contentStart": {
            "contentId": tid, "type": "TEXT", "role": "ASSISTANT",
            "additionalModelFields": '{"generationStage":"FINAL"}'}})
        self.send({"textOutput": {"contentId": tid, "role": "ASSISTANT",
                                  "content": '{ "interrupted" : true }'}})
        self.send({"contentEnd": {"contentId": tid, "type": "TEXT",
                                  "stopReason": "INTERRUPTED"}})
        self.finish_reply(self.audio_id, "INTERRUPTED", "")


class Handler:
    def __init__(self, sock):
        self.sock = sock
        self.conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=False,
                                             header_encoding="utf-8"))
        self.sessions = {}
        self.pending = {}
        self.ending = set()

    def queue(self, sid, data):
        self.pending.setdefault(sid, bytearray()).extend(data)

    def end(self, sid):
        self.ending.add(sid)

    def flush(self):
        for sid, buf in list(self.pending.items()):
            while buf:
                try:
                    window = self.conn.local_flow_control_window(sid)
                except (h2.exceptions.StreamClosedError, KeyError):
                    buf.clear()
                    break
                n = min(window, self.conn.max_outbound_frame_size, len(buf))
                if n <= 0:
                    break
                self.conn.send_data(sid, bytes(buf[:n]))
                del buf[:n]
            if not buf and sid in self.ending:
                self.ending.discard(sid)
                try:
                    self.conn.end_stream(sid)
                except h2.exceptions.StreamClosedError:
                    pass
        out = self.conn.data_to_send()
        if out:
            self.sock.sendall(out)

    def violation(self, sid, err):
        if ARGS.record:
            with open(os.path.join(ARGS.record, "errors"), "a") as f:
                f.write("%s\n" % err)
        self.queue(sid, exception_frame("validationException", str(err)))
        self.end(sid)
        self.sessions.pop(sid, None)

    def on_request(self, ev):
        hdrs = dict(ev.headers)
        path = urllib.parse.urlsplit(hdrs.get(":path", "/")).path
        if not path.startswith("/model/") or \
                not path.endswith("/invoke-with-bidirectional-stream"):
            self.conn.send_headers(ev.stream_id, [(":status", "404")],
                                   end_stream=True)
            return
        try:
            self.conn.send_headers(ev.stream_id, [
                (":status", "200"),
                ("content-type", "application/vnd.amazon.eventstream")])
            self.sessions[ev.stream_id] = Session(self, ev.stream_id, hdrs)
        except (Violation, KeyError, ValueError) as err:
            self.violation(ev.stream_id, err)

    def on_data(self, ev):
        self.conn.acknowledge_received_data(ev.flow_controlled_length,
                                            ev.stream_id)
        s = self.sessions.get(ev.stream_id)
        if s is None or s.done:
            return
        try:
            s.feed(ev.data)
        except (Violation, KeyError, ValueError, struct.error) as err:
            self.violation(ev.stream_id, err)

    def run(self):
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())
        while True:
            data = self.sock.recv(65536)
            if not data:
                return
            for ev in self.conn.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    self.on_request(ev)
                elif isinstance(ev, h2.events.DataReceived):
                    self.on_data(ev)
                elif isinstance(ev, h2.events.StreamEnded):
                    if ev.stream_id in self.sessions:
                        self.end(ev.stream_id)
                elif isinstance(ev, h2.events.StreamReset):
                    self.sessions.pop(ev.stream_id, None)
                    self.pending.pop(ev.stream_id, None)
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    self.sock.sendall(self.conn.data_to_send())
                    return
            self.flush()


def serve(sock):
    try:
        Handler(sock).run()
    except (OSError, h2.exceptions.ProtocolError):
        pass
    finally:
        sock.close()


def exit_on_stdin_eof():
    while sys.stdin.buffer.read(4096):
        pass
    os._exit(0)


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--access-key", default="AKIDNOVATEST")
    p.add_argument("--secret-key", default="novasecret")
    p.add_argument("--record")
    p.add_argument("--stamp", action="store_true")
    p.add_argument("--pause-ms", type=int, default=300)
    p.add_argument("--reply-ms", type=int, default=1000)
    p.add_argument("--tool")
    p.add_argument("--tool-input", default='{"reason":"caller asked"}')
    p.add_argument("--barge-in", action="store_true")
    p.add_argument("--timeout-frames", type=int, default=0)
    p.add_argument("--malformed", action="store_true")
    p.add_argument("--lifetime", type=float, default=120.0)
    ARGS = p.parse_args()

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print(listener.getsockname()[1], flush=True)

    threading.Thread(target=exit_on_stdin_eof, daemon=True).start()
    timer = threading.Timer(ARGS.lifetime, lambda: os._exit(1))
    timer.daemon = True
    timer.start()
    while True:
        sock, _ = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(sock,), daemon=True).start()


if __name__ == "__main__":
    main()
