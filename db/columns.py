"""Column types that refuse, on every backend, what one supported backend cannot store.

SQLite stores strings longer than their column, 64-bit integers in 32-bit columns, NUL characters and
NaN inside JSON, and turns a NaN float into NULL; PostgreSQL refuses the first four and stores a NaN
float. These types check a value in Python before it is written, so both backends store or refuse the
same values (UnstorableValueError, wrapped by SQLAlchemy in a StatementError). Comparisons bind with the
plain type: a lookup of a value that cannot be stored finds nothing instead of failing (see ``equals``).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    DateTime,
    Float,
    Integer,
    SQLColumnExpression,
    String,
    Text,
    false,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

from db.errors import UnstorableValueError

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def text_problem(value: str) -> str | None:
    """Why no backend can store ``value`` as text (NUL, lone surrogate), or None."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (a lone surrogate)"
    return None


def json_problem(value: Any, path: str = "value") -> str | None:
    """Where and why a JSON value cannot be stored alike on every backend (NaN, infinity, bad text), or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{path} is {value}: JSON numbers must be finite"
    if isinstance(value, str) and (problem := text_problem(value)):
        return f"{path} {problem}"
    if isinstance(value, dict):
        for key, item in value.items():
            if problem := text_problem(str(key)):
                return f"a key of {path} {problem}"
            if problem := json_problem(item, f"{path}.{key}"):
                return problem
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if problem := json_problem(item, f"{path}[{index}]"):
                return problem
    return None


def equals(column: SQLColumnExpression[Any], value: str) -> ColumnElement[bool]:
    """``column == value``, or false when ``value`` is text that no row can hold (so the query finds nothing)."""
    return false() if text_problem(value) else column == value


class _Checked(TypeDecorator[Any]):
    """Checks bound values with ``check``; comparisons bind with the plain type (see ``equals``)."""

    cache_ok = True

    def check(self, value: Any) -> None:
        raise NotImplementedError

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is not None:
            self.check(value)
        return value

    def coerce_compared_value(self, op: Any, value: Any) -> TypeEngine[Any]:
        return self.impl_instance


class BoundedString(_Checked):
    """VARCHAR(n): at most n characters, no NUL, valid Unicode."""

    impl = String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length  # also part of the cache key: columns of different lengths are different types

    def check(self, value: str) -> None:
        if len(value) > self.length:
            raise UnstorableValueError(f"text of {len(value)} characters is longer than {self.length}")
        if problem := text_problem(value):
            raise UnstorableValueError(f"text {problem}")


class CheckedText(_Checked):
    """TEXT of any length, no NUL, valid Unicode."""

    impl = Text
    cache_ok = True

    def check(self, value: str) -> None:
        if problem := text_problem(value):
            raise UnstorableValueError(f"text {problem}")


class Int32(_Checked):
    """A 32-bit signed integer (PostgreSQL's integer; SQLite would store 64 bits)."""

    impl = Integer
    cache_ok = True

    def check(self, value: int) -> None:
        if not -INT32_MAX - 1 <= value <= INT32_MAX:
            raise UnstorableValueError(f"integer {value} is outside the 32-bit range")


class Int64(_Checked):
    """A 64-bit signed integer."""

    impl = BigInteger
    cache_ok = True

    def check(self, value: int) -> None:
        if not -INT64_MAX - 1 <= value <= INT64_MAX:
            raise UnstorableValueError(f"integer {value} is outside the 64-bit range")


class FiniteFloat(_Checked):
    """A double that is finite (SQLite turns NaN into NULL, PostgreSQL stores it)."""

    impl = Float
    cache_ok = True

    def check(self, value: float) -> None:
        if not math.isfinite(value):
            raise UnstorableValueError(f"number {value} is not finite")


class CheckedJSON(_Checked):
    """JSON whose numbers are finite and whose strings are storable (PostgreSQL's json refuses NaN)."""

    impl = JSON
    cache_ok = True

    def check(self, value: Any) -> None:
        if problem := json_problem(value):
            raise UnstorableValueError(f"JSON {problem}")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and read back aware (SQLite keeps no offset; naive values are taken as UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
