"""Hostile clients for the hostile-input suite, each in a process of its own.

``python -m tests.attack <kind> <url> <connections> <seconds>`` runs one attack and
prints one JSON line of counts when it ends:

* ``half-open``: opens the connections, sends half a request line on each, and
  keeps them open (reopening any the server drops);
* ``overload``: each connection sends ``POST /predict/digit`` (a small PNG) in a
  loop, keep-alive, as fast as the answers come back;
* ``uploads``: each connection sends one upload of the maximum body size at once.

It prints ``ready`` once every connection is open, so that a test measures during
the attack, not while it builds up.
"""

from __future__ import annotations

import asyncio
import collections
import io
import json
import resource
import sys
import time
from urllib.parse import urlsplit


def raise_descriptor_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def digit_png() -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("L", (28, 28), 0)
    ImageDraw.Draw(image).line((14, 4, 14, 24), fill=255, width=3)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def multipart(field: str, data: bytes, filename: str = "x.png") -> tuple[bytes, str]:
    boundary = "attackboundary1234"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="{filename}"\r\nContent-Type: image/png\r\n\r\n'
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def request(host: str, path: str, body: bytes, content_type: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def half_open(host: str, port: int, connections: int, seconds: float) -> dict:
    counts: collections.Counter[str] = collections.Counter()
    stop = time.monotonic() + seconds
    opened = asyncio.Event()
    open_now = [0]

    async def one() -> None:
        while time.monotonic() < stop:
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError:
                counts["connect_failed"] += 1
                await asyncio.sleep(0.1)
                continue
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x")
            counts["opened"] += 1
            open_now[0] += 1
            if open_now[0] >= connections:
                opened.set()
            try:
                await asyncio.wait_for(reader.read(), max(0.01, stop - time.monotonic()))
                counts["dropped_by_server"] += 1
            except (TimeoutError, OSError):
                pass
            open_now[0] -= 1
            writer.close()

    tasks = [asyncio.create_task(one()) for _ in range(connections)]
    await asyncio.wait_for(opened.wait(), 30)
    print("ready", flush=True)
    await asyncio.gather(*tasks)
    return dict(counts)


async def overload(host: str, port: int, connections: int, seconds: float) -> dict:
    body, content_type = multipart("image", digit_png())
    raw = request(host, "/predict/digit", body, content_type)
    counts: collections.Counter[str] = collections.Counter()
    stop = time.monotonic() + seconds
    ready = [0]
    all_open = asyncio.Event()

    async def one() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        ready[0] += 1
        if ready[0] == connections:
            all_open.set()
        await all_open.wait()
        while time.monotonic() < stop:
            try:
                writer.write(raw)
                counts[str(await read_response(reader))] += 1
            except (OSError, asyncio.IncompleteReadError):
                counts["connection_lost"] += 1
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
        writer.close()

    tasks = [asyncio.create_task(one()) for _ in range(connections)]
    await asyncio.wait_for(all_open.wait(), 60)
    print("ready", flush=True)
    await asyncio.gather(*tasks, return_exceptions=True)
    return dict(counts)


async def uploads(host: str, port: int, connections: int, size: int) -> dict:
    """Each connection sends one upload of ``size`` bytes; all at once."""
    filler = bytes(range(256)) * (size // 256 + 1)
    overhead = len(multipart("image", b"")[0])
    body, content_type = multipart("image", filler[: size - overhead])
    raw = request(host, "/predict/digit", body, content_type)
    counts: collections.Counter[str] = collections.Counter()
    gate = asyncio.Event()
    ready = [0]

    async def one() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        ready[0] += 1
        await gate.wait()
        try:
            writer.write(raw)
            counts[str(await read_response(reader))] += 1
        except (OSError, asyncio.IncompleteReadError):
            counts["connection_lost"] += 1
        writer.close()

    tasks = [asyncio.create_task(one()) for _ in range(connections)]
    while ready[0] < connections:
        await asyncio.sleep(0.01)  # polling the connects, not synchronisation
    print("ready", flush=True)
    gate.set()
    await asyncio.gather(*tasks)
    return dict(counts)


def main(argv: list[str]) -> None:
    kind, url, connections, amount = argv[0], argv[1], int(argv[2]), float(argv[3])
    raise_descriptor_limit(connections + 256)
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if kind == "half-open":
        result = asyncio.run(half_open(host, port, connections, amount))
    elif kind == "overload":
        result = asyncio.run(overload(host, port, connections, amount))
    elif kind == "uploads":
        result = asyncio.run(uploads(host, port, connections, int(amount)))
    else:
        raise SystemExit(f"unknown attack {kind!r}")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
