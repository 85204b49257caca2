"""``straits audit``: the chain checked end to end, from genesis to head.

Sources: validators over gRPC as the regulator (``--validator``, from the network
directory), or copies of validators' SQLite files read offline (``--store``). With
``--compare`` every source is also walked side by side with the others to the first
height where they differ. Exit status: 0 clean, 1 findings, 2 the audit could not run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from clients.audit import report as output
from clients.audit.auditor import Auditor
from clients.audit.compare import compare
from clients.audit.signatures import SignaturePool, WorkerError
from clients.audit.sources import NetworkIndex, Source, SourceError, StoreSource, load_genesis
from ledger.errors import StraitsError
from ledger.verifier import BatchVerifier, available_cores

CLEAN, FINDINGS, COULD_NOT_RUN = 0, 1, 2


def register(commands: argparse._SubParsersAction) -> None:
    help = "verify the chain from genesis to head: hashes, seals, signatures, replayed state"
    parser = commands.add_parser("audit", help=help, description=__doc__.split("\n\n")[0],
                                 epilog="exit status: 0 clean, 1 findings, 2 could not run")
    parser.add_argument("--network", type=Path, default=os.environ.get("STRAITS_NETWORK"),
                        help="network directory: genesis, validators, the regulator's "
                             "certificate ($STRAITS_NETWORK)")
    parser.add_argument("--validator", action="append", default=[], metavar="ID",
                        help="audit this validator over gRPC as the regulator (repeatable; "
                             "default: the network's first validator)")
    parser.add_argument("--store", action="append", default=[], type=Path, metavar="FILE",
                        help="audit a copy of a validator's SQLite file, read-only (repeatable)")
    parser.add_argument("--genesis", type=Path,
                        help="the network's genesis file (default: the network directory's)")
    parser.add_argument("--compare", action="store_true",
                        help="also compare the sources block by block: the first height "
                             "where they differ, and how")
    parser.add_argument("--workers", type=int, default=available_cores(),
                        help="signature-verifying worker processes (default: every core)")
    parser.add_argument("--threads", action="store_true",
                        help="verify signatures in threads of this process instead of "
                             "worker processes (they share its GIL with the replay)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print the findings per height as JSON")
    parser.set_defaults(run=run_audit)


def _sources(args: argparse.Namespace) -> list[Source]:
    index = NetworkIndex.load(args.network) if args.network is not None else None
    sources: list[Source] = [StoreSource(path) for path in args.store]
    validators = list(args.validator)
    if not validators and not sources:
        if index is None:
            raise SourceError("expected --network DIR (or --store FILE with --genesis FILE)")
        validators = [next(iter(index.validators))]
    if validators and index is None:
        raise SourceError("--validator needs --network DIR for addresses and certificates")
    sources += [index.validator(v) for v in validators]  # type: ignore[union-attr]
    return sources


def _genesis_path(args: argparse.Namespace) -> Path:
    if args.genesis is not None:
        return args.genesis
    if args.network is not None:
        return NetworkIndex.load(args.network).genesis
    raise SourceError("expected --genesis FILE or --network DIR: the audit starts from genesis")


def _verifier(args: argparse.Namespace, chain_id: str) -> BatchVerifier | SignaturePool:
    if args.workers < 1:
        raise SourceError(f"expected --workers of 1 or more, got {args.workers}")
    if args.threads:
        return BatchVerifier(workers=args.workers, cache_size=0)
    return SignaturePool(args.workers, chain_id)


def run_audit(args: argparse.Namespace) -> int:
    as_json = getattr(args, "json", False)
    sources: list[Source] = []
    try:
        genesis = load_genesis(_genesis_path(args))
        sources = _sources(args)
        if args.compare and len(sources) < 2:
            raise SourceError("--compare needs at least two sources")
        reports = []
        with _verifier(args, genesis.chain_id) as verifier:
            for source in sources[: 1 if args.compare else None]:
                bar = None if args.quiet else output.ProgressBar(sys.stderr, source.name)
                reports.append(Auditor(genesis, verifier, progress=bar).run(source))
                if bar is not None:
                    bar.done()
        differences = compare(genesis.chain_id, sources) if args.compare else []
    except (SourceError, StraitsError) as error:
        print(f"straits audit: could not run: {error}", file=sys.stderr)
        return COULD_NOT_RUN
    except WorkerError as error:
        print(f"straits audit: could not run: {error}", file=sys.stderr)
        return COULD_NOT_RUN
    finally:
        for source in sources:
            source.close()
    if as_json:
        document: dict[str, object] = {"reports": [output.record(r) for r in reports]}
        if args.compare:
            document["differences"] = [output.difference_record(d) for d in differences]
        print(json.dumps(document, indent=2))
    else:
        for r in reports:
            print(output.summary(r))
            if r.findings:
                print(output.findings_text(r))
        if args.compare:
            print(output.differences_text(differences))
    bad = any(not r.clean for r in reports) or any(d.diverged for d in differences)
    return FINDINGS if bad else CLEAN
