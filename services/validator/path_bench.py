"""Benchmark: the Python of one validator's path per payment, stage by stage, in one process.

It lives beside the validator, not in ``clients/bench``: it drives the validator's own
admission, mempool and chain directly, which clients may not import.

A validator of a four-validator network admits the payments its own participants submit
(with the business-rule dry run), admits the ones its peers share (without), builds a
proposal one block in four, validates the other three, and commits every block. This
runs that path for two real validators' chains (``SqliteStore`` files, the mempool, the
admitter, ``services.validator.admitted.AdmittedFirst``) on one thread, with no network,
and times each stage in the thread's CPU time. Signatures are real, but the verifier's
cache is warmed before each round outside the timing: a verification is measured on its
own (``make bench-core``), and what is left here is everything around it.

Per stage, the median over the rounds (the first two skipped), in µs per payment; then
the stages weighted as one validator of four does them:
``(admit_client + 3 admit_peer + share_encode + build + encode + 3 (decode + validate)
+ commit_prop + 3 commit_val) / 4``.

``python -m services.validator.path_bench [--block N] [--rounds N]``; docs/bench.md has
the figures. The machine's speed moves with what else it runs: compare trees by
alternating runs, and take the best of several.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from straits.ledger.v1 import transaction_pb2 as tx_pb

from ledger import transaction as transactions
from ledger.block import Block
from ledger.chain import Chain
from ledger.consensus import BuildProposal
from ledger.genesis import Genesis
from ledger.keys import PrivateKey
from ledger.state import NORMAL, State
from ledger.store import SqliteStore
from ledger.verifier import BatchVerifier
from services.validator.admission import Admitter
from services.validator.admitted import AdmittedFirst
from services.validator.mempool import Mempool

CHAIN = "straits-bench"
BANKS = [f"bank-{i}" for i in range(8)]
VALIDATORS = 4
STAGES = ("admit_client", "admit_peer", "share_encode", "build", "encode", "decode",
          "validate", "commit_prop", "commit_val")


def _genesis(banks: dict[str, PrivateKey], central_bank: PrivateKey) -> Genesis:
    return Genesis.from_dict({
        "chain_id": CHAIN,
        "currency": {"code": "SGD", "decimals": 2},
        "genesis_time_ms": 0,
        "participants": [
            {"id": "central-bank", "role": "central_bank", "name": "Central bank",
             "key": central_bank.public_key.to_text()},
            *({"id": b, "role": "bank", "name": b, "key": k.public_key.to_text()}
              for b, k in banks.items()),
        ],
        "validators": [{"id": "v1", "key": PrivateKey.from_seed(bytes([2]) * 32)
                        .public_key.to_text()}],
        "parameters": {"max_block_transactions": 5000},
    })


class _Node:
    """A validator's chain, mempool and admitter on a SQLite file of its own."""

    def __init__(self, path: Path, genesis: Genesis, verifier: BatchVerifier) -> None:
        self.mempool = Mempool(100_000)
        self.chain = Chain(SqliteStore(path), State.genesis(genesis),
                           AdmittedFirst(self.mempool, verifier))
        self.admitter = Admitter(self.chain, self.mempool, verifier, lambda *_: None)

    def propose(self) -> Block:
        head = self.chain.head()
        request = BuildProposal(height=head.height + 1, round=0, parent_hash=head.hash,
                                proposer="v1")
        candidates = self.mempool.take(100_000, height=head.height + 1)
        block, _ = self.chain.build_proposal(request, candidates, head.height + 1)
        return block

    def committed(self, block: Block) -> None:
        self.mempool.remove(t.id for t in block.transactions)


