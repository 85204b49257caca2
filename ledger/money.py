"""Amounts as people write them, and back: ``1,000.00``, ``1000``, ``SGD 1000.5``.

The ledger counts integer minor units; people count in the network's currency with
its decimals (both from genesis). ``parse_amount`` accepts digits with an optional
decimal point, commas only as thousands separators in groups of three, and the
currency code before or after; it refuses more decimals than the currency has, a
sign, zero, another currency and anything past int64. ``format_amount`` writes the
form ``parse_amount`` reads back.
"""

from __future__ import annotations

import re

from ledger.errors import InvalidAmountError, expected
from ledger.genesis import Currency
from ledger.transaction import INT64_MAX

_NUMBER = re.compile(r"(?P<whole>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.(?P<fraction>[0-9]*))?")
_CODE = re.compile(r"[A-Za-z]{3,8}")
_MINOR = re.compile(r"[0-9]+")


def _split_code(text: str) -> tuple[str, str]:
    """('SGD', '1000') from 'SGD 1000', '1000 SGD', 'SGD1000' or ('', '1000')."""
    head = re.match(r"([A-Za-z]+)\s*(.*)$", text)
    if head:
        return head.group(1), head.group(2)
    tail = re.match(r"(.*?)\s*([A-Za-z]+)$", text)
    if tail:
        return tail.group(2), tail.group(1)
    return "", text


def parse_amount(text: str, currency: Currency) -> int:
    """Minor units of an amount written in ``currency``; ``InvalidAmountError`` says why not."""
    written = text.strip()
    code, number = _split_code(written)
    if code and (not _CODE.fullmatch(code) or code.upper() != currency.code):
        raise InvalidAmountError(expected(f"an amount in {currency.code}", text), field="amount")
    match = _NUMBER.fullmatch(number.strip())
    if not match:
        raise InvalidAmountError(
            expected(f"an amount such as 1,000.{'0' * currency.decimals} {currency.code}"
                     if currency.decimals else f"a whole amount such as 1,000 {currency.code}",
                     text),
            field="amount",
        )
    fraction = match.group("fraction") or ""
    if len(fraction) > currency.decimals:
        raise InvalidAmountError(
            expected(f"at most {currency.decimals} decimals for {currency.code}", text),
            field="amount",
        )
    whole = int(match.group("whole").replace(",", ""))
    minor = whole * 10**currency.decimals + int(fraction.ljust(currency.decimals, "0") or 0)
    return _checked(minor, text)


def parse_minor(text: str) -> int:
    """An amount given directly in minor units (``--minor``): a positive integer."""
    if not _MINOR.fullmatch(text.strip()):
        raise InvalidAmountError(expected("a positive whole number of minor units", text),
                                 field="amount")
    return _checked(int(text), text)


def _checked(minor: int, text: str) -> int:
    if not 0 < minor <= INT64_MAX:
        raise InvalidAmountError(
            expected(f"an amount of 1..{INT64_MAX} minor units", text), field="amount"
        )
    return minor


def format_amount(minor: int, currency: Currency, *, code: bool = False) -> str:
    """``1,000.00`` (``SGD 1,000.00`` with ``code``) for 100000 minor units of SGD."""
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10**currency.decimals)
    text = f"{sign}{whole:,}"
    if currency.decimals:
        text += f".{fraction:0{currency.decimals}d}"
    return f"{currency.code} {text}" if code else text
