#!/usr/bin/python3
"""Amazon Transcribe streaming test peer (HTTP/2, Debian's python3-h2).

Listens on 127.0.0.1 on a free port, prints the port on stdout and serves
POST /stream-transcription over h2c with prior knowledge. It exits when its
stdin closes (the test ended) or after --lifetime seconds.

It checks what the real service checks, with its own code (hmac/hashlib,
not the client's library):
  - the request: method, path, content-type, x-amz-content-sha256
    STREAMING-AWS4-HMAC-SHA256-EVENTS, the x-amzn-transcribe-* headers,
    and the SigV4 Authorization signature against --access-key/--secret
    (a mismatch answers 403 InvalidSignatureException, as AWS does);
  - every event-stream frame: both CRCs, the :date and :chunk-signature
    envelope and the signature chain seeded by the request's signature
    (a mismatch answers an InvalidSignatureException exception), and the
    inner AudioEvent's headers.

"Speech" is scripted in the audio itself: a word is a run of samples with
one nonzero value v (the word is "w<v>"), words are separated by zeros,
and --sentence-gap-ms of zeros ends a sentence. Each finished word gives a
partial TranscriptEvent for its sentence, each finished sentence (or the
end of the stream) a final one with confidences and a closing ".". Times
are seconds of the stream's audio, ChannelId ch_<n> per channel.

Per stream N (counted from 0 over all connections) it writes into
--dump-dir: stream-N.raw (the decoded audio, exactly) and stream-N.json
(request headers, frame count, chunk durations, how the stream ended),
rewritten after every frame.

Faults, on stream 0 only: --drop-after-ms closes the TCP connection once
that much audio arrived; --exception NAME sends that exception after
--exception-after-ms of audio and ends the response.
"""

import argparse
import binascii
import datetime
import hashlib
import hmac
import json
import os
import socket
import struct
import sys
import threading
import uuid

import h2.config
import h2.connection
import h2.events
import h2.exceptions

ARGS = None
STREAM_LOCK = threading.Lock()
STREAM_COUNT = [0]


def crc32(data):
    return binascii.crc32(data) & 0xFFFFFFFF


# ---- event stream codec ----

def encode_headers(headers):
    out = bytearray()
    for name, value in headers:
        nb = name.encode()
        out += struct.pack("B", len(nb)) + nb
        if isinstance(value, bytes):
            out += struct.pack(">BH", 6, len(value)) + value
        else:
            vb = value.encode()
            out += struct.pack(">BH", 7, len(vb)) + vb
    return bytes(out)


def encode_message(headers, payload):
    hb = encode_headers(headers)
    total = 16 + len(hb) + len(payload)
    prelude = struct.pack(">II", total, len(hb))
    prelude += struct.pack(">I", crc32(prelude))
    msg = prelude + hb + payload
    return msg + struct.pack(">I", crc32(msg))


class CodecError(Exception):
    pass


def decode_headers(data):
    headers = {}
    pos = 0
    while pos < len(data):
        n = data[pos]
        name = data[pos + 1:pos + 1 + n].decode()
        pos += 1 + n
        htype = data[pos]
        pos += 1
        if htype in (0, 1):
            value = htype == 0
        elif htype == 2:
            value = struct.unpack_from(">b", data, pos)[0]
            pos += 1
        elif htype == 3:
            value = struct.unpack_from(">h", data, pos)[0]
            pos += 2
        elif htype == 4:
            value = struct.unpack_from(">i", data, pos)[0]
            pos += 4
        elif htype in (5, 8):
            value = struct.unpack_from(">q", data, pos)[0]
            pos += 8
        elif htype in (6, 7):
            ln = struct.unpack_from(">H", data, pos)[0]
            value = bytes(data[pos + 2:pos + 2 + ln])
            if htype == 7:
                value = value.decode()
            pos += 2 + ln
        elif htype == 9:
            value = bytes(data[pos:pos + 16])
            pos += 16
        else:
            raise CodecError("bad header type %d" % htype)
        headers[name] = (htype, value)
    return headers


def pop_message(buf):
    """Returns (headers, raw headers, payload) and consumes it, or None."""
    if len(buf) < 12:
        return None
    total, hlen, pcrc = struct.unpack_from(">III", buf, 0)
    if crc32(bytes(buf[:8])) != pcrc:
        raise CodecError("prelude CRC mismatch")
    if total < 16 or hlen > total - 16:
        raise CodecError("bad lengths")
    if len(buf) < total:
        return None
    msg = bytes(buf[:total])
    del buf[:total]
    if crc32(msg[:-4]) != struct.unpack(">I", msg[-4:])[0]:
        raise CodecError("message CRC mismatch")
    raw = msg[12:12 + hlen]
    return decode_headers(raw), raw, msg[12 + hlen:-4]


