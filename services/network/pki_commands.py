"""``straits pki revoke``: the holder of the network CA's key takes certificates back.

``straits pki revoke --ca-dir DIR CERT...`` adds certificates to the CA's revocation list
(``revoked.crl`` beside ``ca.crt`` and ``ca.key``; for a local network ``DIR`` is its
``pki/``). Every node whose config names that list reloads it within a second and
refuses the revoked certificates from then on, no restart needed; on separate hosts the
file is copied to each node's directory (``revocations`` in its ``node.toml``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

from services.common.pki import CertificateAuthority, common_name_of, load_certificate
from services.common.revocation import add_revocations
from services.network.setup import REVOCATIONS


def add_revoke(pki_actions: argparse._SubParsersAction) -> None:
    """``revoke`` under the ``straits pki`` group."""
    revoke = pki_actions.add_parser(
        "revoke", help="add certificates to the CA's revocation list; nodes reload it")
    revoke.add_argument("--ca-dir", type=Path, required=True,
                        help="the CA's directory (ca.crt, ca.key; a local network's pki/)")
    revoke.add_argument("certificates", type=Path, nargs="+", metavar="CERT",
                        help="PEM certificate files to revoke")
    revoke.set_defaults(run=run_revoke)


def run_revoke(args: argparse.Namespace) -> int:
    pki = args.ca_dir
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
