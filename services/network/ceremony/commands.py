"""The key ceremony for hosts of different institutions (see ``services.network.ceremony``).

    straits keys generate --dir HOST --id validator-1 --role validator --address v1:7000
    straits pki init --dir CA --chain-id straits-prod
    straits pki sign --ca-dir CA --out certs HOST1/request.json HOST2/request.json ...
    straits genesis assemble --chain-id straits-prod --out genesis.json REQUESTS...
    straits bundle --genesis genesis.json --ca CA/ca.crt --certs certs --out bundles REQUESTS...
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

from ledger.roles import Role
from services.common.pki import Identity
from services.network.ceremony.assembly import DEFAULT_METRICS_PORT, assemble_genesis, write_bundles
from services.network.ceremony.authority import create_authority, sign_requests
from services.network.ceremony.request import REQUEST_FILE, KeyRequest, generate_keys
from services.network.pki_commands import add_revoke


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def register(commands: argparse._SubParsersAction) -> None:
    keys = commands.add_parser("keys", help="a host's own keys, for a network across hosts")
    key_actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    generate = key_actions.add_parser(
        "generate", help="write this host's private keys and a key request to hand out")
    generate.add_argument("--dir", type=Path, required=True,
                          help="the host's directory; its private keys never leave it")
    generate.add_argument("--id", required=True, help="participant id, e.g. validator-1, bank-a")
    generate.add_argument("--role", required=True, choices=[r.value for r in Role])
    generate.add_argument("--name", default="", help="display name (default: the id)")
    generate.add_argument("--address", default="",
                          help="host:port peers reach this node at (nodes only)")
    generate.add_argument("--host", action="append", default=[],
                          help="another name or address for the TLS certificate (repeatable)")
    generate.set_defaults(run=run_generate)

    pki = commands.add_parser("pki", help="the network CA, held by the central bank")
    pki_actions = pki.add_subparsers(dest="action", required=True, metavar="ACTION")
    init = pki_actions.add_parser("init", help="create the network CA")
    init.add_argument("--dir", type=Path, required=True, help="the CA's own directory")
    init.add_argument("--chain-id", required=True)
    init.set_defaults(run=run_pki_init)
    sign = pki_actions.add_parser("sign", help="issue TLS certificates for key requests")
    sign.add_argument("--ca-dir", type=Path, required=True)
    sign.add_argument("--out", type=Path, required=True, help="directory for the certificates")
    sign.add_argument("requests", type=Path, nargs="+", help=f"{REQUEST_FILE} files")
    sign.set_defaults(run=run_pki_sign)
    add_revoke(pki_actions)

    genesis = commands.add_parser("genesis", help="found a network from public keys")
    genesis_actions = genesis.add_subparsers(dest="action", required=True, metavar="ACTION")
    assemble = genesis_actions.add_parser("assemble", help="genesis from key requests")
    assemble.add_argument("--chain-id", required=True)
    assemble.add_argument("--currency", default="SGD")
    assemble.add_argument("--decimals", type=int, default=2)
    assemble.add_argument("--out", type=Path, required=True, help="the genesis file to write")
    assemble.add_argument("requests", type=Path, nargs="+")
    assemble.set_defaults(run=run_assemble)

    bundle = commands.add_parser("bundle", help="per-host bundles of public files")
    bundle.add_argument("--genesis", type=Path, required=True)
    bundle.add_argument("--ca", type=Path, required=True, help="the network CA certificate")
    bundle.add_argument("--certs", type=Path, required=True, help="directory of `pki sign`")
    bundle.add_argument("--out", type=Path, required=True)
    bundle.add_argument("--data-dir", default="data",
                        help="the nodes' data directory, relative to node.toml or absolute")
    bundle.add_argument("--metrics-port", type=int, default=DEFAULT_METRICS_PORT)
    bundle.add_argument("--listen-host", default="0.0.0.0",
                        help="the address nodes listen on (default: every interface)")
    bundle.add_argument("requests", type=Path, nargs="+")
    bundle.set_defaults(run=run_bundle)


def _print(args: argparse.Namespace, data: object, text: str) -> None:
    print(json.dumps(data, indent=2) if args.json else text)


def run_generate(args: argparse.Namespace) -> int:
    identity = Identity(args.id, Role(args.role))
    request = generate_keys(args.dir, identity, name=args.name or args.id,
                            address=args.address, hosts=tuple(args.host))
    path = args.dir / REQUEST_FILE
    _print(args, {"request": str(path), "id": request.participant_id,
                  "role": request.role.value},
           f"Keys for {identity.uri} written to {args.dir} (keep them there); "
           f"hand {path} to the central bank.")
    return 0


def run_pki_init(args: argparse.Namespace) -> int:
    path = create_authority(args.dir, args.chain_id, now=_now())
    _print(args, {"ca": str(path)}, f"Network CA written to {args.dir}; share {path} only.")
    return 0


def run_pki_sign(args: argparse.Namespace) -> int:
    requests = [KeyRequest.load(p) for p in args.requests]
    written = sign_requests(args.ca_dir, requests, args.out, now=_now())
    _print(args, {"certificates": [str(p) for p in written]},
           "\n".join(f"issued {p}" for p in written))
    return 0


def run_assemble(args: argparse.Namespace) -> int:
    requests = [KeyRequest.load(p) for p in args.requests]
    genesis = assemble_genesis(requests, chain_id=args.chain_id, currency=args.currency,
                               decimals=args.decimals,
                               genesis_time_ms=int(_now().timestamp() * 1000))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    genesis.save(args.out)
    _print(args, {"genesis": str(args.out), "hash": genesis.hash.hex()},
           f"Genesis of {genesis.chain_id!r} ({len(genesis.validators)} validators, "
           f"{len(genesis.participants)} participants) written to {args.out}; "
           f"hash {genesis.hash.hex()}")
    return 0


def run_bundle(args: argparse.Namespace) -> int:
    requests = [KeyRequest.load(p) for p in args.requests]
    written = write_bundles(args.out, genesis_path=args.genesis, ca_certificate=args.ca,
                            certificates=args.certs, requests=requests,
                            data_dir=args.data_dir, metrics_port=args.metrics_port,
                            listen_host=args.listen_host)
    _print(args, {"bundles": [str(p) for p in written]},
           "\n".join(f"bundle {p}" for p in written))
    return 0