# ---- SigV4, written out here so the client's code is not checked by
# itself ----

def hmac256(key, msg):
    return hmac.new(key, msg.encode() if isinstance(msg, str) else msg,
                    hashlib.sha256).digest()


def signing_key(secret, day, region, service):
    k = hmac256(("AWS4" + secret).encode(), day)
    k = hmac256(k, region)
    k = hmac256(k, service)
    return hmac256(k, "aws4_request")


def check_request(hdrs):
    """Returns None, or (status, error type, message)."""
    if hdrs.get(":method") != "POST" or \
            hdrs.get(":path") != "/stream-transcription":
        return (404, "BadRequestException", "no such path")
    need = {
        "content-type": "application/vnd.amazon.eventstream",
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-EVENTS",
        "x-amzn-transcribe-media-encoding": "pcm",
    }
    for name, value in need.items():
        if hdrs.get(name) != value:
            return (400, "BadRequestException", "bad or missing " + name)
    for name in ("x-amzn-transcribe-language-code",
                 "x-amzn-transcribe-sample-rate", "x-amz-date"):
        if name not in hdrs:
            return (400, "BadRequestException", "missing " + name)
    auth = hdrs.get("authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return (403, "MissingAuthenticationTokenException", "no signature")
    fields = dict(p.strip().split("=", 1)
                  for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
    cred = fields.get("Credential", "").split("/")
    if len(cred) != 5 or cred[0] != ARGS.access_key or \
            cred[2] != ARGS.region or cred[3] != "transcribe" or \
            cred[4] != "aws4_request":
        return (403, "UnrecognizedClientException",
                "The security token included in the request is invalid.")
    signed = fields.get("SignedHeaders", "").split(";")
    for name in ("host", "x-amz-date", "x-amz-content-sha256",
                 "x-amzn-transcribe-language-code"):
        if name not in signed:
            return (403, "InvalidSignatureException",
                    name + " is not signed")
    canon_headers = ""
    for name in signed:
        value = hdrs.get(":authority") if name == "host" else hdrs.get(name)
        if value is None:
            return (403, "InvalidSignatureException", "missing " + name)
        canon_headers += name + ":" + " ".join(value.split()) + "\n"
    canonical = "\n".join(["POST", "/stream-transcription", "",
                           canon_headers, ";".join(signed),
                           hdrs["x-amz-content-sha256"]])
    amz_date = hdrs["x-amz-date"]
    scope = "/".join(cred[1:])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                     hashlib.sha256(canonical.encode()).hexdigest()])
    key = signing_key(ARGS.secret, cred[1], ARGS.region, "transcribe")
    expect = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expect, fields.get("Signature", "")):
        return (403, "InvalidSignatureException",
                "The request signature we calculated does not match the "
                "signature you provided.")
    return None


class Chain:
    """The STREAMING-AWS4-HMAC-SHA256-EVENTS chain, verified."""

    def __init__(self, seed):
        self.prior = seed

    def verify(self, headers, payload):
        if ":date" not in headers or ":chunk-signature" not in headers:
            return False
        dtype, date_ms = headers[":date"]
        stype, sig = headers[":chunk-signature"]
        if dtype != 8 or stype != 6 or len(sig) != 32:
            return False
        when = datetime.datetime.fromtimestamp(date_ms // 1000,
                                               datetime.timezone.utc)
        amz_date = when.strftime("%Y%m%dT%H%M%SZ")
        day = amz_date[:8]
        date_header = encode_date_header(date_ms)
        sts = "\n".join([
            "AWS4-HMAC-SHA256-PAYLOAD", amz_date,
            "%s/%s/transcribe/aws4_request" % (day, ARGS.region),
            self.prior, hashlib.sha256(date_header).hexdigest(),
            hashlib.sha256(payload).hexdigest()])
        key = signing_key(ARGS.secret, day, ARGS.region, "transcribe")
        expect = hmac.new(key, sts.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expect, sig):
            return False
        self.prior = sig.hex()
        return True


def encode_date_header(date_ms):
    name = b":date"
    return struct.pack("B", len(name)) + name + struct.pack(">Bq", 8, date_ms)


# ---- scripted recognition ----

class Channel:
    def __init__(self, index, rate):
        self.index = index
        self.rate = rate
        self.pos = 0            # samples seen
        self.value = 0          # current run's value
        self.run_start = 0
        self.words = []         # (content, start, end) of this sentence
        self.zeros = 0          # zeros since the last word


