#!/usr/bin/env python3
"""Local S3 for the s3sink/s3src tests and benchmark: moto's S3 on
127.0.0.1 behind a fault-injecting proxy, both on ports picked at run time.

Prints one line "<moto port> <proxy port>" when ready; exits when stdin
closes (so the test's death ends it too).

Every request to the proxy is logged; the proxy can delay every request
(--latency-ms, the benchmark's WAN round trip) and apply fault rules set
through its control paths:

  POST /__faults  JSON list of rules, replacing the current ones:
      {"method": "PUT", "query": {"partNumber": "2"},
       "status": 500, "code": "InternalError", "times": 2,
       "delay_ms": 0}
    A request matches when the method and every query item match ("*"
    matches any value). The
    rule then answers "status" with an S3 error body naming "code"
    (without forwarding), or, with no "status", waits "delay_ms" and
    forwards. "times" bounds how often the rule fires (-1: always).
  GET  /__log     JSON list of {"method", "path", "query", "status"}

With --discard (the benchmark), uploads are answered by the proxy itself,
with correct ETags but the data dropped, so that the local endpoint's CPU
cost (moto is Python) does not hide what latency costs. The ETag is the
request's Content-MD5 when it has one (s3sink sends it with every part and
checks the ETag against its own MD5), so the peer does not hash the data a
second time on the same CPU; without one, the peer hashes.
  POST /__reset   clears the rules and the log
"""

import argparse
import base64
import binascii
import hashlib
import http.client
import http.server
import json
import logging
import sys
import threading
import time
import urllib.parse

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te",
              "trailer", "upgrade", "proxy-connection", "content-length",
              "server", "date"}


class State:
    def __init__(self, upstream_port, latency_ms, discard):
        self.upstream_port = upstream_port
        self.latency_ms = latency_ms
        self.discard = discard
        self.uploads = {}
        self.lock = threading.Lock()
        self.rules = []
        self.log = []

    def match(self, method, query):
        with self.lock:
            for rule in self.rules:
                if rule.get("times", -1) == 0:
                    continue
                if rule.get("method", method) != method:
                    continue
                if any(k not in query or (v != "*" and query[k] != [v])
                       for k, v in rule.get("query", {}).items()):
                    continue
                if rule.get("times", -1) > 0:
                    rule["times"] -= 1
                return dict(rule)
        return None


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, status, body=b"", headers=(), head=False):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _control(self, body):
        state = self.server.state
        if self.path == "/__faults" and self.command == "POST":
            with state.lock:
                state.rules = json.loads(body or b"[]")
            self._reply(204)
        elif self.path == "/__reset" and self.command == "POST":
            with state.lock:
                state.rules = []
                state.log = []
            self._reply(204)
        elif self.path == "/__log" and self.command == "GET":
            with state.lock:
                data = json.dumps(state.log).encode()
            self._reply(200, data, [("Content-Type", "application/json")])
        else:
            self._reply(404)

    def _handle(self):
        state = self.server.state
        body = self._body()
        if self.path.startswith("/__"):
            self._control(body)
            return
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        entry = {"method": self.command, "path": url.path,
                 "query": url.query, "status": 0}
        if state.latency_ms:
            time.sleep(state.latency_ms / 1000.0)
        rule = state.match(self.command, query)
        if rule and rule.get("delay_ms"):
            time.sleep(rule["delay_ms"] / 1000.0)
        if rule and rule.get("status"):
            code = rule.get("code", "InternalError")
            xml = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>"
                   f"<Code>{code}</Code><Message>Injected by s3peer"
                   "</Message></Error>").encode()
            entry["status"] = rule["status"]
            with state.lock:
                state.log.append(entry)
            self._reply(rule["status"], xml,
                        [("Content-Type", "application/xml")],
                        head=self.command == "HEAD")
            return
        if state.discard and self.command in ("PUT", "POST"):
            self._discard(url, query, body, entry)
            return
        conn = http.client.HTTPConnection("127.0.0.1", state.upstream_port,
                                          timeout=120)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in HOP_BY_HOP}
        headers["Content-Length"] = str(len(body))
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        entry["status"] = resp.status
        with state.lock:
            state.log.append(entry)
        out = [(k, v) for k, v in resp.getheaders()
               if k.lower() not in HOP_BY_HOP]
        if self.command == "HEAD":
            length = resp.getheader("Content-Length", "0")
            self.send_response(resp.status)
            for name, value in out:
                self.send_header(name, value)
            self.send_header("Content-Length", length)
            self.end_headers()
        else:
            self._reply(resp.status, data, out)

    def _body_md5(self, body):
        """The body's MD5, taken from Content-MD5 when the client sent
        one: a real S3 checks it, this peer trusts it to stay cheap."""
        sent = self.headers.get("Content-MD5")
        if sent:
            try:
                digest = base64.b64decode(sent, validate=True)
                if len(digest) == 16:
                    return digest
            except binascii.Error:
                pass
        return hashlib.md5(body).digest()

    def _discard(self, url, query, body, entry):
        """Answers uploads itself, keeping only MD5s: an endpoint whose
        cost is the added latency alone (the benchmark's)."""
        state = self.server.state
        xml = b""
        headers = []
        if "uploads" in query:
            upload_id = f"u{len(state.uploads) + 1}"
            with state.lock:
                state.uploads[upload_id] = {}
            xml = (f"<InitiateMultipartUploadResult><UploadId>{upload_id}"
                   "</UploadId></InitiateMultipartUploadResult>").encode()
        elif "partNumber" in query:
            digest = self._body_md5(body)
            with state.lock:
                state.uploads[query["uploadId"][0]][
                    int(query["partNumber"][0])] = digest
            headers.append(("ETag", f'"{digest.hex()}"'))
        elif "uploadId" in query:
            with state.lock:
                parts = state.uploads.pop(query["uploadId"][0])
            md5s = b"".join(parts[n] for n in sorted(parts))
            etag = f"&quot;{hashlib.md5(md5s).hexdigest()}-{len(parts)}&quot;"
            xml = (f"<CompleteMultipartUploadResult><ETag>{etag}</ETag>"
                   "</CompleteMultipartUploadResult>").encode()
        else:
            headers.append(("ETag", f'"{self._body_md5(body).hex()}"'))
        entry["status"] = 200
        with state.lock:
            state.log.append(entry)
        self._reply(200, xml, headers)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-ms", type=int, default=0,
                        help="delay added to every proxied request")
    parser.add_argument("--discard", action="store_true",
                        help="answer uploads without storing the data")
    args = parser.parse_args()

    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        print("SKIP moto is not installed", flush=True)
        return 0

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    moto_port = moto.get_host_and_port()[1]

    # The default listen backlog (5) drops connections beyond it, and a
    # dropped SYN costs a 1 s retransmission: more than 8 parts in flight.
    http.server.ThreadingHTTPServer.request_queue_size = 128
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    server.daemon_threads = True
    server.state = State(moto_port, args.latency_ms, args.discard)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    print(f"{moto_port} {server.server_address[1]}", flush=True)
    sys.stdin.read()
    server.shutdown()
    moto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
