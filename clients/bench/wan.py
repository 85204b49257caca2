"""WAN latency: finality when validators sit 20 ms and 50 ms (round trip) apart.

A fresh network of 4 validators and 3 banks on this machine, where every validator
reaches every other through a delaying TCP relay (``clients.bench.relay``) holding
each packet half the round trip in each direction; the load generator submits to the
validators directly, open loop at a fixed rate, and reports submission-to-finality
percentiles. With no relay (0 ms) the same run gives the baseline.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from clients.load.endpoints import from_network
from clients.load.runner import LoadRun, LoadSettings, RunResult
from services.common.config import Peer, load_config, render_config
from services.network import setup as network_setup
from services.network.launcher import Launcher, read_index
from services.network.setup import NetworkPlan, init_network

ROUND_TRIPS_MS = (0, 20, 50)
VALIDATORS = 4
BANKS = 3
RATE = 400.0
SETTINGS = LoadSettings(via="validators", rate=RATE, batch=20, duration=15.0, warmup=3.0,
                        drain=10.0, fund=10**12)


def _relay_links(directory: Path, relay_base: int) -> list[tuple[str, str]]:
    """Points each validator's peers at relay ports of its own; returns the links."""
    nodes, _ = read_index(directory)
    validators = [n for n in nodes if n.kind == "validator"]
    address = {v.id: v.address for v in validators}
    links = []
    for i, node in enumerate(validators):
        config = load_config(node.config)
        peers = []
        for j, peer in enumerate(config.validators):
            if peer.id == node.id:
                peers.append(peer)
                continue
            listen = f"127.0.0.1:{relay_base + i * VALIDATORS + j}"
            links.append((listen, address[peer.id]))
            peers.append(Peer(peer.id, listen))
        node.config.write_text(render_config(
            dataclasses.replace(config, validators=tuple(peers)), node.config.parent))
    return links


def measure(round_trip_ms: int, root: Path) -> RunResult:
    base = network_setup.free_base_port(160 + VALIDATORS * VALIDATORS, first=33000, step=271)
    layout = init_network(root / f"wan-{round_trip_ms}",
                          NetworkPlan(validators=VALIDATORS, banks=BANKS, base_port=base),
                          now=dt.datetime.now(dt.UTC))
    relay = None
    if round_trip_ms:
        links = _relay_links(layout.directory, base + 200)
        relay = subprocess.Popen(
            [sys.executable, "-m", "clients.bench.relay", "--delay-ms", str(round_trip_ms / 2),
             *(f"{listen}={target}" for listen, target in links)],
            stdout=subprocess.PIPE, text=True)
        assert relay.stdout is not None
        relay.stdout.readline()  # "ready": every link listens
    launcher = Launcher(layout.directory, log_level="WARNING")
    try:
        launcher.start()
        with open(os.devnull, "w") as quiet:
            return LoadRun(SETTINGS, from_network(layout.directory), out=quiet).run(
                threading.Event())
    finally:
        launcher.stop()
        if relay is not None:
            relay.terminate()
            relay.wait()


def run() -> dict:
    rows: list[dict] = []
    results: dict[str, object] = {"rate": RATE, "round_trips": {}}
    with tempfile.TemporaryDirectory(prefix="straits-wan-") as tmp:
        for round_trip in ROUND_TRIPS_MS:
            result = measure(round_trip, Path(tmp))
            percentiles = result.report.percentiles_ms
            results["round_trips"][str(round_trip)] = {  # type: ignore[index]
                "report": result.report.to_dict(), "rate_held": result.extra["rate_held"]}
            for p in ("p50", "p99"):
                rows.append({
                    "metric": f"4 validators {round_trip} ms apart, {RATE:.0f}/s: {p} finality",
                    "value": percentiles[p], "unit": "ms", "target": ""})
    results["rows"] = rows
    return results


if __name__ == "__main__":
    from clients.bench import core

    core.main({"wan": run}, Path("bench/wan.json"), "python -m clients.bench.wan")
