"""An open-loop, constant-rate HTTP load generator for POST /v1/score, meant to run in its own process.

Usage: .venv/bin/python benchmarks/loadgen.py --port P --rate R --duration S --texts FILE --prefix X --out OUT.json
Request i is due at start + i / rate, whatever happened to the earlier ones (open loop: a slow server does not slow
the arrivals); it goes out on an idle keep-alive connection, or a new one (up to --connections), else waits for
the first connection that frees up. Latency is counted from the due time, so any lag of this client counts
against the server, never for it; the report says how far sending lagged (offered vs achieved rate, p99 lag).
Each request is one ticket with a unique id `<prefix>-<i>`; the ids answered 200 and those routed to review are
written out, for checking the review outbox afterwards. A minimal HTTP/1.1 client on uvloop protocols: on two
shared cores asyncio streams and json per request could not offer twice the server's rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

import numpy as np


class _Conn(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self, gen: LoadGen) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.current: int | None = None  # request index in flight
        self.sent_at = 0.0
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio's classes
        self.gen.conns.add(self)

    def send(self, i: int) -> None:
        assert self.transport is not None
        self.current = i
        self.sent_at = time.perf_counter()
        self.gen.sent_at[i] = self.sent_at
        self.transport.write(self.gen.requests[i])

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while self.current is not None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).split(b"\r\n")
            length = 0
            for line in head[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if len(self.buf) < end + 4 + length:
                return
            body = bytes(self.buf[end + 4:end + 4 + length])
            del self.buf[:end + 4 + length]
            i, self.current = self.current, None
            self.gen.answered(self, i, int(head[0].split()[1]), body)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.gen.conns.discard(self)
        self.gen.open -= 1
        if self.current is not None:
            i, self.current = self.current, None
            self.gen.failed(self, i, "connection_lost")


class LoadGen:
    """Sends `len(requests)` requests at `rate` per second over at most `connections` connections."""

    def __init__(self, port: int, requests: list[bytes], ids: list[str], rate: float, connections: int,
                 timeout_s: float) -> None:
        self.port, self.requests, self.ids, self.rate = port, requests, ids, rate
        self.max_connections, self.timeout_s = connections, timeout_s
        self.idle: deque[_Conn] = deque()
        self.conns: set[_Conn] = set()
        self.open = 0
        self.opened = 0
        self.backlog: deque[int] = deque()
        self.due = [0.0] * len(requests)
        self.sent_at = [0.0] * len(requests)
        self.statuses: Counter[str] = Counter()
        self.latency_ms: list[float] = []
        self.answered_ids: list[str] = []
        self.review_ids: list[str] = []
        self.refused_ids: dict[str, str] = {}  # id -> status, for the answers other than 200
        self.outstanding = len(requests)
        self.done = asyncio.Event()
        self.connect_errors = 0

    async def run(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        start = time.perf_counter() + 0.05
        self.due = [start + i / self.rate for i in range(len(self.requests))]
        reaper = loop.create_task(self._reap())
        i = 0
        while i < len(self.requests):
            now = time.perf_counter()
            while i < len(self.requests) and self.due[i] <= now:
                self._dispatch(i)
                i += 1
            await asyncio.sleep(min(0.001, max(0.0, self.due[i] - now)) if i < len(self.requests) else 0)
        sending_ended = time.perf_counter()
        await self.done.wait()
        reaper.cancel()
        finished = time.perf_counter()
        sent = [t for t in self.sent_at if t > 0]
        lag = np.array([s - d for s, d in zip(self.sent_at, self.due, strict=True) if s > 0]) * 1000
        lat = np.array(self.latency_ms) if self.latency_ms else np.array([float("nan")])
        span = (max(sent) - min(sent)) if len(sent) > 1 else float("nan")
        return {
            "offered_per_s": self.rate, "scheduled": len(self.requests), "sent": len(sent),
            "achieved_send_per_s": (len(sent) - 1) / span if len(sent) > 1 else 0.0,
            "send_lag_p50_ms": float(np.percentile(lag, 50)) if len(lag) else None,
            "send_lag_p99_ms": float(np.percentile(lag, 99)) if len(lag) else None,
            "seconds_sending": sending_ended - start, "seconds_total": finished - start,
            "statuses": dict(self.statuses), "answered_per_s": len(self.latency_ms) / (sending_ended - start),
            "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
            "max_ms": float(np.max(lat)), "connections_opened": self.opened,
            "connect_errors": self.connect_errors,
            "answered_ids": self.answered_ids, "review_ids": self.review_ids, "refused_ids": self.refused_ids,
        }

    def _dispatch(self, i: int) -> None:
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed:
                conn.send(i)
                return
        if self.open < self.max_connections:
            self.open += 1
            asyncio.get_running_loop().create_task(self._connect(i))
        else:
            self.backlog.append(i)  # sent when a connection frees; its latency still counts from its due time

    async def _connect(self, i: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(lambda: _Conn(self), "127.0.0.1", self.port)
        except OSError:
            self.open -= 1
            self.connect_errors += 1
            self._finish(i, "connect_error")
            return
        self.opened += 1
        conn.send(i)

    def _release(self, conn: _Conn) -> None:
        if conn.closed:
            return
        if self.backlog:
            conn.send(self.backlog.popleft())
        else:
            self.idle.append(conn)

    def answered(self, conn: _Conn, i: int, status: int, body: bytes) -> None:
        if status == 200:
            self.latency_ms.append((time.perf_counter() - self.due[i]) * 1000)
            result = json.loads(body)["results"][0]
            self.answered_ids.append(result["id"])
            if result["route"] == "review":
                self.review_ids.append(result["id"])
        else:
            self.refused_ids[self.ids[i]] = str(status)
        self._finish(i, str(status))
        self._release(conn)

    def failed(self, conn: _Conn, i: int, why: str) -> None:
        self._finish(i, why)

    def _finish(self, i: int, status: str) -> None:
        self.statuses[status] += 1
        self.outstanding -= 1
        if self.outstanding == 0:
            self.done.set()

    async def _reap(self) -> None:
        """Requests in flight longer than the client timeout: counted as timeouts, their connection closed."""
        while True:
            await asyncio.sleep(0.25)
            now = time.perf_counter()
            for conn in list(self.conns):
                if conn.current is not None and now - conn.sent_at > self.timeout_s:
                    i, conn.current = conn.current, None
                    self._finish(i, "client_timeout")
                    if conn.transport is not None:
                        conn.transport.close()
            while self.backlog and now - self.due[self.backlog[0]] > self.timeout_s:
                self._finish(self.backlog.popleft(), "client_timeout")


def build_requests(texts: list[str], prefix: str, n: int) -> tuple[list[bytes], list[str]]:
    """`n` single-ticket requests with unique ids, texts in turn."""
    out, ids = [], []
    for i in range(n):
        tid = f"{prefix}-{i}"
        body = json.dumps({"tickets": [{"id": tid, "text": texts[i % len(texts)]}]}).encode()
        out.append(b"POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        ids.append(tid)
    return out, ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True, help="requests per second offered")
    parser.add_argument("--duration", type=float, required=True, help="seconds of arrivals")
    parser.add_argument("--texts", type=Path, required=True, help="JSON list of ticket texts")
    parser.add_argument("--prefix", default="lg")
    parser.add_argument("--connections", type=int, default=1024)
    parser.add_argument("--timeout", type=float, default=10.0, help="client timeout per request, seconds")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    texts = json.loads(args.texts.read_text())
    requests, ids = build_requests(texts, args.prefix, int(args.rate * args.duration))
    gen = LoadGen(args.port, requests, ids, args.rate, args.connections, args.timeout)
    import uvloop

    result = uvloop.run(gen.run())
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
