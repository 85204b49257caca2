"""``straits network up``: a whole local network in separate processes, until Ctrl-C.

With ``--init`` a missing network is created first; with ``--demo`` the central
bank issues opening balances (once: a network that already has money is left as
it is) and a few payments show settlement at work, including one that queues for
lack of funds and settles when an incoming payment covers it. Prometheus (when
installed) scrapes the network and serves the regulator's console pages; their URLs
are printed (``--no-prometheus`` leaves it out).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import signal
import threading
from pathlib import Path

from straits.bank.v1 import bank_pb2

from clients.sdk.bank import BankClient
from clients.sdk.central_bank import CentralBankClient
from clients.sdk.channel import COMMIT_TIMEOUT_S, ApiError, open_channel
from ledger.errors import expected
from ledger.roles import Role
from services.network.launcher import Launcher, NodeSpec
from services.network.prometheus_server import PAGES, PrometheusServer
from services.network.setup import NetworkPlan, init_network
from wire.errors import ConfigError, UnavailableError
from wire.tls import TlsFiles

OPENING_BALANCE = 1_000_000_00  # minor units: 1,000,000.00 per bank


def register_up(actions: argparse._SubParsersAction) -> None:
    up = actions.add_parser("up", help="run every node of a local network as its own process")
    up.add_argument("--dir", type=Path, required=True, help="the network directory")
    up.add_argument("--init", action="store_true", help="create the network if there is none")
    up.add_argument("--demo", action="store_true", help="issue opening balances and pay a little")
    up.add_argument("--log-level", default="INFO")
    up.add_argument("--prometheus", default="127.0.0.1:9090", metavar="HOST:PORT",
                    help="where Prometheus serves the dashboards (default %(default)s)")
    up.add_argument("--no-prometheus", action="store_true", help="do not start Prometheus")
    up.set_defaults(run=run_up)


def client_tls(directory: Path, participant: str) -> TlsFiles:
    index = json.loads((directory / "network.json").read_text())
    entry = next(c for c in index["clients"] if c["participant"] == participant)
    return TlsFiles(
        directory / index["ca"], directory / entry["certificate"], directory / entry["key"]
    )


def run_up(args: argparse.Namespace) -> int:
    directory: Path = args.dir.absolute()
    if not (directory / "network.json").exists() and args.init:
        init_network(directory, NetworkPlan(), now=dt.datetime.now(dt.UTC))
        print(f"Created a new network in {directory}")
    if not (directory / "network.json").exists():
        raise ConfigError(
            expected("a network directory (or --init to create one)", str(directory)),
            field="dir",
        )
    launcher = Launcher(directory, log_level=args.log_level)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    nodes = launcher.start()
    prometheus = None
    try:
        _print_endpoints(nodes, directory)
        if not args.no_prometheus:
            prometheus = start_dashboards(directory, args.prometheus)
        if args.demo:
            _demo(directory, nodes)
        _print_usage(directory)
        while not stopping.wait(1.0):
            for running in launcher.exited():
                print(
                    f"!! {running.spec.id} exited with status {running.process.returncode}; "
                    f"see {running.log}",
                    flush=True,
                )
                launcher.running.pop(running.spec.id)
    finally:
        print("\nStopping the network...", flush=True)
        if prometheus is not None:
            prometheus.stop()
        launcher.stop()
        print("Stopped. `make run` starts it again on the same data.")
    return 0


def start_dashboards(directory: Path, address: str) -> PrometheusServer | None:
    """Prometheus on the network's generated configuration, or None (said why) when it
    is not installed or cannot start: the network runs without it."""
    server = PrometheusServer(
        directory / "prometheus" / "prometheus.yml",
        directory / "prometheus" / "data",
        address,
        directory / "logs" / "prometheus.log",
    )
    try:
        server.start()
    except (ConfigError, UnavailableError) as error:
        print(f"\nNo dashboards: {error} (`make prometheus` installs it)", flush=True)
        return None
    print(f"\nPrometheus at {server.url} (alerts: {server.url}/alerts); dashboards:")
    for page in PAGES:
        print(f"  {page:<11} {server.console(page)}")
    return server


def _print_endpoints(nodes: list[NodeSpec], directory: Path) -> None:
    print(f"\nStraits network up ({len(nodes)} nodes, logs in {directory / 'logs'}):")
    for node in nodes:
        print(f"  {node.id:<14} {node.kind:<13} {node.address}")


def _demo(directory: Path, nodes: list[NodeSpec]) -> None:
    address = {n.id: n.address for n in nodes}
    banks = sorted(n.id for n in nodes if n.kind is Role.BANK)
    central_bank = CentralBankClient(
        open_channel(address["central-bank"], client_tls(directory, "central-bank"))
    )
    client = {b: BankClient(open_channel(address[b], client_tls(directory, b))) for b in banks}
    if central_bank.total_supply().total_supply == 0:
        print("\nThe central bank issues opening balances against pledged collateral:")
        for bank in banks:
            commit = central_bank.issue(
                bank, OPENING_BALANCE, collateral_ref=f"{bank}-govt-bond-2031"
            )
            print(f"  {bank}: +{OPENING_BALANCE / 100:,.2f} in block {commit.height}")
    first, second, third = banks[0], banks[1], banks[2]
    print("\nPayments:")
    paid = client[first].send(second, 250_000_00, reference="invoice-1001", wait=True)
    _show(paid)
    # More than the payer holds: it waits in the queue...
    balance = client[third].balance().balance
    big = client[third].send(first, balance + 100_000_00, reference="big-ticket", wait=True)
    _show(big)
    # ...until an incoming payment covers it; both settle in the same block.
    cover = client[second].send(third, 150_000_00, reference="cover", wait=True)
    _show(cover)
    # The payer's node learns of the settlement when it follows that block, which may be
    # a moment after the payee's node answered: wait for its event rather than guess.
    settled = _settled(client[third], big.transfer_id, cover.settled_height)
    _show(settled, note="(the queued payment, now)")
    print("\nBalances:")
    for bank in banks:
        account = client[bank].balance()
        print(
            f"  {bank}: {account.balance / 100:>16,.2f}  (position {account.position / 100:,.2f})"
        )


def _settled(bank: BankClient, transfer_id: bytes, height: int) -> bank_pb2.Payment:
    """The payment once ``bank``'s node has seen it settle at ``height`` (or as it stands
    when that takes longer than a commit may)."""
    try:
        for event in bank.watch(from_height=height, timeout=COMMIT_TIMEOUT_S):
            payment = event.payment
            if (payment.transfer_id == transfer_id
                    and payment.status == bank_pb2.PAYMENT_STATUS_SETTLED):
                return payment
    except ApiError:
        pass  # the deadline passed: show the payment as the node has it
    return bank.payment(transfer_id=transfer_id)


def _show(payment: bank_pb2.Payment, note: str = "") -> None:
    status = bank_pb2.PaymentStatus.Name(payment.status).removeprefix("PAYMENT_STATUS_")
    print(
        f"  {payment.payer} -> {payment.payee} {payment.amount / 100:>14,.2f} "
        f"[{payment.reference}] {status} {note}".rstrip()
    )


def _print_usage(directory: Path) -> None:
    print(
        f"""
The network keeps running; Ctrl-C stops it. In another terminal, as bank-a:
  export STRAITS_NETWORK={directory} STRAITS_AS=bank-a
  .venv/bin/straits balance
  .venv/bin/straits send bank-b 1,000.00 --reference demo   # or 100000 --minor
  .venv/bin/straits history
  .venv/bin/straits statement --date today --format camt.053  # ISO 20022 statement
  .venv/bin/straits watch                                   # settlement events as they come
  .venv/bin/straits --help                                  # every command
As the regulator (reads only; --bank picks a bank's node):
  STRAITS_AS=regulator .venv/bin/straits positions
  STRAITS_AS=regulator .venv/bin/straits queue --bank bank-c
  STRAITS_AS=regulator .venv/bin/straits blocks
""",
        flush=True,
    )
