"""``straits validator|bank|central-bank --config FILE``: the entry point of every node process.

The process serves until SIGINT or SIGTERM, then stops cleanly: in-flight calls
finish, the node loop stops between events, the store closes. Restarted on the
same config it resumes from its SQLite file and catches up from its peers.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from ledger.roles import Role
from services.common.config import NodeConfig, load_config


class Node(Protocol):
    def start(self) -> int: ...

    def stop(self) -> None: ...


def _validator(config: NodeConfig) -> Node:
    from services.validator.node import ValidatorNode

    return ValidatorNode(config)


def _bank(config: NodeConfig) -> Node:
    from services.participant.bank.node import BankNode

    return BankNode(config)


def _central_bank(config: NodeConfig) -> Node:
    from services.participant.central_bank.node import CentralBankNode

    return CentralBankNode(config)


# command -> (the role its config must name, how to build the node)
NODES: dict[str, tuple[Role, Callable[[NodeConfig], Node]]] = {
    "validator": (Role.VALIDATOR, _validator),
    "bank": (Role.BANK, _bank),
    "central-bank": (Role.CENTRAL_BANK, _central_bank),
}


_PR_SET_PDEATHSIG = 1


def _stop_with_parent() -> None:
    """Ask the kernel for SIGTERM when the parent dies; done here, in the node's own process,
    because doing it between fork and exec of a threaded parent can deadlock."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def register(commands: argparse._SubParsersAction) -> None:
    for name, (kind, _) in NODES.items():
        parser = commands.add_parser(name, help=f"run a {kind.value.replace('_', ' ')} node")
        parser.add_argument("--config", type=Path, required=True, help="the node's node.toml")
        parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING...")
        parser.add_argument(
            "--stop-with-parent",
            action="store_true",
            help="stop when the process that started this one dies (Linux; used by network up)",
        )
        parser.set_defaults(run=run, node_command=name)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    kind, build = NODES[args.node_command]
    config = load_config(args.config)
    if config.kind is not kind:
        logging.error(
            "%s expects a %s config; %s is for a %s",
            args.node_command,
            kind.value,
            args.config,
            config.kind.value,
        )
        return 2
    node = build(config)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    if args.stop_with_parent:
        _stop_with_parent()
    port = node.start()
    # What the node built to start (modules, the loaded state, gRPC) lives as long as the
    # process: out of the cyclic collector's reach, its full collections stop walking it.
    gc.freeze()
    print(f"{config.id} ready on port {port}", flush=True)
    failed = getattr(node, "failed", None)
    while not stopping.wait(0.5):
        if failed is not None and failed.is_set():
            logging.critical(
                "%s stopped on an error; restart it to resume from its store", config.id
            )
            node.stop()
            return 1
    node.stop()
    logging.info("%s stopped", config.id)
    return 0
