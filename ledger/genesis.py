"""Genesis: the one file that founds a network, loaded and validated as a value.

``load(path)`` / ``Genesis.from_dict(d)`` check every field and raise ``GenesisError``
whose ``field`` names the bad one (``participants[2].key``); ``to_dict`` / ``save`` write
the same JSON back. Parameters may be omitted and take the defaults below; an unknown
key anywhere is refused, so a typo never silently becomes a default.

The genesis hash (the parent hash of block 1) is SHA-256 over
``codec.signing_bytes(chain_id, "genesis", canonical JSON)``: sorted keys, no spaces.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ledger import codec
from ledger.errors import BadKeyError, GenesisError, expected
from ledger.keys import PublicKey
from ledger.roles import PARTICIPANT_ROLES, Role
from ledger.transaction import INT64_MAX, MAX_ID_LENGTH, MAX_TEXT_LENGTH

GENESIS = "genesis"

# ISO 9362 business identifier code (BIC): party, country, location, optional branch.
BIC_PATTERN = re.compile(r"[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?")


@dataclass(frozen=True, slots=True)
class Parameters:
    max_block_transactions: int = 2000
    max_transaction_lifetime: int = 256
    round_timeout_ms: int = 2000
    max_round_timeout_ms: int = 30000
    block_interval_ms: int = 100
    heartbeat_ms: int = 5000

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ParticipantSpec:
    id: str
    role: Role
    name: str
    key: PublicKey
    # Optional so that genesis files written before BICs existed load, and keep their hash.
    bic: str = ""


@dataclass(frozen=True, slots=True)
class ValidatorSpec:
    id: str
    key: PublicKey


@dataclass(frozen=True, slots=True)
class Currency:
    code: str
    decimals: int


@dataclass(frozen=True)
class Genesis:
    chain_id: str
    currency: Currency
    genesis_time_ms: int
    participants: tuple[ParticipantSpec, ...]
    validators: tuple[ValidatorSpec, ...]
    parameters: Parameters

    @property
    def central_bank(self) -> ParticipantSpec:
        return next(p for p in self.participants if p.role == Role.CENTRAL_BANK)

    def participant_by_bic(self, bic: str) -> ParticipantSpec | None:
        """The participant with this BIC; an 8-character BIC also matches its XXX branch."""
        wanted = bic[:8] if bic.endswith("XXX") else bic
        return next(
            (p for p in self.participants if p.bic and (p.bic[:8] if p.bic.endswith("XXX")
                                                         else p.bic) == wanted),
            None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "currency": {"code": self.currency.code, "decimals": self.currency.decimals},
            "genesis_time_ms": self.genesis_time_ms,
            "participants": [_participant_dict(p) for p in self.participants],
            "validators": [{"id": v.id, "key": v.key.to_text()} for v in self.validators],
            "parameters": self.parameters.to_dict(),
        }

    def canonical_bytes(self) -> bytes:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()

    @property
    def hash(self) -> bytes:
        return codec.sha256(codec.signing_bytes(self.chain_id, GENESIS, self.canonical_bytes()))

    def save(self, path: Path | str) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, data: object) -> Genesis:
        root = _mapping(
            data,
            "genesis",
            {"chain_id", "currency", "genesis_time_ms", "participants", "validators", "parameters"},
            optional={"parameters"},
        )
        currency = _mapping(root["currency"], "currency", {"code", "decimals"})
        code = _text(currency["code"], "currency.code", max_length=8)
        if not (code.isascii() and code.isalpha() and code.isupper()):
            raise GenesisError(
                expected("an upper-case currency code such as 'SGD'", code), field="currency.code"
            )
        participants = tuple(
            _participant(p, f"participants[{i}]")
            for i, p in enumerate(_list(root["participants"], "participants"))
        )
        _distinct([p.id for p in participants], "participants", "id")
        _distinct_bics(participants)
        central = [p for p in participants if p.role == Role.CENTRAL_BANK]
        if len(central) != 1:
            raise GenesisError(
                expected("exactly one central_bank participant", len(central)), field="participants"
            )
        validators = tuple(
            _validator(v, f"validators[{i}]")
            for i, v in enumerate(_list(root["validators"], "validators"))
        )
        _distinct([v.id for v in validators], "validators", "id")
        return cls(
            chain_id=_id(root["chain_id"], "chain_id"),
            currency=Currency(code, _integer(currency["decimals"], "currency.decimals", 0, 18)),
            genesis_time_ms=_integer(root["genesis_time_ms"], "genesis_time_ms", 0, INT64_MAX),
            participants=participants,
            validators=validators,
            parameters=_parameters(root.get("parameters", {})),
        )


def load(path: Path | str) -> Genesis:
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise GenesisError(f"expected a readable genesis file at {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise GenesisError(f"expected JSON in {path}: {exc}") from exc
    return Genesis.from_dict(data)


def save(genesis: Genesis, path: Path | str) -> None:
    genesis.save(path)


def _mapping(
    value: object, field: str, keys: set[str], optional: set[str] = frozenset()
) -> Mapping:
    if not isinstance(value, Mapping):
        raise GenesisError(expected("an object", type(value).__name__), field=field)
    unknown = sorted(set(value) - keys)
    if unknown:
        raise GenesisError(
            expected(f"only the keys {sorted(keys)}", unknown[0]),
            field=f"{field}.{unknown[0]}" if field != "genesis" else unknown[0],
        )
    for key in sorted(keys - optional):
        if key not in value:
            raise GenesisError(
                "expected a value, got none", field=key if field == "genesis" else f"{field}.{key}"
            )
    return value


def _list(value: object, field: str) -> list:
    if not isinstance(value, list) or not value:
        raise GenesisError(expected("a non-empty list", value), field=field)
    return value


def _integer(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise GenesisError(expected(f"an integer in {low}..{high}", value), field=field)
    return value


def _text(value: object, field: str, max_length: int = MAX_TEXT_LENGTH) -> str:
    if (
        not isinstance(value, str)
        or not value
        or len(value) > max_length
        or not value.isprintable()
    ):
        raise GenesisError(
            expected(f"printable text of 1..{max_length} characters", value), field=field
        )
    return value


def _id(value: object, field: str) -> str:
    return _text(value, field, MAX_ID_LENGTH)


def _key(value: object, field: str) -> PublicKey:
    if not isinstance(value, str):
        raise GenesisError(expected("a key as '<type>:<base64>'", value), field=field)
    try:
        return PublicKey.from_text(value)
    except BadKeyError as exc:
        raise GenesisError(exc.detail, field=field) from exc


def _participant_dict(p: ParticipantSpec) -> dict[str, str]:
    entry = {"id": p.id, "role": p.role, "name": p.name, "key": p.key.to_text()}
    if p.bic:
        entry["bic"] = p.bic
    return entry


def _bic(value: object, field: str) -> str:
    if not isinstance(value, str) or not BIC_PATTERN.fullmatch(value):
        raise GenesisError(
            expected("a BIC of 8 or 11 upper-case letters and digits such as 'BNKASGS0'", value),
            field=field,
        )
    return value


def _participant(value: object, field: str) -> ParticipantSpec:
    p = _mapping(value, field, {"id", "role", "name", "key", "bic"}, optional={"bic"})
    if p["role"] not in PARTICIPANT_ROLES:
        roles = [r.value for r in PARTICIPANT_ROLES]
        raise GenesisError(expected(f"one of {roles}", p["role"]), field=f"{field}.role")
    return ParticipantSpec(
        id=_id(p["id"], f"{field}.id"),
        role=Role(p["role"]),
        name=_text(p["name"], f"{field}.name"),
        key=_key(p["key"], f"{field}.key"),
        bic=_bic(p["bic"], f"{field}.bic") if "bic" in p else "",
    )


def _distinct_bics(participants: tuple[ParticipantSpec, ...]) -> None:
    seen: set[str] = set()
    for i, p in enumerate(participants):
        # BANKSGS0 and BANKSGS0XXX name the same institution.
        key = p.bic[:8] if p.bic.endswith("XXX") else p.bic
        if key and key in seen:
            raise GenesisError(expected("distinct bics", p.bic), field=f"participants[{i}].bic")
        seen.add(key)


def _validator(value: object, field: str) -> ValidatorSpec:
    v = _mapping(value, field, {"id", "key"})
    return ValidatorSpec(_id(v["id"], f"{field}.id"), _key(v["key"], f"{field}.key"))


def _distinct(ids: list[str], field: str, attribute: str) -> None:
    seen: set[str] = set()
    for i, value in enumerate(ids):
        if value in seen:
            raise GenesisError(
                expected(f"distinct {attribute}s", value), field=f"{field}[{i}].{attribute}"
            )
        seen.add(value)


def _parameters(value: object) -> Parameters:
    names = {f.name for f in fields(Parameters)}
    given = _mapping(value, "parameters", names, optional=names)
    checked = {name: _integer(v, f"parameters.{name}", 1, 2**31 - 1) for name, v in given.items()}
    parameters = Parameters(**checked)
    if parameters.max_round_timeout_ms < parameters.round_timeout_ms:
        raise GenesisError(
            expected(
                f"at least round_timeout_ms ({parameters.round_timeout_ms})",
                parameters.max_round_timeout_ms,
            ),
            field="parameters.max_round_timeout_ms",
        )
    return parameters
