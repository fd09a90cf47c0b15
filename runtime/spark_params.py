"""Fitted pipeline stages keep their parameters on the JVM between calls.

pyspark's ``JavaParams._transfer_params_to_java`` runs before every ``transform`` of a
stage and pushes each of its parameters to the stage's JVM object again: two to three
py4j round trips per parameter, most of the JVM calls of a one-row request, although a
loaded model's parameters do not change between requests. ``install()`` wraps it: a
stage pushes nothing when its Python-side parameters (set and default values) equal
what it pushed last time to the same JVM object. A changed parameter (``setX``), a copy
(``copy()``, ``transform(df, params)``: a new JVM object) or a value this module cannot
compare exactly (anything but numbers, text, booleans, None and lists, tuples and dicts
of them) pushes as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, cast

from pyspark.ml.wrapper import JavaParams

_PUSHED = "_moma_pushed_params"  # (the JVM object, the frozen parameters it got)
_ATOMS = (str, int, float, bool, type(None))


class _Unfrozen(Exception):
    """A parameter value that cannot be compared exactly."""


class _Wrapper(Protocol):
    """``_transfer_params_to_java`` as ``install()`` leaves it: marked as this module's,
    holding pyspark's own for ``uninstall()``."""

    _moma_cached: bool
    __wrapped__: Callable[..., None]  # pyspark's own: (stage) -> None

    def __call__(self, stage: JavaParams, /) -> None: ...


def install() -> None:
    """Wrap ``JavaParams._transfer_params_to_java`` (once per process)."""
    original = JavaParams._transfer_params_to_java
    if getattr(original, "_moma_cached", False):
        return

    def transfer_params_to_java(self: JavaParams) -> None:
        target, frozen = self._java_obj, _frozen_params(self)
        pushed = self.__dict__.get(_PUSHED)
        if frozen is not None and pushed is not None and pushed[0] is target and pushed[1] == frozen:
            return
        self.__dict__.pop(_PUSHED, None)
        original(self)
        if frozen is not None:
            self.__dict__[_PUSHED] = (target, frozen)

    wrapper = cast(_Wrapper, transfer_params_to_java)  # a function takes attributes
    wrapper._moma_cached = True
    wrapper.__wrapped__ = original
    JavaParams._transfer_params_to_java = transfer_params_to_java  # type: ignore[method-assign]  # the patch itself


def uninstall() -> None:
    """Restore pyspark's own ``_transfer_params_to_java`` (tests compare both)."""
    current = JavaParams._transfer_params_to_java
    if getattr(current, "_moma_cached", False):
        original = cast(_Wrapper, current).__wrapped__
        JavaParams._transfer_params_to_java = original  # type: ignore[method-assign]  # the patch undone


def _frozen_params(stage: JavaParams) -> tuple[Any, ...] | None:
    """The stage's set and default parameter values as comparable tuples; None if one
    cannot be compared exactly."""
    try:
        return (_frozen_map(stage._paramMap), _frozen_map(stage._defaultParamMap))
    except _Unfrozen:
        return None


def _frozen_map(params: dict[Any, Any]) -> tuple[Any, ...]:
    return tuple(sorted((param.name, _frozen(value)) for param, value in params.items()))


def _frozen(value: Any) -> Any:
    """An immutable copy that equals another exactly when the values are the same
    (the type is part of it: ``1 == 1.0 == True`` in Python, not on the JVM)."""
    if isinstance(value, _ATOMS):
        return (type(value), value)
    if isinstance(value, (list, tuple)):
        return (type(value), tuple(_frozen(item) for item in value))
    if isinstance(value, dict):
        return (dict, tuple((_frozen(key), _frozen(item)) for key, item in value.items()))
    raise _Unfrozen(type(value).__name__)
