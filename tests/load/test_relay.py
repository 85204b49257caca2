"""The delaying relay that stands in for WAN links: bytes arrive intact and in order,
both ways, never sooner than the delay allows, and a half-close passes through."""

from __future__ import annotations

import asyncio
import time

from clients.bench.relay import serve


async def _echo_server() -> tuple[asyncio.Server, int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(4096):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _round_trip(delay: float) -> tuple[bytes, float]:
    server, port = await _echo_server()
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    relay_port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    ready, stop = asyncio.Event(), asyncio.Event()
    relay = asyncio.create_task(
        serve([(f"127.0.0.1:{relay_port}", f"127.0.0.1:{port}")], delay, ready, stop))
    await ready.wait()
    reader, writer = await asyncio.open_connection("127.0.0.1", relay_port)
    payload = bytes(range(256)) * 2000  # 512 kB: several chunks each way
    started = time.monotonic()
    writer.write(payload)
    writer.write_eof()
    echoed = await reader.read(-1)  # until the echo server's close comes back through
    elapsed = time.monotonic() - started
    writer.close()
    stop.set()
    await relay
    server.close()
    return echoed, elapsed


def test_the_relay_carries_every_byte_in_order_and_passes_the_close_on() -> None:
    echoed, _ = asyncio.run(_round_trip(0.0))
    assert echoed == bytes(range(256)) * 2000


def test_a_round_trip_through_the_relay_takes_at_least_twice_the_delay() -> None:
    echoed, elapsed = asyncio.run(_round_trip(0.05))
    assert echoed == bytes(range(256)) * 2000
    assert elapsed >= 0.1, f"a 2 x 50 ms round trip came back in {elapsed * 1000:.0f} ms"
