#!/usr/bin/python3
"""A local Kinesis Video Streams GetMedia peer for the kvssrc tests.

Serves POST /getDataEndpoint and POST /getMedia on 127.0.0.1 (port chosen
by the system, printed on stdout) from a fixture: an MKV file of
concatenated GetMedia fragments plus an index (one line per fragment, tab
separated: number, continuation token, producer ms, server ms, duration
ms, byte offset, byte length).

The stream is "live": fragment i is produced over its span of stream time
(the durations before it), stream time running --speed times faster than
the wall clock from --live-offset-ms at start-up, or, with
--live-from-request, at the first request (a call whose media starts as
its Lambda runs, however long the consumer took to start). Bytes go out
as they are produced, so EARLIEST bursts what exists and then follows the
producer.
StartSelector: NOW (the fragment being produced), EARLIEST,
FRAGMENT_NUMBER (after AfterFragmentNumber), PRODUCER_/SERVER_TIMESTAMP
(the fragment holding StartTimestamp), CONTINUATION_TOKEN (after the
fragment that carried the token, as KVS resumes).

Faults: --drop-after N closes the connection after N body bytes (each
value applies to one GetMedia response, in order); --end-after N ends the
response cleanly after N bytes (a session running out); --error
OP=Exception[:COUNT] answers the first COUNT calls of OP with that
exception; --hold S keeps a response open S seconds after the last
fragment, sending nothing (a stream that stopped producing); with
--stream-arn ARN, requests naming any other stream (or a StreamName) are
answered ResourceNotFoundException, as KVS answers for a stream that does
not exist.

Every request must carry a SigV4 Authorization header (service
kinesisvideo) signed with --access-key/--secret-key, checked in full;
otherwise the answer is 403 InvalidSignatureException. Each request is
appended to --log as a JSON line. Exits when stdin closes.
"""
import argparse
import hashlib
import hmac
import json
import os
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATUS = {
    "ResourceNotFoundException": 404,
    "NotAuthorizedException": 401,
    "InvalidSignatureException": 403,
}


class Fragment:
    def __init__(self, fields, data, start_ms):
        self.number = fields[0]
        self.token = fields[1]
        self.producer_ms = int(fields[2])
        self.server_ms = int(fields[3])
        self.duration_ms = int(fields[4])
        self.data = data
        self.start_ms = start_ms


def load_fixture(path, index):
    with open(path, "rb") as f:
        blob = f.read()
    fragments = []
    start = 0
    with open(index) as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            off, length = int(fields[5]), int(fields[6])
            fragments.append(Fragment(fields, blob[off:off + length], start))
            start += int(fields[4])
    return fragments


def sigv4_check(handler, body, args):
    """Returns None when the request is signed as the SDKs sign it."""
    auth = handler.headers.get("Authorization", "")
    date = handler.headers.get("X-Amz-Date", "")
    prefix = "AWS4-HMAC-SHA256 "
    if not auth.startswith(prefix) or not date:
        return "missing or malformed Authorization / X-Amz-Date"
    parts = {}
    for item in auth[len(prefix):].split(","):
        key, _, value = item.strip().partition("=")
        parts[key] = value
    try:
        key_id, day, region, service, term = parts["Credential"].split("/")
        signed = parts["SignedHeaders"].split(";")
        signature = parts["Signature"]
    except (KeyError, ValueError):
        return "malformed Authorization"
    if (key_id != args.access_key or region != args.region
            or service != "kinesisvideo" or term != "aws4_request"
            or day != date[:8] or "host" not in signed
            or "x-amz-date" not in signed):
        return "wrong credential scope or signed headers"
    canonical_headers = ""
    for name in signed:
        value = handler.headers.get(name)
        if value is None:
            return "signed header %s not sent" % name
        canonical_headers += "%s:%s\n" % (name, " ".join(value.split()))
    path = urllib.parse.quote(urllib.parse.quote(handler.path, safe="/~"),
                              safe="/~")
    canonical = "\n".join([handler.command, path, "", canonical_headers,
                           ";".join(signed),
                           hashlib.sha256(body).hexdigest()])
    scope = "/".join([day, region, service, term])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + args.secret_key).encode()
    for part in (day, region, service, term):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return "signature mismatch"
    return None


