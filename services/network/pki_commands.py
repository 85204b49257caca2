"""``straits pki``: what the holder of the network CA's key does after set-up.

``straits pki revoke --dir NETWORK CERT...`` adds certificates to the CA's revocation
list (``pki/revoked.crl``); every node of the network reloads the list within a second
and refuses the revoked certificates from then on, no restart needed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

from services.common.pki import CertificateAuthority, common_name_of, load_certificate
from services.common.revocation import add_revocations
from services.network.setup import REVOCATIONS


def register(commands: argparse._SubParsersAction) -> None:
    pki = commands.add_parser("pki", help="the network CA: revoke certificates")
    actions = pki.add_subparsers(dest="action", required=True, metavar="ACTION")
    revoke = actions.add_parser(
        "revoke", help="add certificates to the CA's revocation list; nodes reload it")
    revoke.add_argument("--dir", type=Path, required=True,
                        help="the network directory (holds pki/ca.crt and pki/ca.key)")
    revoke.add_argument("certificates", type=Path, nargs="+", metavar="CERT",
                        help="PEM certificate files to revoke")
    revoke.set_defaults(run=run_revoke)


def run_revoke(args: argparse.Namespace) -> int:
    pki = args.dir / "pki"
    ca = CertificateAuthority.load(pki / "ca.crt", pki / "ca.key")
    certificates = [load_certificate(path) for path in args.certificates]
    added = add_revocations(ca, pki / REVOCATIONS, certificates, now=dt.datetime.now(dt.UTC))
    revoked = [{"certificate": str(path), "name": common_name_of(cert),
                "serial": f"{cert.serial_number:x}", "newly_revoked": cert.serial_number in added}
               for path, cert in zip(args.certificates, certificates, strict=True)]
    if args.json:
        print(json.dumps({"revocation_list": str(pki / REVOCATIONS), "revoked": revoked}))
        return 0
    for entry in revoked:
        state = "revoked" if entry["newly_revoked"] else "already revoked"
        print(f"{entry['name']} (serial {entry['serial']}): {state}")
    print(f"Revocation list: {pki / REVOCATIONS}; nodes reload it within a second.")
    return 0
