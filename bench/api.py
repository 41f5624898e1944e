"""HTTP bench: POST /v1/eligibility and GET /healthz on loopback, 50 concurrent clients.

Starts `yagu serve` itself (temporary SQLite), then for each endpoint runs closed-loop
clients (each sends its next request when the last answer arrives) for --seconds, and
reports requests/second, p50 and p99 latency, and the CPU the client process used (it
shares the machine's cores with the server). --rate adds an open-loop run at a fixed
arrival rate, the way latency targets are usually stated.

    .venv/bin/python bench/api.py --seconds 30 --workers 2 [--rate 500]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.schemas import EXAMPLE_PROFILE  # noqa: E402
from api.testing import LiveServer  # noqa: E402


def _request(method: str, path: str, body: bytes | None) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + (body or b"")


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def _client(port, raw, deadline, lat, errors, pacer=None):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            if pacer is not None:
                t0 = await pacer.get()  # scheduled send time (open loop)
                if t0 is None:
                    return
            else:
                t0 = time.perf_counter()
                if t0 >= deadline:
                    return
            writer.write(raw)
            status = await _read_response(reader)
            lat.append(time.perf_counter() - t0)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


async def _pace(q: asyncio.Queue, rate: float, seconds: float, clients: int):
    start = time.perf_counter()
    n = int(rate * seconds)
    for i in range(n):
        t = start + i / rate
        delay = t - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        q.put_nowait(t)
    for _ in range(clients):
        q.put_nowait(None)


async def run(port, raw, seconds, clients, rate=None):
    lat, errors = [], []
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    if rate:
        q: asyncio.Queue = asyncio.Queue()
        tasks = [_client(port, raw, None, lat, errors, q) for _ in range(clients)]
        await asyncio.gather(_pace(q, rate, seconds, clients), *tasks)
    else:
        deadline = t0 + seconds
        await asyncio.gather(*[_client(port, raw, deadline, lat, errors) for _ in range(clients)])
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    lat.sort()
    pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")
    return {"requests": len(lat), "errors": len(errors), "rps": len(lat) / wall,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "client_cpu_pct": 100 * cpu / wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--rate", type=float, default=None, help="also run open-loop at this many req/s")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()

    body = json.dumps({"profile": EXAMPLE_PROFILE, "as_of": "2026-03-31"}, ensure_ascii=False).encode()
    cases = [("GET /healthz", _request("GET", "/healthz", None)),
             ("POST /v1/eligibility", _request("POST", "/v1/eligibility", body))]
    results = {}
    with tempfile.TemporaryDirectory() as tmp, \
            LiveServer(f"sqlite:///{tmp}/bench.db", workers=args.workers) as srv:
        for name, raw in cases:
            asyncio.run(run(srv.port, raw, 2, args.clients))  # warm-up
            results[f"{name} closed-loop"] = asyncio.run(run(srv.port, raw, args.seconds, args.clients))
            if args.rate:
                results[f"{name} open-loop {args.rate:g}/s"] = asyncio.run(
                    run(srv.port, raw, args.seconds, args.clients, args.rate))
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
        return
    print(f"{args.clients} 个并发客户端，每项 {args.seconds:g} 秒，服务进程数 {args.workers}")
    print(f"{'场景':<40}{'请求数':>8}{'错误':>6}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'客户端CPU%':>11}")
    for name, r in results.items():
        print(f"{name:<40}{r['requests']:>8}{r['errors']:>6}{r['rps']:>9.0f}{r['p50_ms']:>9.1f}"
              f"{r['p99_ms']:>9.1f}{r['client_cpu_pct']:>11.0f}")


if __name__ == "__main__":
    main()
