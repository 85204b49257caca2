"""``straits load``: drive payments into a running network and measure them to finality.

Open loop with ``--rate`` (payments/s held steady, a warning when it cannot be),
closed loop with ``--concurrency`` (batches in flight until final); through the bank
nodes (``--via bank``) or signed with the banks' ledger keys straight to the
validators (``--via validators``). Every run is bounded by ``--duration`` and
``--count`` (both capped), talks only to the endpoints of ``--network`` (or those
given with ``--validator`` / ``--bank-node``), and prints a ghz-style summary.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from pathlib import Path

from clients.load.endpoints import from_network
from clients.load.output import write_chart, write_json
from clients.load.runner import MAX_COUNT, MAX_DURATION_S, VIA, LoadRun, LoadSettings
from ledger.errors import expected
from wire.errors import ConfigError


def register(commands: argparse._SubParsersAction) -> None:
    help = "drive payments into a network and measure submission-to-finality"
    parser = commands.add_parser("load", help=help, description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_argument_group("where, and with whose credentials")
    where.add_argument("--network", type=Path, default=os.environ.get("STRAITS_NETWORK"),
                       help="network directory with network.json ($STRAITS_NETWORK)")
    where.add_argument("--validator", action="append", default=[], metavar="HOST:PORT",
                       help="a validator address, instead of network.json's (repeat)")
    where.add_argument("--bank-node", action="append", default=[], metavar="BANK=HOST:PORT",
                       help="a bank node's address, instead of network.json's (repeat)")
    where.add_argument("--banks", default="", help="only these banks (comma-separated)")
    how = parser.add_argument_group("how")
    how.add_argument("--via", choices=VIA, default="bank",
                     help="through the bank nodes, or signed straight to the validators")
    loop = how.add_mutually_exclusive_group()
    loop.add_argument("--rate", type=float, help="open loop: payments per second")
    loop.add_argument("--concurrency", type=int, default=1,
                      help="closed loop: batches in flight until final (default 1)")
    how.add_argument("--batch", type=int, default=1, help="payments per call (default 1)")
    how.add_argument("--duration", type=float, default=10.0,
                     help=f"seconds of sending (default 10, at most {MAX_DURATION_S:g})")
    how.add_argument("--count", type=int, default=MAX_COUNT,
                     help=f"payments at most (default and cap {MAX_COUNT})")
    how.add_argument("--seed", type=int, default=1, help="seed of the payer/payee mix")
    how.add_argument("--bad-share", type=float, default=0.0,
                     help="share of deliberately bad payments, all to be refused")
    how.add_argument("--warmup", type=float, default=0.0,
                     help="seconds at the start left out of the summary")
    how.add_argument("--drain", type=float, default=15.0,
                     help="seconds to wait after sending for the last payments to settle")
    how.add_argument("--max-calls", type=int, default=32,
                     help="open loop: submission calls in flight at most")
    how.add_argument("--presign", type=int, default=0, metavar="N",
                     help="closed loop via validators: sign the first N payments before "
                          "the clock starts, as banks signing on their own machines")
    how.add_argument("--fund", type=int, default=0, metavar="AMOUNT",
                     help="first issue AMOUNT to each bank (central bank's certificate)")
    out = parser.add_argument_group("output")
    out.add_argument("--json-out", type=Path, help="write the JSON report here")
    out.add_argument("--chart", type=Path, help="write a PNG chart of the run here")
    parser.set_defaults(run=run_load)


def _settings(args: argparse.Namespace) -> LoadSettings:
    if args.duration <= 0 or args.count <= 0:
        raise ConfigError(expected("--duration > 0 and --count > 0",
                                   (args.duration, args.count)), field="duration")
    if args.duration > MAX_DURATION_S or args.count > MAX_COUNT:
        raise ConfigError(expected(f"--duration <= {MAX_DURATION_S:g} and --count <= {MAX_COUNT}",
                                   (args.duration, args.count)), field="duration")
    return LoadSettings(
        via=args.via, rate=args.rate, concurrency=args.concurrency, batch=args.batch,
        duration=args.duration, count=args.count, seed=args.seed, bad_share=args.bad_share,
        warmup=args.warmup, drain=max(0.0, args.drain), max_calls=max(1, args.max_calls),
        fund=args.fund, presign=args.presign)


def _bank_nodes(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        bank, _, address = pair.partition("=")
        if not bank or not address:
            raise ConfigError(expected("BANK=HOST:PORT", pair), field="bank_node")
        out[bank] = address
    return out


def run_load(args: argparse.Namespace) -> int:
    if args.network is None:
        raise ConfigError(expected("--network DIR (or $STRAITS_NETWORK)", None), field="network")
    settings = _settings(args)
    endpoints = from_network(args.network, validators=args.validator,
                             bank_nodes=_bank_nodes(args.bank_node),
                             banks=[b for b in args.banks.split(",") if b])
    result = LoadRun(settings, endpoints).run(threading.Event())
    if args.json_out:
        write_json(args.json_out, result.report, result.extra)
    if args.chart:
        write_chart(args.chart, result.report.per_second,
                    result.extra["latency_per_second"],  # type: ignore[arg-type]
                    f"straits load --via {settings.via}: settled payments/s and latency")
    if getattr(args, "json", False):
        print(json.dumps(result.report.to_dict() | result.extra, indent=2, sort_keys=True))
    else:
        print(result.text)
    bad = result.extra["bad_payments"]
    not_refused = bad["not_refused"]  # type: ignore[index]
    if not_refused:
        print(f"straits load: {not_refused} deliberately bad payments were not refused",
              file=sys.stderr)
        return 2
    return 0
