"""One load run, start to end: the composition root of ``straits load``.

``LoadRun(settings, endpoints).run(stop)`` opens the channels, follows committed
blocks as the regulator, drives the open or closed loop through the chosen path,
shows progress once a second, waits (bounded) for the last payments to become
final, and returns the summary with its JSON extras. Setting ``stop`` (or a
Ctrl-C in the calling thread) ends the sending early; the summary still covers
what ran.
"""

from __future__ import annotations

import math
import sys
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import TextIO

import grpc

from clients.load import faults
from clients.load.driver import Bounds, ClosedLoop, Offered, OpenLoop, SystemClock
from clients.load.endpoints import Endpoints
from clients.load.finality import BlockFollower, FinalityTracker
from clients.load.output import latency_per_second, progress_line, render_extra
from clients.load.recorder import Recorder
from clients.load.report import Report, render, summarise
from clients.load.submitters import BankPath, LedgerPath
from clients.load.workload import Prepared, Workload
from clients.sdk import CentralBankClient, RegulatorClient, open_channel
from ledger.errors import expected
from ledger.keys import PrivateKey
from wire.errors import ConfigError
from wire.tls import TlsFiles

MAX_DURATION_S = 3600.0
MAX_COUNT = 10_000_000
PRESIGN_HEIGHTS = 16
VIA = ("bank", "validators")


@dataclass(frozen=True)
class LoadSettings:
    via: str = "bank"
    rate: float | None = None  # open loop when set
    concurrency: int = 1  # closed loop otherwise
    batch: int = 1
    duration: float = 10.0
    count: int = MAX_COUNT
    seed: int = 1
    bad_share: float = 0.0
    warmup: float = 0.0
    drain: float = 15.0  # seconds after the last send for the last payments to become final
    max_calls: int = 32  # open loop: submission calls in flight at most
    fund: int = 0  # issue this much to each bank first (needs the central bank's certificate)
    # Closed loop via validators: sign this many payments before the clock starts
    # (clients.load.submitters.LedgerPath); the rest are signed as they are sent.
    presign: int = 0

    def __post_init__(self) -> None:
        if self.presign < 0 or (self.presign and (self.via != "validators" or self.rate)):
            raise ConfigError(
                expected("--presign only with --via validators and --concurrency, and >= 0",
                         (self.presign, self.via, self.rate)),
                field="presign",
            )
        if self.presign > min(self.count, MAX_COUNT):
            raise ConfigError(expected(f"--presign <= --count (and <= {MAX_COUNT})",
                                       (self.presign, self.count)), field="presign")


@dataclass(frozen=True)
class RunResult:
    report: Report
    extra: dict[str, object]
    text: str  # the human summary


