"""Declared policy parameters: names, types, ranges, defaults, in one place per class.

A policy class lists its parameters in ``PARAMS`` as JSON-schema properties (``type``,
``minimum``/``maximum``, ``enum``, ``default``, ``description``)::

    class QueueThreshold(Policy):
        PARAMS = {"high": {"type": "number", "exclusiveMinimum": 0, "default": 3.0,
                           "description": "upscale above this many held requests per replica"}}

A class's parameters are those of its own ``PARAMS`` and of its bases' (a subclass may
redeclare one).  :func:`resolve_params` checks a policy file's ``params`` against them
(jsonschema) and fills in the defaults, so an unknown or out-of-range key fails before
anything runs, naming the key, with a close match when there is one.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import jsonschema


class ParamError(ValueError):
    """A policy parameter that is unknown, of the wrong type or out of range."""



def suggest(word: str, choices) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or ``""``."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""

def declared_params(cls: type) -> dict[str, dict[str, Any]] | None:
    """Every parameter ``cls`` declares, its bases' first; None if no class declares any."""
    out: dict[str, dict[str, Any]] = {}
    found = False
    for base in reversed(cls.__mro__):
        own = base.__dict__.get("PARAMS")
        if own is not None:
            found = True
            out.update(own)
    return out if found else None


def _schema(declared: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {"type": "object", "properties": dict(declared), "additionalProperties": False}


def resolve_params(cls: type, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """``params`` checked against ``cls``'s declared parameters, defaults filled in.

    Raises :class:`ParamError` with one short line naming the key.  A class that declares
    no parameters at all (a duck-typed policy not derived from ``Policy``) accepts none.
    """
    given = dict(params or {})
    declared = declared_params(cls)
    if declared is None:
        if given:
            raise ParamError(
                f"{cls.__name__} declares no parameters (a PARAMS dict), but params has "
                f"{', '.join(sorted(given))}"
            )
        return given
    unknown = [k for k in given if k not in declared]
    if unknown:
        k = unknown[0]
        raise ParamError(
            f"params.{k}: unknown parameter of {cls.__name__}{suggest(k, declared)}; "
            f"known: {', '.join(sorted(declared))}"
        )
    validator = jsonschema.Draft202012Validator(_schema(declared))
    errors = sorted(validator.iter_errors(given), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = ".".join(str(p) for p in e.absolute_path)
        raise ParamError(f"params.{where}: {e.message}")
    out = {k: spec["default"] for k, spec in declared.items() if "default" in spec}
    out.update(given)
    return out


def describe(cls: type) -> list[tuple[str, str, Any, str]]:
    """(name, type, default, description) of each declared parameter, for docs and errors."""
    rows = []
    for name, spec in sorted((declared_params(cls) or {}).items()):
        typ = spec.get("type", "any")
        if "enum" in spec:
            typ = "|".join(map(str, spec["enum"]))
        rows.append((name, str(typ), spec.get("default"), str(spec.get("description", ""))))
    return rows
