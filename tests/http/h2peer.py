#!/usr/bin/python3
"""HTTP/2 test peer for tests/http (Debian's python3-h2).

Listens on 127.0.0.1 on a free port, prints the port on stdout, and serves
h2c with prior knowledge (or TLS with ALPN h2 when --cert/--key are given).
It exits when its stdin closes (the test process ended) or after --lifetime
seconds, so a crashed test never leaves it running.

Paths:
  /echo           200 at once; every request DATA frame is echoed back as a
                  response DATA frame as soon as it arrives; END_STREAM is
                  echoed too. Response headers: content-type
                  application/x-echo, x-method (the :method), x-test (the
                  request's x-test header).
  /sink           reads the whole request body, then answers
                  "<byte count> <sha256 hex>".
  /source?bytes=N answers N bytes, byte i = i % 251.
  /reset          200, then RST_STREAM ENHANCE_YOUR_CALM on the first DATA.
  /drop           200, then closes the TCP connection on the first DATA.
  /stall          200, then never sends anything more.
  /goaway         GOAWAY INTERNAL_ERROR (last stream 0), then closes.
The peer keeps its receive window at the protocol default (64 KiB) and only
reopens it as it consumes data, so large uploads need WINDOW_UPDATE.
"""

import argparse
import hashlib
import os
import socket
import ssl
import sys
import threading
import urllib.parse

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions


class Stream:
    def __init__(self, path, headers):
        self.path = path
        self.headers = headers
        self.pending = bytearray()
        self.end_pending = False
        self.count = 0
        self.sha = hashlib.sha256()


def pattern(n):
    block = bytes(i % 251 for i in range(251))
    reps = n // 251 + 1
    return (block * reps)[:n]


class Handler:
    def __init__(self, sock):
        self.sock = sock
        self.conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=False,
                                             header_encoding="utf-8"))
        self.streams = {}
        self.drop = False
        self.goaway = False

    def send_pending(self):
        for sid, st in list(self.streams.items()):
            while st.pending:
                try:
                    window = self.conn.local_flow_control_window(sid)
                except h2.exceptions.StreamClosedError:
                    st.pending.clear()
                    break
                n = min(window, self.conn.max_outbound_frame_size,
                        len(st.pending))
                if n <= 0:
                    break
                self.conn.send_data(sid, bytes(st.pending[:n]))
                del st.pending[:n]
            if st.end_pending and not st.pending:
                st.end_pending = False
                self.conn.end_stream(sid)

    def respond(self, sid, headers):
        self.conn.send_headers(sid, [(":status", "200")] + headers)

    def on_request(self, ev):
        hdrs = dict(ev.headers)
        url = urllib.parse.urlsplit(hdrs.get(":path", "/"))
        st = Stream(url.path, hdrs)
        self.streams[ev.stream_id] = st
        if url.path == "/echo":
            self.respond(ev.stream_id, [
                ("content-type", "application/x-echo"),
                ("x-method", hdrs.get(":method", "")),
                ("x-test", hdrs.get("x-test", "")),
            ])
        elif url.path == "/source":
            query = urllib.parse.parse_qs(url.query)
            n = int(query.get("bytes", ["0"])[0])
            self.respond(ev.stream_id, [
                ("content-type", "application/octet-stream"),
                ("content-length", str(n)),
            ])
            st.pending += pattern(n)
            st.end_pending = True
        elif url.path in ("/reset", "/drop", "/stall"):
            self.respond(ev.stream_id, [("content-type", "text/plain")])
        elif url.path == "/goaway":
            self.conn.close_connection(
                error_code=h2.errors.ErrorCodes.INTERNAL_ERROR,
                last_stream_id=0)
            self.goaway = True
        elif url.path != "/sink":
            self.conn.send_headers(ev.stream_id, [(":status", "404")],
                                   end_stream=True)

    def on_data(self, ev):
        st = self.streams.get(ev.stream_id)
        self.conn.acknowledge_received_data(ev.flow_controlled_length,
                                            ev.stream_id)
        if st is None:
            return
        if st.path == "/echo":
            st.pending += ev.data
        elif st.path == "/sink":
            st.count += len(ev.data)
            st.sha.update(ev.data)
        elif st.path == "/reset":
            self.conn.reset_stream(ev.stream_id,
                                   h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
            del self.streams[ev.stream_id]
        elif st.path == "/drop":
            self.drop = True

    def on_end(self, ev):
        st = self.streams.get(ev.stream_id)
        if st is None:
            return
        if st.path == "/echo":
            st.end_pending = True
        elif st.path == "/sink":
            body = ("%d %s" % (st.count, st.sha.hexdigest())).encode()
            self.respond(ev.stream_id, [("content-type", "text/plain")])
            st.pending += body
            st.end_pending = True

    def on_event(self, ev):
        if isinstance(ev, h2.events.RequestReceived):
            self.on_request(ev)
        elif isinstance(ev, h2.events.DataReceived):
            self.on_data(ev)
        elif isinstance(ev, h2.events.StreamEnded):
            self.on_end(ev)
        elif isinstance(ev, h2.events.StreamReset):
            self.streams.pop(ev.stream_id, None)

    def run(self):
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())
        while True:
            data = self.sock.recv(65536)
            if not data:
                return
            for ev in self.conn.receive_data(data):
                if isinstance(ev, h2.events.ConnectionTerminated):
                    self.sock.sendall(self.conn.data_to_send())
                    return
                try:
                    self.on_event(ev)
                except (h2.exceptions.StreamClosedError,
                        h2.exceptions.StreamIDTooLowError):
                    # The client reset the stream in the same read as
                    # the event (a request cancelled at once): nothing
                    # to answer.
                    self.streams.pop(ev.stream_id, None)
            if self.drop or self.goaway:
                self.sock.sendall(self.conn.data_to_send())
                self.sock.shutdown(socket.SHUT_RDWR)
                return
            self.send_pending()
            out = self.conn.data_to_send()
            if out:
                self.sock.sendall(out)


def serve(sock, tls_ctx):
    try:
        if tls_ctx is not None:
            sock = tls_ctx.wrap_socket(sock, server_side=True)
        Handler(sock).run()
    except (OSError, ssl.SSLError, h2.exceptions.ProtocolError):
        pass
    finally:
        sock.close()


def exit_on_stdin_eof():
    while sys.stdin.buffer.read(4096):
        pass
    os._exit(0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--lifetime", type=float, default=120.0)
    args = parser.parse_args()

    tls_ctx = None
    if args.cert:
        tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls_ctx.load_cert_chain(args.cert, args.key)
        tls_ctx.set_alpn_protocols(["h2"])

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print(listener.getsockname()[1], flush=True)

    threading.Thread(target=exit_on_stdin_eof, daemon=True).start()
    timer = threading.Timer(args.lifetime, lambda: os._exit(1))
    timer.daemon = True
    timer.start()
    while True:
        sock, _ = listener.accept()
        threading.Thread(target=serve, args=(sock, tls_ctx),
                         daemon=True).start()


if __name__ == "__main__":
    main()
