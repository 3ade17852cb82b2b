"""Column types shared by the tables and the migrations: exact money and exact JSON.

SQLite has no exact decimal type: a ``NUMERIC`` column gives the value REAL (float) affinity, so
``Decimal("1234567890.123456789")`` comes back as ``1234567890.1234567`` (the test suite proves it).
``Money`` therefore stores the decimal's string on SQLite and an unconstrained ``NUMERIC`` (arbitrary
precision, scale kept) on PostgreSQL; both return the ``Decimal`` that went in. The price of strings on
SQLite: no arithmetic or ordering on money in SQL; repositories never need either.

JSON columns (follow settings, skip details) are written with Decimals as JSON *numbers* (exact digits)
and read back with non-integral numbers as ``Decimal``: the numbers behind a skip survive the round trip.
This module is imported by the migrations: change it only compatibly.
"""

from __future__ import annotations

from decimal import Decimal
from enum import Enum
from typing import Any

import msgspec
from sqlalchemy import Numeric, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine


class Money(TypeDecorator[Decimal]):
    """An exact ``Decimal``: NUMERIC on PostgreSQL, the decimal's text on SQLite."""

    impl = Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(64))
        return dialect.type_descriptor(Numeric(asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            # a float here would already have lost digits: refuse rather than store a guess
            raise TypeError(f"money must be a Decimal, got {type(value).__name__}")
        if not value.is_finite():
            raise ValueError(f"money must be finite, got {value}")
        if dialect.name == "sqlite":
            return str(value)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if isinstance(value, Decimal):
            return value
        return Decimal(str(value))


def _encode_extra(obj: Any) -> Any:
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise NotImplementedError(f"cannot store {type(obj).__name__} as JSON")


_encoder = msgspec.json.Encoder(enc_hook=_encode_extra, decimal_format="number")
_decoder = msgspec.json.Decoder(float_hook=Decimal)


def json_dumps(value: Any) -> str:
    """JSON text with Decimals as exact numbers (the engine's ``json_serializer``)."""
    return _encoder.encode(value).decode()


def json_loads(text: str | bytes) -> Any:
    """Parse JSON with every non-integral number as ``Decimal`` (the engine's ``json_deserializer``)."""
    return _decoder.decode(text)
