"""Amounts as people write them: what is accepted, what is refused and why."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvalidAmountError
from ledger.genesis import Currency
from ledger.money import format_amount, parse_amount, parse_minor
from ledger.transaction import INT64_MAX

SGD = Currency("SGD", 2)
JPY = Currency("JPY", 0)
BHD = Currency("BHD", 3)


@pytest.mark.parametrize(
    ("written", "minor"),
    [
        ("1000.00", 100_000),
        ("1,000.00", 100_000),
        ("SGD 1000", 100_000),
        ("1000 SGD", 100_000),
        ("sgd1,000.5", 100_050),
        ("0.01", 1),
        (" 12,345,678.9 ", 1_234_567_890),
        ("1000.", 100_000),
    ],
)
def test_amounts_as_people_write_them(written: str, minor: int) -> None:
    assert parse_amount(written, SGD) == minor


@pytest.mark.parametrize(
    ("written", "why"),
    [
        ("1.001", "at most 2 decimals for SGD"),
        ("USD 10", "an amount in SGD"),
        ("-5", "an amount such as"),
        ("0", "1..9223372036854775807"),
        ("0.00", "1..9223372036854775807"),
        ("99999999999999999999", "1..9223372036854775807"),
        ("1,00", "an amount such as"),
        ("1,0000.00", "an amount such as"),
        ("", "an amount such as"),
        ("abc", "an amount in SGD"),
        ("1e5", "an amount such as"),
        ("١٢", "an amount such as"),  # digits, but not ASCII ones
        ("SGD", "an amount such as"),
    ],
)
def test_amounts_that_are_refused_say_what_was_expected(written: str, why: str) -> None:
    with pytest.raises(InvalidAmountError) as refused:
        parse_amount(written, SGD)
    assert why in refused.value.detail and refused.value.field == "amount"


def test_a_currency_without_decimals_takes_none() -> None:
    assert parse_amount("1,500", JPY) == 1500
    with pytest.raises(InvalidAmountError, match="at most 0 decimals"):
        parse_amount("1.5", JPY)


def test_minor_units_are_positive_whole_numbers_within_int64() -> None:
    assert parse_minor("100000") == 100_000
    for bad in ("1.5", "-1", "0", str(INT64_MAX + 1), "1,000"):
        with pytest.raises(InvalidAmountError):
            parse_minor(bad)


def test_formatting_groups_thousands_and_keeps_every_decimal() -> None:
    assert format_amount(100_000, SGD) == "1,000.00"
    assert format_amount(-5, SGD, code=True) == "SGD -0.05"
    assert format_amount(1500, JPY) == "1,500"
    assert format_amount(1, BHD) == "0.001"


@given(st.integers(min_value=1, max_value=INT64_MAX),
       st.sampled_from([SGD, JPY, BHD, Currency("XTS", 18)]))
def test_what_is_formatted_parses_back_to_the_same_minor_units(minor: int, currency) -> None:
    assert parse_amount(format_amount(minor, currency, code=True), currency) == minor
    assert parse_amount(format_amount(minor, currency), currency) == minor
