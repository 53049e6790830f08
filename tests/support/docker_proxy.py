#!/usr/bin/env python3
"""A counting proxy between the agent and dockerd, on a second unix socket.

    docker_proxy.py LISTEN_SOCKET LOG_FILE [UPSTREAM_SOCKET] [--timestamps]

Every HTTP request that passes is appended to LOG_FILE as one line "METHOD PATH" (with
--timestamps "UNIX_TIME METHOD PATH", the time its head arrived), flushed at once, so a test can count the mutating calls (POST, PUT, DELETE) the agent sent. Responses,
streams included, are forwarded byte for byte. Requests are parsed only as far as needed to
find where one ends (Content-Length or chunked body)."""

import os
import socket
import sys
import threading
import time

UPSTREAM = "/var/run/docker.sock"
MAX_HEADER = 64 * 1024


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (dst,):
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass


class Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def until(self, marker):
        while marker not in self.buf:
            if len(self.buf) > MAX_HEADER:
                raise ValueError("header too long")
            self.fill()
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def exactly(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def handle(client, log, lock, upstream_path, stamps=False):
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(upstream_path)
    except OSError:
        client.close()
        return
    threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
    reader = Reader(client)
    try:
        while True:
            head = reader.until(b"\r\n\r\n")
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            method, path = (line.split(" ") + ["", ""])[:2]
            with lock:
                log.write(f"{time.time():.6f} {method} {path}\n" if stamps else
                          f"{method} {path}\n")
                log.flush()
            upstream.sendall(head)
            headers = {}
            for h in head.split(b"\r\n")[1:]:
                if b":" in h:
                    k, v = h.split(b":", 1)
                    headers[k.strip().lower()] = v.strip()
            if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
                while True:
                    size_line = reader.until(b"\r\n")
                    upstream.sendall(size_line)
                    size = int(size_line.split(b";")[0].strip(), 16)
                    upstream.sendall(reader.exactly(size + 2))
                    if size == 0:
                        break
            else:
                n = int(headers.get(b"content-length", b"0"))
                if n:
                    upstream.sendall(reader.exactly(n))
    except (EOFError, OSError, ValueError):
        pass
    finally:
        try:
            upstream.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def main():
    args = [a for a in sys.argv[1:] if a != "--timestamps"]
    stamps = len(args) != len(sys.argv) - 1
    listen_path, log_path = args[0], args[1]
    upstream_path = args[2] if len(args) > 2 else UPSTREAM
    try:
        os.unlink(listen_path)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(listen_path)
    srv.listen(64)
    log = open(log_path, "a", encoding="utf-8")
    lock = threading.Lock()
    while True:
        client, _ = srv.accept()
        threading.Thread(target=handle, args=(client, log, lock, upstream_path, stamps),
                         daemon=True).start()


if __name__ == "__main__":
    main()
