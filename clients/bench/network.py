"""Network benchmarks: real processes on this machine, driven by the load generator.

For each size (1, 4 and 7 validators, 3 banks with Ed25519 keys; then 1 and 4 with the
banks holding ECDSA P-256 keys) a fresh network is created and started by the
launcher, every node its own process. The load generator signs with
the banks' keys (for the saturating runs, before the clock starts: banks sign on their
own machines) and submits straight to the validators (the ledger alone), closed
loop with enough payments in flight to saturate it: the settled rate is the maximum
sustained. For 4 validators a second run holds half that rate open loop and reports
submission-to-finality latency. Over a window inside each saturating run (a second after
its warm-up to a second before the sending stops) the validators' CPU time, with their
signature workers', is read from /proc and the payments committed in that window are
counted on the chain (the same over the whole run, warm-up, drain and idle moments
included, is reported beside it), giving CPU
seconds per settled payment per validator, shown next to the cost of one verification
of the banks' key type measured in the same run (at its start, and again right after each
saturating run), and the load generator's own CPU per payment. Peak RSS of each node
kind comes from /proc/<pid>/status (VmHWM).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import multiprocessing
import multiprocessing.synchronize
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from straits.validator.v1.validator_pb2 import BlockView

from clients.load.endpoints import Endpoints, from_network
from clients.load.output import write_chart
from clients.load.runner import LoadRun, LoadSettings, RunResult
from clients.sdk import RegulatorClient, open_channel
from ledger.keys import KeyType, PrivateKey
from ledger.roles import Role
from services.network import setup as network_setup
from services.network.launcher import Launcher
from services.network.setup import NetworkPlan, init_network

# (validators, the banks' key type, followers) of each saturating run, in order. With
# followers the bank and central-bank nodes run beside the validators and follow every
# block, as in a local network; without, they stop once the banks are funded, so the two
# cores hold only the ledger and the load generator, as validators on their own
# machines would be.
RUNS = ((1, KeyType.ED25519, True), (4, KeyType.ED25519, True), (7, KeyType.ED25519, True),
        (1, KeyType.ECDSA_P256, True), (4, KeyType.ECDSA_P256, True),
        (1, KeyType.ED25519, False), (4, KeyType.ED25519, False))
# The targets: settled payments/s by size, and CPU per payment per validator (4
# validators) as a multiple of one verification of the banks' key type.
TARGET_RATE = {1: 10_000, 4: 3_000}
TARGET_CPU_RATIO = 1.4
BANKS = 3
# Closed loop: 8 x 600 payments in flight, enough that a single validator is bound by
# its CPU rather than by waiting for blocks (throughput = in flight / latency).
SATURATE = LoadSettings(
    via="validators",
    concurrency=8,
    batch=600,
    duration=15.0,
    warmup=3.0,
    drain=10.0,
    fund=10**15,
)
# Saturating runs sign their payments before the clock starts (``LoadSettings.presign``):
# banks sign on their own machines, and the two cores are for the ledger. Enough for the
# run (its warm-up included) at a little above each size's target; past that the load
# generator signs as it sends, and the table says how many it signed so.
PRESIGN_PER_S = {1: 12_000, 4: 4_000, 7: 2_500}
FIXED_RATE_S = 15.0
CHARTS = Path("bench")
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Saturation:
    validators: int
    settled_per_second: float
    # Per validator, over a window inside the measured run (after the warm-up, before the
    # end): what a payment costs at saturation.
    cpu_seconds_per_payment: float
    committed: int
    result: RunResult
    # Per validator, over the whole run with its warm-up, drain and idle moments.
    whole_run_cpu_seconds_per_payment: float = 0.0
    # The load generator's own CPU (this process, not the nodes), over the whole run.
    load_generator_cpu_seconds_per_payment: float = 0.0
    # The part of ``cpu_seconds_per_payment`` spent in the validators' signature workers.
    worker_cpu_seconds_per_payment: float = 0.0


# The steady window: from a second after the warm-up to a second before the sending
# stops (the run's duration counts from its start, the warm-up included).
WINDOW_START_S = SATURATE.warmup + 1.0
WINDOW_S = SATURATE.duration - WINDOW_START_S - 1.0


def free_base_port() -> int:
    # Above the range the tests use, so a benchmark and a test run can share a machine.
    return network_setup.free_base_port(160, first=30000, step=263)


def cpu_seconds(pid: int) -> float:
    """CPU time of a node and of the processes it started (a validator's signature
    workers), living or ended and waited for."""
    return _cpu(pid, reaped=True) + sum(_cpu(child, reaped=True) for child in children(pid))


def worker_cpu_seconds(pid: int) -> float:
    """The part of ``cpu_seconds`` spent in the processes a node started: a validator's
    signature workers, a replaced one's included (the node reaped it)."""
    return cpu_seconds(pid) - _cpu(pid, reaped=False)


