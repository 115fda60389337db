"""Stand-ins for pyspark Columns and `pyspark.sql.functions`, so the compiler can run "dry".

Validation and schema derivation walk exactly the code that builds the real Spark expressions,
but with these stand-ins nothing needs a JVM or data: every operation returns a DryColumn, and
every lambda handed to a higher-order function (transform, filter, ...) is still called, so the
FHIRPath inside it is type-checked and its element accesses are recorded.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


class DryColumn:
    """Accepts any Column operation and returns itself."""

    def __getattr__(self, name: str) -> Callable[..., DryColumn]:
        return _dry_call

    def __getitem__(self, key: object) -> DryColumn:
        return self

    def __bool__(self) -> bool:
        raise ValueError("a Column has no truth value: use & | ~")

    def __hash__(self) -> int:
        return id(self)

    def _op(self, *_: object) -> DryColumn:
        return self

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _op  # type: ignore[assignment]
    __and__ = __or__ = __invert__ = __rand__ = __ror__ = _op
    __add__ = __sub__ = __mul__ = __truediv__ = __mod__ = __neg__ = _op
    __radd__ = __rsub__ = __rmul__ = __rtruediv__ = __rmod__ = _op


DRY = DryColumn()


def _dry_call(*args: Any, **kwargs: Any) -> DryColumn:
    for arg in list(args) + list(kwargs.values()):
        if callable(arg) and not isinstance(arg, DryColumn):
            arity = len(inspect.signature(arg).parameters)
            arg(*([DRY] * arity))
    return DRY


class DryFunctions:
    """Stand-in for `pyspark.sql.functions`: every function returns a DryColumn."""

    def __getattr__(self, name: str) -> Callable[..., DryColumn]:
        return _dry_call


DRY_FUNCTIONS = DryFunctions()
