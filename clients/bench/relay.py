"""A delaying TCP relay: WAN latency between hosts on one machine, where no netem is.

Each link is a listening port that forwards to one target; every chunk read in either
direction is written out ``delay`` seconds after it arrived, in order, so a link adds
``2 * delay`` to a round trip without limiting its throughput. Half-closes pass through.

    python -m clients.bench.relay --delay-ms 10 127.0.0.1:9001=127.0.0.1:7001 ...

runs until SIGTERM, printing ``ready`` once every link listens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence

CHUNK = 65536


async def _forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   delay: float) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def read() -> None:
        while True:
            data = await reader.read(CHUNK)
            queue.put_nowait((loop.time() + delay, data))
            if not data:
                return

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    with contextlib.suppress(ConnectionError):
        await asyncio.gather(read(), deliver())


async def _link(listen: str, target: str, delay: float) -> asyncio.Server:
    target_host, _, target_port = target.rpartition(":")

    async def handle(client_reader: asyncio.StreamReader,
                     client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(
                target_host, int(target_port))
        except OSError:
            client_writer.close()
            return
        try:
            await asyncio.gather(_forward(client_reader, server_writer, delay),
                                 _forward(server_reader, client_writer, delay))
        finally:
            for writer in (client_writer, server_writer):
                writer.close()

    host, _, port = listen.rpartition(":")
    return await asyncio.start_server(handle, host, int(port))


async def serve(links: Sequence[tuple[str, str]], delay: float,
                ready: asyncio.Event | None = None, stop: asyncio.Event | None = None) -> None:
    servers = [await _link(listen, target, delay) for listen, target in links]
    if ready is not None:
        ready.set()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    print("ready", flush=True)
    await stop.wait()
    for server in servers:
        server.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, required=True, help="one-way delay")
    parser.add_argument("links", nargs="+", help="LISTEN_HOST:PORT=TARGET_HOST:PORT")
    args = parser.parse_args(argv)
    links = [tuple(link.split("=", 1)) for link in args.links]
    asyncio.run(serve(links, args.delay_ms / 1000))  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