class Peer:
    def __init__(self, args):
        self.args = args
        self.fragments = load_fixture(args.fixture, args.index)
        self.t0 = None if args.live_from_request else time.monotonic()
        self.lock = threading.Lock()
        self.errors = {}
        for spec in args.error:
            op, _, rest = spec.partition("=")
            name, _, count = rest.partition(":")
            self.errors[op] = [name, int(count or 1)]
        self.drops = list(args.drop_after)
        self.ends = list(args.end_after)
        self.log = open(args.log, "a") if args.log else None

    def start_clock(self):
        with self.lock:
            if self.t0 is None:
                self.t0 = time.monotonic()

    def stream_ms(self):
        return (self.args.live_offset_ms
                + (time.monotonic() - self.t0) * 1000.0 * self.args.speed)

    def sleep_until(self, stream_ms):
        wait = (stream_ms - self.stream_ms()) / 1000.0 / self.args.speed
        if wait > 0:
            time.sleep(wait)

    def take_error(self, op):
        with self.lock:
            entry = self.errors.get(op)
            if entry and entry[1] > 0:
                entry[1] -= 1
                return entry[0]
        return None

    def take_limits(self):
        with self.lock:
            drop = self.drops.pop(0) if self.drops else None
            end = self.ends.pop(0) if self.ends else None
        return drop, end

    def record(self, entry):
        if self.log:
            with self.lock:
                self.log.write(json.dumps(entry) + "\n")
                self.log.flush()

    def first_index(self, selector):
        kind = selector.get("StartSelectorType")
        frags = self.fragments
        if kind == "EARLIEST":
            return 0
        if kind == "NOW":
            now = self.stream_ms()
            for i, f in enumerate(frags):
                if f.start_ms + f.duration_ms > now:
                    return i
            return len(frags)
        if kind == "FRAGMENT_NUMBER":
            after = selector.get("AfterFragmentNumber")
            for i, f in enumerate(frags):
                if f.number == after:
                    return i + 1
            return None
        if kind == "CONTINUATION_TOKEN":
            token = selector.get("ContinuationToken")
            for i, f in enumerate(frags):
                if f.token == token:
                    return i + 1
            return None
        if kind in ("PRODUCER_TIMESTAMP", "SERVER_TIMESTAMP"):
            ms = round(float(selector["StartTimestamp"]) * 1000)
            first = 0
            for i, f in enumerate(frags):
                ts = f.producer_ms if kind == "PRODUCER_TIMESTAMP" \
                    else f.server_ms
                if ts <= ms:
                    first = i
            return first
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    peer = None

    def log_message(self, fmt, *args):
        pass

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass

    def send_json(self, status, obj, headers=()):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def send_exception(self, name, message, in_body=False):
        headers = [] if in_body else [
            ("x-amzn-ErrorType",
             name + ":http://internal.amazon.com/coral/"
             "com.amazonaws.kinesis.video.v20170930/")]
        body = {"message": message}
        if in_body:
            body["__type"] = name
        self.send_json(STATUS.get(name, 400), body, headers)

    def do_POST(self):
        peer = self.peer
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        problem = sigv4_check(self, body, peer.args)
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            request = None
        peer.record({"path": self.path, "request": request,
                     "auth": problem or "ok"})
        if problem:
            self.send_exception("InvalidSignatureException", problem)
            return
        peer.start_clock()
        if request is None or not (request.get("StreamARN")
                                   or request.get("StreamName")):
            self.send_exception("InvalidArgumentException",
                                "StreamARN or StreamName required")
            return
        if (peer.args.stream_arn
                and request.get("StreamARN") != peer.args.stream_arn):
            self.send_exception("ResourceNotFoundException",
                                "The requested stream is not found or not "
                                "active.")
            return
        op = self.path.lstrip("/")
        error = peer.take_error(op)
        if error:
            self.send_exception(error, "injected by the test peer",
                                in_body=(op == "getDataEndpoint"))
            return
        if op == "getDataEndpoint":
            if request.get("APIName") != "GET_MEDIA":
                self.send_exception("InvalidArgumentException", "APIName")
                return
            host, port = self.server.server_address[:2]
            self.send_json(200, {"DataEndpoint": "http://%s:%d" % (host,
                                                                   port)})
        elif op == "getMedia":
            self.get_media(request.get("StartSelector") or {})
        else:
            self.send_json(404, {"message": "no route " + self.path})

    def get_media(self, selector):
        peer = self.peer
        first = peer.first_index(selector)
        if first is None:
            self.send_exception("InvalidArgumentException",
                                "bad StartSelector %s" % json.dumps(selector))
            return
        drop, end = peer.take_limits()
        self.send_response(200)
        self.send_header("Content-Type", "video/webm")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent = 0
        limit = min(x for x in (drop, end, float("inf")) if x is not None)
        try:
            for f in peer.fragments[first:]:
                pos = 0
                while pos < len(f.data):
                    n = min(512, len(f.data) - pos)
                    peer.sleep_until(f.start_ms
                                     + f.duration_ms * (pos + n) / len(f.data))
                    n = int(min(n, limit - sent))
                    if n > 0:
                        self.wfile.write(b"%x\r\n" % n + f.data[pos:pos + n]
                                         + b"\r\n")
                        pos += n
                        sent += n
                    if sent >= limit:
                        return self.cut(drop is not None and sent >= drop)
            if peer.args.hold > 0:
                time.sleep(peer.args.hold)
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def cut(self, drop):
        self.close_connection = True
        if drop:
            self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self.wfile.write(b"0\r\n\r\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--fixture", required=True)
    parser.add_argument("--index", required=True)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--live-offset-ms", type=float, default=0.0)
    parser.add_argument("--live-from-request", action="store_true")
    parser.add_argument("--stream-arn")
    parser.add_argument("--drop-after", type=int, action="append", default=[])
    parser.add_argument("--end-after", type=int, action="append", default=[])
    parser.add_argument("--error", action="append", default=[])
    parser.add_argument("--hold", type=float, default=0.0)
    parser.add_argument("--access-key", default="AKIDEXAMPLE")
    parser.add_argument("--secret-key", default="peer-secret")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--log")
    args = parser.parse_args()

    Handler.peer = Peer(args)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()
    os._exit(0)


if __name__ == "__main__":
    main()