def run(block: int = 500, rounds: int = 12) -> dict[str, float]:
    """Median µs per payment of each stage, and ``weighted`` for one validator of four."""
    banks = {b: PrivateKey.from_seed(bytes([10 + i]) * 32) for i, b in enumerate(BANKS)}
    central_bank = PrivateKey.from_seed(bytes([1]) * 32)
    genesis = _genesis(banks, central_bank)
    nonce = 0

    def payments(n: int, height: int) -> list[tx_pb.SignedTransaction]:
        nonlocal nonce
        out = []
        for i in range(n):
            nonce += 1
            payer, payee = BANKS[i % 8], BANKS[(i + 1 + (i // 8) % 7) % 8]
            body = tx_pb.TransactionBody(
                signer=payer, valid_until_height=height + 50, nonce=nonce,
                transfer=tx_pb.Transfer(payee=payee, amount=1 + nonce % 997, priority=NORMAL))
            out.append(transactions.sign(CHAIN, banks[payer], body).to_proto())
        return out

    times: dict[str, list[float]] = {stage: [] for stage in STAGES}

    @contextlib.contextmanager
    def timed(stage: str) -> Iterator[None]:
        started = time.thread_time()
        yield
        times[stage].append(time.thread_time() - started)

    with tempfile.TemporaryDirectory(prefix="straits-path-") as tmp, \
            BatchVerifier(workers=1) as verifier:
        proposer = _Node(Path(tmp) / "proposer.db", genesis, verifier)
        validator = _Node(Path(tmp) / "validator.db", genesis, verifier)
        issues = [
            transactions.sign(CHAIN, central_bank, tx_pb.TransactionBody(
                signer="central-bank", valid_until_height=10, nonce=i + 1,
                issue=tx_pb.Issue(bank=b, amount=10**15))).to_proto()
            for i, b in enumerate(BANKS)
        ]
        for node in (proposer, validator):
            node.admitter.admit(issues, sender="central-bank", check_rules=True)
        funding = proposer.propose()
        proposer.chain.commit(funding)
        validator.chain.validate(funding)
        validator.chain.commit(funding)
        proposer.committed(funding)
        validator.committed(funding)

        for _ in range(rounds):
            height = proposer.chain.head().height
            submitted = payments(block, height)
            participants = proposer.chain.state.participants
            verifier.verify_transactions(
                [transactions.Transaction.from_proto(CHAIN, m) for m in submitted],
                lambda signer, known=participants: known[signer].key)
            with timed("admit_client"):
                proposer.admitter.admit(submitted, sender=None, check_rules=True)
            pooled = proposer.mempool.take(100_000, height=height + 1)
            with timed("share_encode"):
                wire = [t.to_proto().SerializeToString() for t in pooled]
            shared = [tx_pb.SignedTransaction.FromString(w) for w in wire]
            with timed("admit_peer"):
                validator.admitter.admit(shared, sender=None, check_rules=False, answer=False)
            with timed("build"):
                built = proposer.propose()
            with timed("encode"):
                data = built.encode()
            with timed("decode"):
                received = Block.decode(data, chain_id=CHAIN, known=validator.mempool.known)
            with timed("validate"):
                validator.chain.validate(received)
            with timed("commit_prop"):
                proposer.chain.commit(built)
            with timed("commit_val"):
                validator.chain.commit(received)
            if len(built.transactions) != block:
                raise RuntimeError(f"expected blocks of {block}, built {len(built.transactions)}")
            proposer.committed(built)
            validator.committed(received)

    median = {stage: statistics.median(v[2:]) / block * 1e6 for stage, v in times.items()}
    n = VALIDATORS
    median["weighted"] = (
        median["admit_client"] + (n - 1) * median["admit_peer"] + median["share_encode"]
        + median["build"] + median["encode"]
        + (n - 1) * (median["decode"] + median["validate"])
        + median["commit_prop"] + (n - 1) * median["commit_val"]
    ) / n
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--block", type=int, default=500, help="payments a block")
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args()
    for stage, value in run(args.block, args.rounds).items():
        label = f"weighted per validator of {VALIDATORS}" if stage == "weighted" else stage
        print(f"{label:32s} {value:7.2f} µs/payment")


if __name__ == "__main__":
    main()
