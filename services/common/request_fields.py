"""Checks every request field against what its type allows, before any servicer runs.

Protobuf accepts what the wire format can carry, which is more than the ledger can:
a ``uint64`` height of 2^64-1 cannot be bound in SQLite (an INTEGER is signed 64-bit)
and no height or time stamp that large means anything; an enum field takes any
number, although only the declared values mean something. So every request is walked
once after it parses: unsigned 64-bit fields must fit in int64 and enum fields must
hold a declared value, at any depth, repeated or not. Field semantics (a positive
amount, a known account) stay with the servicers.

Message types that hold no such field at any depth are skipped without a walk, so a
batch of signed transactions (bytes only) costs nothing here.
"""

from __future__ import annotations

import functools

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

INT64_MAX = 2**63 - 1
_U64 = (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64)
_ENUM = FieldDescriptor.TYPE_ENUM
_MESSAGE = FieldDescriptor.TYPE_MESSAGE


@functools.cache
def _needs_walk(descriptor: Descriptor) -> bool:
    return _walk_of(descriptor, set())


def _walk_of(descriptor: Descriptor, seen: set[str]) -> bool:
    if descriptor.full_name in seen:
        return False
    seen.add(descriptor.full_name)
    for field in descriptor.fields:
        if field.type in _U64 or field.type == _ENUM:
            return True
        if field.type == _MESSAGE and _walk_of(field.message_type, seen):
            return True
    return False


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def field_violation(message: Message, prefix: str = "") -> tuple[str, str] | None:
    """The first field out of its type's range as (path, what was expected), or None."""
    if not _needs_walk(message.DESCRIPTOR):
        return None
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        values = list(value) if _is_repeated(field) else [value]
        if field.type == _MESSAGE:
            if field.message_type.GetOptions().map_entry:
                continue
            for index, item in enumerate(values):
                where = f"{path}[{index}]." if _is_repeated(field) else f"{path}."
                found = field_violation(item, where)
                if found is not None:
                    return found
        elif field.type in _U64:
            for item in values:
                if item > INT64_MAX:
                    return path, f"expected a value of at most {INT64_MAX}, got {item}"
        elif field.type == _ENUM:
            known = field.enum_type.values_by_number
            for item in values:
                if item not in known:
                    names = ", ".join(v.name for v in field.enum_type.values)
                    return path, f"expected one of {names}, got {item}"
    return None