class Recognizer:
    def __init__(self, stream_index, rate, channels, stable):
        self.stream_index = stream_index
        self.channels = [Channel(i, rate) for i in range(channels)]
        self.rate = rate
        self.stable = stable
        self.sentence = 0
        self.gap = ARGS.sentence_gap_ms * rate // 1000

    def result(self, ch, partial):
        items = []
        for i, (content, start, end) in enumerate(ch.words):
            item = {"StartTime": start, "EndTime": end,
                    "Type": "pronunciation", "Content": content,
                    "VocabularyFilterMatch": False}
            if not partial:
                item["Confidence"] = 0.95
            if self.stable:
                item["Stable"] = (not partial) or i < len(ch.words) - 1
            items.append(item)
        text = " ".join(w[0] for w in ch.words)
        if not partial:
            items.append({"StartTime": ch.words[-1][2],
                          "EndTime": ch.words[-1][2],
                          "Type": "punctuation", "Content": ".",
                          "VocabularyFilterMatch": False,
                          "Confidence": 0.0})
            text += "."
        return {
            "ResultId": "s%d-%d-%d" % (self.stream_index, ch.index,
                                        self.sentence),
            "StartTime": ch.words[0][1], "EndTime": ch.words[-1][2],
            "IsPartial": partial, "ChannelId": "ch_%d" % ch.index,
            "Alternatives": [{"Transcript": text, "Items": items}],
        }

    def end_word(self, ch, out):
        ch.words.append(("w%d" % ch.value, ch.run_start / self.rate,
                         ch.pos / self.rate))
        ch.value = 0
        ch.zeros = 0
        out.append(self.result(ch, True))

    def end_sentence(self, ch, out):
        out.append(self.result(ch, False))
        ch.words = []
        self.sentence += 1

    def feed(self, samples):
        """Interleaved samples in; TranscriptEvent results out."""
        out = []
        n = len(self.channels)
        for i, v in enumerate(samples):
            ch = self.channels[i % n]
            if v != ch.value:
                if ch.value != 0:
                    self.end_word(ch, out)
                if v != 0:
                    ch.value = v
                    ch.run_start = ch.pos
            if v == 0:
                ch.zeros += 1
                if ch.words and ch.zeros == self.gap:
                    self.end_sentence(ch, out)
            ch.pos += 1
        return out

    def finish(self):
        out = []
        for ch in self.channels:
            if ch.value != 0:
                self.end_word(ch, out)
            if ch.words:
                self.end_sentence(ch, out)
        return out


# ---- one stream ----

class Stream:
    def __init__(self, sid, hdrs, index):
        self.sid = sid
        self.index = index
        self.hdrs = hdrs
        self.rate = int(hdrs["x-amzn-transcribe-sample-rate"])
        self.nch = int(hdrs.get("x-amzn-transcribe-number-of-channels", "1"))
        auth = hdrs["authorization"]
        self.chain = Chain(auth.rsplit("Signature=", 1)[1].strip())
        self.rec = Recognizer(index, self.rate, self.nch,
                              "x-amzn-transcribe-partial-results-stability"
                              in hdrs)
        self.buf = bytearray()
        self.frames = 0
        self.audio_frames = 0
        self.chunk_ms = []
        self.ended = None
        self.raw = open(os.path.join(ARGS.dump_dir,
                                     "stream-%d.raw" % index), "wb")
        self.report()

    def audio_ms(self):
        return self.audio_frames * 1000 // self.rate

    def report(self):
        doc = {"index": self.index, "headers": self.hdrs,
               "frames": self.frames, "audio_frames": self.audio_frames,
               "chunk_ms": self.chunk_ms, "ended": self.ended}
        path = os.path.join(ARGS.dump_dir, "stream-%d.json" % self.index)
        with open(path + ".tmp", "w") as f:
            json.dump(doc, f)
        os.replace(path + ".tmp", path)