def _cpu(process: int, *, reaped: bool) -> float:
    """utime and stime, and with ``reaped`` those of the children it waited for; 0 for a
    process that ended since it was listed."""
    try:
        fields = _stat(process)
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11 : 15 if reaped else 13]) / CLK_TCK


def own_cpu_seconds() -> float:
    """CPU time of this process alone (the load generator), not of the nodes it started."""
    return sum(int(f) for f in _stat("self")[11:13]) / CLK_TCK


def _stat(process: int | str) -> list[str]:
    """The fields of /proc/<process>/stat after the command name."""
    return Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()


def children(pid: int) -> list[int]:
    """Every process below ``pid``, from /proc/<pid>/task/*/children."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                found.extend((int(child), *children(int(child))))
    return found


def memory_mb(pid: int, field: str) -> float:
    """A memory figure of /proc/<pid>/status in MB: VmRSS (now) or VmHWM (peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb(pid: int) -> float:
    """The node process's own peak RSS; its signature workers are reported apart."""
    return memory_mb(pid, "VmHWM")


def children_peak_rss_mb(pid: int) -> list[float]:
    """Peak RSS of each process a node started (a validator's signature workers)."""
    return [memory_mb(p, "VmHWM") for p in children(pid)]


def _spin(started: multiprocessing.synchronize.Event,
          stop: multiprocessing.synchronize.Event) -> None:
    started.set()
    while not stop.is_set():
        sum(range(10_000))


def verify_cost_busy_us(key_type: KeyType = KeyType.ED25519) -> float:
    """``verify_cost_us`` while every other core runs a busy loop, as at saturation.

    A CPU second buys less work when the other cores are busy too (they share caches,
    memory bandwidth and, on many virtual machines, one physical core): on the 2-vCPU
    machine of docs/bench.md one Ed25519 verification took 105 µs of CPU with the other
    vCPU idle and 133 µs with it busy. The validators' CPU per payment is measured with
    every core busy, so this is the like-for-like floor to divide it by.
    """
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    started = [context.Event() for _ in range(max(0, (os.cpu_count() or 1) - 1))]
    spinners = [context.Process(target=_spin, args=(s, stop), daemon=True) for s in started]
    for spinner in spinners:
        spinner.start()
    try:
        for event in started:  # every spinner runs before the timing starts
            event.wait(timeout=60)
        return verify_cost_us(key_type=key_type)
    finally:
        stop.set()
        for spinner in spinners:
            spinner.join(timeout=5)


def verify_cost_us(samples: int = 2000, key_type: KeyType = KeyType.ED25519) -> float:
    """One verification on one core: the floor of a validator's cost per payment."""
    key = (PrivateKey.from_seed(bytes(range(32))) if key_type is KeyType.ED25519
           else PrivateKey.generate(key_type))
    message = b"x" * 170
    signature = key.sign(message)
    public = key.public_key
    # CPU time of this thread, not wall time: the validators' cost is read as CPU time
    # too, so the two compare fairly however busy the machine is.
    best = float("inf")
    for _ in range(5):
        start = time.thread_time()
        for _ in range(samples):
            public.verify(signature, message)
        best = min(best, (time.thread_time() - start) / samples)
    return best * 1e6


class BenchNetwork:
    def __init__(self, validators: int, root: Path,
                 bank_key_type: KeyType = KeyType.ED25519) -> None:
        self.validators = validators
        self.layout = init_network(
            root / f"net-{validators}-{bank_key_type.value}",
            NetworkPlan(validators=validators, banks=BANKS, base_port=free_base_port(),
                        bank_key_type=bank_key_type),
            now=dt.datetime.now(dt.UTC),
        )
        self.launcher = Launcher(self.layout.directory, log_level="WARNING")

    def __enter__(self) -> BenchNetwork:
        self.nodes = self.launcher.start()
        self.endpoints: Endpoints = from_network(self.layout.directory)
        self._channel = open_channel(self.endpoints.validators[0], self.endpoints.regulator_tls)
        self.regulator = RegulatorClient(self._channel)
        return self

    def __exit__(self, *_: object) -> None:
        self._channel.close()
        self.launcher.stop()

    def pids(self, kind: Role) -> list[int]:
        return [r.process.pid for r in self.launcher.running.values() if r.spec.kind == kind]

    def committed_between(self, low: int, high: int) -> int:
        return committed_between(self.regulator.blocks, low, high)

    def head(self) -> int:
        return self.regulator.head().height

    def run(self, settings: LoadSettings,
            on_start: Callable[[], None] | None = None) -> RunResult:
        with open(os.devnull, "w") as quiet:
            return LoadRun(settings, self.endpoints, out=quiet,
                           on_start=on_start).run(threading.Event())

    def saturate(self, followers: bool = True) -> Saturation:
        """``followers`` False: the bank and central-bank nodes stop once the banks are
        funded, before the measured run."""
        validators = self.pids(Role.VALIDATOR)
        self.run(
            LoadSettings(
                via="validators",
                concurrency=1,
                batch=10,
                duration=2.0,
                drain=5.0,
                fund=SATURATE.fund,
            )
        )
        if not followers:
            self.launcher.stop(kinds=(Role.BANK, Role.CENTRAL_BANK))
        def snapshot() -> tuple[int, float, float]:
            total = sum(cpu_seconds(p) for p in validators)
            own = sum(_cpu(p, reaped=False) for p in validators)
            return self.head(), total, total - own

        window: list[tuple[int, float, float]] = []

        def watch() -> None:
            time.sleep(WINDOW_START_S)
            window.append(snapshot())
            time.sleep(WINDOW_S)
            window.append(snapshot())

        watcher = threading.Thread(target=watch, name="cpu-window", daemon=True)
        presign = int(PRESIGN_PER_S.get(self.validators, 4_000) * SATURATE.duration)
        settings = LoadSettings(**{**SATURATE.__dict__, "fund": 0, "presign": presign})
        started: list[tuple[tuple[int, float, float], float]] = []

        def on_start() -> None:  # the run's clock starts: signing ahead is done
            started.append((snapshot(), own_cpu_seconds()))
            watcher.start()

        result = self.run(settings, on_start=on_start)
        high, cpu_after, _ = snapshot()
        load_cpu = own_cpu_seconds() - started[0][1]
        low, cpu_before, _ = started[0][0]
        watcher.join()
        committed = self.committed_between(low, high)
        whole = (cpu_after - cpu_before) / max(committed, 1) / len(validators)
        (start, cpu_start, workers_start), (end, cpu_end, workers_end) = window
        in_window = max(self.committed_between(start, end), 1) * len(validators)
        return Saturation(
            len(validators), result.report.settled_per_second, (cpu_end - cpu_start) / in_window,
            committed, result, whole, load_cpu / max(committed, 1),
            (workers_end - workers_start) / in_window,
        )

    def peak_rss(self) -> dict[str, float]:
        kinds = {r.spec.kind for r in self.launcher.running.values()}
        return {kind: max(peak_rss_mb(p) for p in self.pids(kind)) for kind in sorted(kinds)}

    def workers_peak_rss(self) -> float:
        """The largest peak RSS of any validator's signature worker processes."""
        return max((mb for p in self.pids(Role.VALIDATOR) for mb in children_peak_rss_mb(p)),
                   default=0.0)


def committed_between(
    blocks: Callable[[int, int], Sequence[BlockView]], low: int, high: int
) -> int:
    """Transactions committed in the blocks above ``low`` up to and including ``high``,
    read through ``blocks(from_height, limit)`` (the regulator's ``GetBlocks``), which may
    answer fewer blocks than asked for and never counts one past ``high``."""
    count, height = 0, low + 1
    while height <= high:
        views = blocks(height, min(high - height + 1, 256))
        if not views:
            break
        count += sum(len(v.transaction_ids) for v in views[: high - height + 1])
        height += len(views)
    return count


def chart(result: RunResult, name: str, title: str) -> str:
    CHARTS.mkdir(exist_ok=True)
    path = CHARTS / f"{name}.png"
    write_chart(path, result.report.per_second, result.extra["latency_per_second"], title)  # type: ignore[arg-type]
    return str(path)


def _label(size: int, key_type: KeyType, followers: bool) -> str:
    banks = "" if key_type is KeyType.ED25519 else ", P-256 banks"
    alone = "" if followers else ", validators alone"
    return f"{size} validator{'s' * (size > 1)}{banks}{alone}"


def _half_rate(network: BenchNetwork, rate: float) -> tuple[dict[str, object], list[dict]]:
    """Open loop at ``rate``: submission-to-finality latency below saturation."""
    fixed = network.run(
        LoadSettings(via="validators", rate=rate, batch=50, duration=FIXED_RATE_S,
                     warmup=3.0, drain=10.0)
    )
    percentiles = fixed.report.percentiles_ms
    entry = {
        "rate": rate,
        "report": fixed.report.to_dict(),
        "rate_held": fixed.extra["rate_held"],
        "chart": chart(fixed, "4-validators-half-rate",
                       f"4 validators, open loop at {rate:,.0f} payments/s"),
    }
    rows = [
        {"metric": f"4 validators at {rate:,.0f}/s: p50 finality", "value": percentiles["p50"],
         "unit": "ms", "target": ""},
        {"metric": f"4 validators at {rate:,.0f}/s: p99 finality", "value": percentiles["p99"],
         "unit": "ms", "target": "< 500"},
    ]
    return entry, rows


def run() -> dict:
    key_types = (KeyType.ED25519, KeyType.ECDSA_P256)
    verify_us = {t: verify_cost_us(key_type=t) for t in key_types}
    busy_us = {t: verify_cost_busy_us(t) for t in key_types}
    rows: list[dict] = []
    results: dict[str, object] = {
        "verify_us": verify_us[KeyType.ED25519],
        "verify_us_p256": verify_us[KeyType.ECDSA_P256],
        "verify_busy_us": busy_us[KeyType.ED25519],
        "verify_busy_us_p256": busy_us[KeyType.ECDSA_P256],
        "sizes": {},
        "p256": {},
        "alone": {},
    }
    with tempfile.TemporaryDirectory(prefix="straits-bench-") as tmp:
        for run_index, (size, key_type, followers) in enumerate(RUNS):
            ed25519 = key_type is KeyType.ED25519
            label = _label(size, key_type, followers)
            with BenchNetwork(size, Path(tmp) / f"run-{run_index}", key_type) as network:
                saturation = network.saturate(followers)
                # The machine's speed drifts over minutes: the same verification again,
                # right after the run (its nodes idle), to set beside the first.
                busy_after = verify_cost_busy_us(key_type)
                name = (f"{size}-validators-max" + ("" if ed25519 else "-p256")
                        + ("" if followers else "-alone"))
                entry: dict[str, object] = {
                    "settled_per_second": saturation.settled_per_second,
                    "cpu_us_per_payment_per_validator": saturation.cpu_seconds_per_payment * 1e6,
                    "whole_run_cpu_us_per_payment_per_validator":
                        saturation.whole_run_cpu_seconds_per_payment * 1e6,
                    "committed": saturation.committed,
                    "load_generator_cpu_us_per_payment":
                        saturation.load_generator_cpu_seconds_per_payment * 1e6,
                    "verify_busy_us_after_run": busy_after,
                    "saturation_report": saturation.result.report.to_dict(),
                    "chart": chart(saturation.result, name,
                                   f"{label}, closed loop at saturation"),
                }
                target = TARGET_RATE.get(size)
                rows.append({"metric": f"{label}: max sustained settled",
                             "value": saturation.settled_per_second, "unit": "payments/s",
                             "target": f">= {target:,}" if target else ""})
                cpu_us = saturation.cpu_seconds_per_payment * 1e6
                rows.append({"metric": f"{label}: CPU per settled payment per validator",
                             "value": cpu_us, "unit": "µs", "target": ""})
                rows.append({"metric": "  the same over the whole run (warm-up, drain, idle)",
                             "value": saturation.whole_run_cpu_seconds_per_payment * 1e6,
                             "unit": "µs", "target": ""})
                worker_us = saturation.worker_cpu_seconds_per_payment * 1e6
                entry["worker_cpu_us_per_payment_per_validator"] = worker_us
                rows.append({"metric": f"  of the first, in its signature workers ({worker_us:.1f}"
                                       f" µs) / one verification, other cores busy",
                             "value": worker_us / busy_us[key_type], "unit": "x", "target": ""})
                rows.append({"metric": "  of the first, in the validator's own process",
                             "value": cpu_us - worker_us, "unit": "µs", "target": ""})
                rows.append({"metric": f"{label}: that CPU / one verification, other cores busy",
                             "value": cpu_us / busy_us[key_type], "unit": "x",
                             "target": f"<= {TARGET_CPU_RATIO}" if size == 4 else ""})
                rows.append({"metric": f"{label}: that CPU / one verification, other cores idle",
                             "value": cpu_us / verify_us[key_type], "unit": "x", "target": ""})
                rows.append({"metric": f"  the same, busy, verification timed just after the "
                                       f"run ({busy_after:.1f} µs)",
                             "value": cpu_us / busy_after, "unit": "x", "target": ""})
                late = saturation.result.extra["signed_when_sent"]
                entry["signed_when_sent"] = late
                rows.append({"metric": "  the load generator's own CPU per payment (presigned"
                                       + (f"; {late:,} signed when sent)" if late else ")"),
                             "value": saturation.load_generator_cpu_seconds_per_payment * 1e6,
                             "unit": "µs", "target": ""})
                if size == 4 and ed25519 and followers:
                    entry["half_rate"], half_rows = _half_rate(
                        network, max(saturation.settled_per_second / 2, 1.0))
                    rows.extend(half_rows)
                    entry["peak_rss_mb"] = network.peak_rss()
                    for kind, mb in entry["peak_rss_mb"].items():  # type: ignore[union-attr]
                        rows.append({"metric": f"peak RSS, {kind} node", "value": mb,
                                     "unit": "MB",
                                     "target": "<= 250" if kind == Role.VALIDATOR else ""})
                    entry["worker_peak_rss_mb"] = network.workers_peak_rss()
                    rows.append({"metric": "peak RSS, one of a validator's signature workers",
                                 "value": entry["worker_peak_rss_mb"], "unit": "MB",
                                 "target": ""})
                group = "alone" if not followers else "sizes" if ed25519 else "p256"
                results[group][str(size)] = entry  # type: ignore[index]
    for key_type in key_types:
        rows.append({"metric": f"one {key_type.value} verification, other cores idle / busy",
                     "value": f"{verify_us[key_type]:.1f} / {busy_us[key_type]:.1f}",
                     "unit": "µs", "target": ""})
    base = results["sizes"]["1"]["settled_per_second"]  # type: ignore[index]
    for size in (4, 7):
        ratio = results["sizes"][str(size)]["settled_per_second"] / base  # type: ignore[index]
        rows.append({"metric": f"scale: {size} validators / 1 validator", "value": ratio,
                     "unit": "x", "target": ""})
    results["rows"] = rows
    return results


if __name__ == "__main__":
    from clients.bench import core

    core.main({"network": run}, Path("bench/network.json"), "python -m clients.bench.network")