class LoadRun:
    def __init__(self, settings: LoadSettings, endpoints: Endpoints,
                 out: TextIO | None = None,
                 on_start: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self.endpoints = endpoints
        self._out = out or sys.stderr
        # Called as the run's clock starts, after funding and presigning.
        self._on_start = on_start
        self._channels: list[grpc.Channel] = []

    def _channel(self, address: str, tls: TlsFiles) -> grpc.Channel:
        channel = open_channel(address, tls)
        self._channels.append(channel)
        return channel

    def run(self, stop: threading.Event) -> RunResult:
        s = self.settings
        clock = SystemClock(stop)
        try:
            if s.fund:
                self._fund(s.fund)
            regulator = RegulatorClient(
                self._channel(self.endpoints.validators[0], self.endpoints.regulator_tls))
            head = regulator.head()
            tracker = FinalityTracker()
            follower = BlockFollower([self._channel(v, self.endpoints.regulator_tls)
                                      for v in self.endpoints.validators], tracker, clock.now)
            follower.start(head.height + 1)
            submitter = self._submitter(head.chain_id, head.height, tracker)
            workload = Workload([b.bank for b in self.endpoints.banks], seed=s.seed,
                                bad_share=s.bad_share,
                                faults=faults.BANK_FAULTS if s.via == "bank"
                                else faults.VALIDATOR_FAULTS)
            source: Workload | Prepared = workload
            if s.presign:
                assert isinstance(submitter, LedgerPath)  # checked with the settings
                source = self._presign(submitter, workload, head.height)
            recorder = Recorder(tracker, clock.now)
            if self._on_start is not None:
                self._on_start()
            started = clock.now()
            bounds = Bounds(started + min(s.duration, MAX_DURATION_S), min(s.count, MAX_COUNT))
            ticker = _Ticker(recorder, clock.now, started, self._out)
            ticker.start()
            offered, interrupted = self._drive(submitter, source, recorder, clock, bounds, stop)
            self._drain(recorder, clock, 2.0 if interrupted else s.drain)
            ticker.stop()
            recorder.close()
            follower.stop()
        finally:
            for channel in self._channels:
                channel.close()
        report = summarise(recorder.samples, started=started, warmup_seconds=s.warmup,
                           config=asdict(s) | {"endpoints": self.endpoints.to_dict(),
                                               "interrupted": interrupted})
        short = offered.short_seconds(s.rate, skip=math.ceil(s.warmup)) if s.rate else []
        extra = {
            "bad_payments": recorder.bad.to_dict(),
            "offered_per_second": offered.per_second,
            "offered_missed": offered.missed,
            "rate_held": not (short or offered.missed) if s.rate else None,
            "latency_per_second": latency_per_second(recorder.samples, started + s.warmup),
            "latency_per_minute": latency_per_second(recorder.samples, started + s.warmup, 60.0),
            "block_stream_interruptions": follower.interruptions,
            # With presign: good payments signed when sent all the same (their presigned
            # validity ran short, or the presigned ones ran out).
            "signed_when_sent": submitter.signed_when_sent
            if s.presign and isinstance(submitter, LedgerPath) else None,
        }
        text = render(report) + render_extra(recorder.bad, offered.per_second, offered.missed,
                                             short, s.rate)
        if interrupted:
            text += (f"\nInterrupted: sending stopped after {report.total_seconds:.1f} s; "
                     "the summary covers what ran.")
        for interruption in follower.interruptions:
            text += f"\nWARNING: the block stream broke ({interruption}); followed on"
        return RunResult(report, extra, text)

    def _fund(self, amount: int) -> None:
        if self.endpoints.central_bank is None:
            raise ConfigError(expected("the central bank's client certificate to fund the banks",
                                       "none in the network directory"), field="fund")
        address, tls = self.endpoints.central_bank
        central_bank = CentralBankClient(self._channel(address, tls))
        for bank in self.endpoints.banks:
            central_bank.issue(bank.bank, amount, f"load-funding-{uuid.uuid4().hex[:12]}")

    def _submitter(self, chain_id: str, height: int,
                   tracker: FinalityTracker) -> BankPath | LedgerPath:
        banks = self.endpoints.banks
        if self.settings.via == "bank":
            return BankPath({b.bank: self._channel(b.node_address, b.client_tls) for b in banks},
                            run_tag=uuid.uuid4().hex[:12])
        # Half the ledger's lifetime ahead of the newest block seen leaves room for
        # blocks that commit while a transaction travels, and stays under the horizon.
        ahead = max(1, self.endpoints.max_transaction_lifetime // 2)
        return LedgerPath(
            chain_id,
            {b.bank: PrivateKey.load(b.ledger_key) for b in banks},
            {b.bank: [self._channel(v, b.node_tls) for v in self.endpoints.validators]
             for b in banks},
            height=lambda: max(height, tracker.height), ahead=ahead)

    def _presign(self, submitter: LedgerPath, workload: Workload, height: int) -> Prepared:
        """The first ``presign`` payments' batches, made and signed before the clock starts;
        the workload returned hands them out first. Signed for as long as the ledger
        allows, so that they stay sendable through a long run, and over the last
        ``PRESIGN_HEIGHTS`` heights of it, as banks signing as they go spread theirs (the
        ledger remembers ids by the height they expire at)."""
        s = self.settings
        batches = [workload.batch(s.batch) for _ in range(math.ceil(s.presign / s.batch))]
        last = height + self.endpoints.max_transaction_lifetime - 1
        spread = max(1, min(PRESIGN_HEIGHTS, self.endpoints.max_transaction_lifetime // 4))
        for n, batch in enumerate(batches):
            submitter.presign(batch, last - n % spread)
        return Prepared(workload, batches)

    def _drive(self, submitter: BankPath | LedgerPath, workload: Workload | Prepared,
               recorder: Recorder, clock: SystemClock, bounds: Bounds,
               stop: threading.Event) -> tuple[Offered, bool]:
        s = self.settings
        offered = Offered()
        try:
            if s.rate:
                offered = self._open_loop(s.rate, submitter, workload, recorder, clock, bounds,
                                          stop)
            else:
                def cycle(n: int) -> None:
                    orders = workload.batch(n)
                    final = threading.Event()
                    sent_at = clock.now()
                    recorder.record(sent_at, submitter.submit(orders), final.set)
                    give_up = bounds.deadline + s.drain
                    # The next batch goes once this one is final (or the run is over).
                    while not final.wait(0.1):
                        if stop.is_set() or clock.now() > give_up:
                            break

                ClosedLoop(s.concurrency, s.batch).run(cycle, clock, bounds, stop)
        except KeyboardInterrupt:
            stop.set()
            return offered, True
        return offered, stop.is_set()

    def _open_loop(self, rate: float, submitter: BankPath | LedgerPath,
                   workload: Workload | Prepared, recorder: Recorder, clock: SystemClock,
                   bounds: Bounds,
                   stop: threading.Event) -> Offered:
        s = self.settings
        slots = threading.Semaphore(s.max_calls)

        def call(n: int) -> None:
            try:
                orders = workload.batch(n)
                sent_at = clock.now()
                recorder.record(sent_at, submitter.submit(orders))
            finally:
                slots.release()

        def dispatch(n: int) -> bool:
            if not slots.acquire(blocking=False):
                return False
            pool.submit(call, n)
            return True

        pool = ThreadPoolExecutor(max_workers=s.max_calls, thread_name_prefix="load-call")
        try:
            return OpenLoop(rate, s.batch).run(dispatch, clock, bounds, stop)
        finally:
            # Calls already made are answered (bounded by their deadline) and recorded.
            pool.shutdown(wait=True, cancel_futures=True)

    def _drain(self, recorder: Recorder, clock: SystemClock, seconds: float) -> None:
        """Wait, bounded, for the payments still open to become final."""
        end = clock.now() + seconds
        idle = threading.Event()
        try:
            while recorder.open and clock.now() < end:
                idle.wait(0.05)
        except KeyboardInterrupt:
            return


class _Ticker:
    """The live progress line: once a second on ``out`` (rewritten in place on a terminal)."""

    def __init__(self, recorder: Recorder, now: Callable[[], float], started: float,
                 out: TextIO) -> None:
        self._recorder = recorder
        self._now = now
        self._started = started
        self._out = out
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-progress", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        last = 0
        live = self._out.isatty()
        while not self._stop.wait(1.0):
            progress = self._recorder.progress()
            line = progress_line(self._now() - self._started, progress, last)
            last = progress.settled
            self._out.write(f"\r{line}\033[K" if live else line + "\n")
            self._out.flush()
        if live:
            self._out.write("\n")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