class Handler:
    def __init__(self, sock):
        self.sock = sock
        self.conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=False,
                                             header_encoding="utf-8"))
        self.streams = {}
        self.drop = False

    def send_event(self, st, results):
        payload = json.dumps({"Transcript": {"Results": results}}).encode()
        msg = encode_message([(":message-type", "event"),
                              (":event-type", "TranscriptEvent"),
                              (":content-type", "application/json")],
                             payload)
        self.conn.send_data(st.sid, msg)

    def send_exception(self, st, name, message):
        msg = encode_message([(":message-type", "exception"),
                              (":exception-type", name),
                              (":content-type", "application/json")],
                             json.dumps({"Message": message}).encode())
        self.conn.send_data(st.sid, msg, end_stream=True)
        self.close_stream(st, "exception " + name)

    def close_stream(self, st, how):
        st.ended = how
        st.report()
        st.raw.close()
        del self.streams[st.sid]

    def on_request(self, ev):
        hdrs = dict(ev.headers)
        bad = check_request(hdrs)
        if bad is not None:
            status, etype, message = bad
            self.conn.send_headers(ev.stream_id, [
                (":status", str(status)),
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amzn-errortype", etype + ":http://internal.amazon.com/"),
                ("x-amzn-requestid", str(uuid.uuid4()))])
            self.conn.send_data(ev.stream_id,
                                json.dumps({"message": message}).encode(),
                                end_stream=True)
            return
        with STREAM_LOCK:
            index = STREAM_COUNT[0]
            STREAM_COUNT[0] += 1
        st = Stream(ev.stream_id, hdrs, index)
        self.streams[ev.stream_id] = st
        self.conn.send_headers(ev.stream_id, [
            (":status", "200"),
            ("content-type", "application/vnd.amazon.eventstream"),
            ("x-amzn-request-id", "req-%d" % index),
            ("x-amzn-transcribe-session-id",
             hdrs.get("x-amzn-transcribe-session-id", str(uuid.uuid4()))),
            ("x-amzn-transcribe-sample-rate", str(st.rate))])

    def on_frame(self, st, headers, raw, payload):
        st.frames += 1
        if not st.chain.verify(headers, payload):
            self.send_exception(st, "InvalidSignatureException",
                                "Invalid chunk signature")
            return
        if not payload:
            results = st.rec.finish()
            if results:
                self.send_event(st, results)
            self.conn.end_stream(st.sid)
            self.close_stream(st, "end")
            return
        buf = bytearray(payload)
        inner = pop_message(buf)
        if inner is None or buf:
            raise CodecError("envelope payload is not one message")
        ih = inner[0]
        if ih.get(":message-type", (0, ""))[1] != "event" or \
                ih.get(":event-type", (0, ""))[1] != "AudioEvent" or \
                ih.get(":content-type", (0, ""))[1] != \
                "application/octet-stream":
            self.send_exception(st, "BadRequestException",
                                "expected an AudioEvent")
            return
        audio = inner[2]
        st.raw.write(audio)
        st.raw.flush()
        frames = len(audio) // (2 * st.nch)
        st.audio_frames += frames
        st.chunk_ms.append(frames * 1000.0 / st.rate)
        samples = struct.unpack("<%dh" % (len(audio) // 2), audio)
        results = st.rec.feed(samples)
        if results:
            self.send_event(st, results)
        st.report()
        if st.index == 0 and ARGS.drop_after_ms and \
                st.audio_ms() >= ARGS.drop_after_ms:
            st.ended = "dropped"
            st.report()
            self.drop = True
        elif st.index == 0 and ARGS.exception and \
                st.audio_ms() >= ARGS.exception_after_ms:
            self.send_exception(st, ARGS.exception, "Injected by the peer")

    def on_data(self, ev):
        self.conn.acknowledge_received_data(ev.flow_controlled_length,
                                            ev.stream_id)
        st = self.streams.get(ev.stream_id)
        if st is None:
            return
        st.buf += ev.data
        while st.sid in self.streams and not self.drop:
            msg = pop_message(st.buf)
            if msg is None:
                break
            self.on_frame(st, *msg)

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
                elif isinstance(ev, h2.events.StreamReset):
                    st = self.streams.get(ev.stream_id)
                    if st is not None:
                        self.close_stream(st, "reset")
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    return
                if self.drop:
                    # What was answered before the drop still arrives, as
                    # a service's results before a connection loss do.
                    self.sock.sendall(self.conn.data_to_send())
                    self.sock.shutdown(socket.SHUT_RDWR)
                    return
            out = self.conn.data_to_send()
            if out:
                self.sock.sendall(out)


def serve(sock):
    try:
        Handler(sock).run()
    except (OSError, CodecError, h2.exceptions.ProtocolError) as e:
        print("transcribepeer: %s" % e, file=sys.stderr, flush=True)
    finally:
        sock.close()


def exit_on_stdin_eof():
    while sys.stdin.buffer.read(4096):
        pass
    os._exit(0)


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--access-key", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--dump-dir", required=True)
    parser.add_argument("--sentence-gap-ms", type=int, default=300)
    parser.add_argument("--drop-after-ms", type=int, default=0)
    parser.add_argument("--exception")
    parser.add_argument("--exception-after-ms", type=int, default=0)
    parser.add_argument("--lifetime", type=float, default=120.0)
    ARGS = parser.parse_args()

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
        threading.Thread(target=serve, args=(sock,), daemon=True).start()


if __name__ == "__main__":
    main()
