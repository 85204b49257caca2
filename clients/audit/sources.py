"""Where the chain comes from: a copy of a validator's SQLite file, or a validator over gRPC.

A source answers three questions: how high its chain goes (``head_height``), the blocks
from a height (``blocks``), and what it says the head state is (``head_state``), which
the audit holds against the state it replayed. A source that cannot be read raises
``SourceError``: the audit could not run, which is not the same as a finding.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from straits.common.v1 import common_pb2 as common_pb

from clients.audit.records import BlockRecord
from clients.sdk import ApiError, RegulatorClient, open_channel
from ledger import genesis as genesis_file
from ledger.errors import StraitsError
from ledger.genesis import Genesis
from ledger.roles import Role
from ledger.store import SqliteStore
from wire.tls import TlsFiles

# A gRPC page of blocks; the validator caps it at 256 and at about 3 MB.
PAGE = 256
READ_TIMEOUT_S = 60.0
HEAD_STATE_TRIES = 20


class SourceError(Exception):
    """The source could not be read at all (missing file, unreachable node, refused)."""


@dataclass(frozen=True)
class HeadState:
    """What a source says the state after its head block is, by account.

    ``balances`` and ``queued_out`` by bank; ``extra`` holds what only a store keeps
    (totals, the queue rows), compared field by field when present.
    """

    height: int
    balances: Mapping[str, int]
    queued_out: Mapping[str, int]
    issued: int | None = None
    redeemed: int | None = None
    next_seq: int | None = None
    queue: tuple[tuple, ...] | None = None
    suspended: Mapping[str, bool] | None = None


class Source(Protocol):
    name: str

    def head_height(self) -> int: ...

    def blocks(self, from_height: int, limit: int) -> list[BlockRecord]: ...

    def head_state(self) -> HeadState | None: ...

    def close(self) -> None: ...


class StoreSource:
    """A copy of a validator's SQLite file, opened read-only: the audit never writes it."""

    def __init__(self, path: Path) -> None:
        self.name = str(path)
        try:
            self._store = SqliteStore(path, read_only=True)
        except StraitsError as error:
            raise SourceError(f"cannot read {path}: {error}") from error

    def head_height(self) -> int:
        state = self._store.stored_state()
        return int(state.meta["height"]) if state else 0

    def blocks(self, from_height: int, limit: int) -> list[BlockRecord]:
        return [BlockRecord.from_stored(b) for b in self._store.stored_blocks(from_height, limit)]

    def head_state(self) -> HeadState | None:
        stored = self._store.stored_state()
        if stored is None:
            return None
        banks = [row for row in stored.accounts if row["role"] == Role.BANK]
        queued_out: dict[str, int] = {}
        for row in stored.queue:
            queued_out[row["payer"]] = queued_out.get(row["payer"], 0) + row["amount"]
        return HeadState(
            height=int(stored.meta["height"]),
            balances={row["id"]: row["balance"] for row in banks},
            queued_out={row["id"]: queued_out.get(row["id"], 0) for row in banks},
            issued=stored.meta["issued"],
            redeemed=stored.meta["redeemed"],
            next_seq=stored.meta["next_seq"],
            queue=tuple(
                (r["seq"], r["transfer_id"], r["payer"], r["payee"], r["amount"], r["priority"],
                 r["queued_height"], bool(r["held"]))
                for r in stored.queue
            ),
            suspended={row["id"]: bool(row["suspended"]) for row in stored.accounts},
        )

    def close(self) -> None:
        self._store.close()


class ValidatorSource:
    """A validator read over gRPC with the regulator's certificate (it sees every block)."""

    def __init__(self, name: str, address: str, tls: TlsFiles) -> None:
        self.name = name
        self._channel = open_channel(address, tls)
        self._client = RegulatorClient(self._channel, timeout=READ_TIMEOUT_S)

    def _call(self, what: str, call):  # type: ignore[no-untyped-def]
        try:
            return call()
        except ApiError as error:
            raise SourceError(f"{self.name}: {what}: {error.code.name}: {error.message}") from None

    def head_height(self) -> int:
        return int(self._call("GetHead", self._client.head).height)

    def blocks(self, from_height: int, limit: int) -> list[BlockRecord]:
        views = self._call(
            "GetBlocks", lambda: self._client.blocks(from_height, min(limit, PAGE))
        )
        return [BlockRecord.from_view(from_height + i, v) for i, v in enumerate(views)]

    def head_state(self) -> HeadState | None:
        # The accounts describe the head between two GetHead answers that agree.
        for _ in range(HEAD_STATE_TRIES):
            head = self.head_height()
            accounts = self._call("GetAccounts", lambda: list(self._client.accounts(1000)))
            if self.head_height() == head:
                break
        else:
            raise SourceError(f"{self.name}: the head moved during every read of the accounts")
        banks = [a for a in accounts if a.role == common_pb.PARTICIPANT_ROLE_BANK]
        return HeadState(
            height=head,
            balances={a.id: a.balance for a in banks},
            queued_out={a.id: a.queued_out for a in banks},
            suspended={a.id: a.suspended for a in accounts},
        )

    def close(self) -> None:
        self._channel.close()


@dataclass(frozen=True)
class NetworkIndex:
    """A network directory from ``straits network init``: genesis, validators, regulator."""

    directory: Path
    genesis: Path
    validators: Mapping[str, str]
    regulator: TlsFiles

    @classmethod
    def load(cls, directory: Path) -> NetworkIndex:
        path = Path(directory) / "network.json"
        try:
            index = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise SourceError(f"expected a network directory with network.json: {error}") from None
        base = Path(directory)
        regulator = index.get("regulator")
        if regulator is None:
            raise SourceError(f"{path} names no regulator certificate")
        return cls(
            directory=base,
            genesis=base / index["genesis"],
            validators={n["id"]: n["address"] for n in index["nodes"] if n["kind"] == "validator"},
            regulator=TlsFiles(
                base / index["ca"], base / regulator["certificate"], base / regulator["key"]
            ),
        )

    def validator(self, validator_id: str) -> ValidatorSource:
        address = self.validators.get(validator_id)
        if address is None:
            raise SourceError(
                f"expected one of {', '.join(sorted(self.validators))}, got {validator_id!r}"
            )
        return ValidatorSource(validator_id, address, self.regulator)


def load_genesis(path: Path) -> Genesis:
    try:
        return genesis_file.load(path)
    except StraitsError as error:
        raise SourceError(str(error)) from None
