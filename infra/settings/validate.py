"""One section of raw config into its model, with pydantic's errors told as `Problem`s (key path,
value, fix); a section with problems still yields a model, its bad values left at their defaults,
so the checks across sections still run and every problem is reported at once."""

from __future__ import annotations

import copy
import re
import types
from collections.abc import Mapping
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError

from infra.settings.fields import Problem

Loc = tuple[str | int, ...]

# Fixes for pydantic's own errors (the project's value types raise errors that carry theirs).
_FIXES = {"missing": "is required", "string_type": "must be a string", "model_type": "must be a map of settings",
          "dict_type": "must be a map of settings", "model_attributes_type": "must be a map of settings"}
_RETRIES = 8
_QUOTED = re.compile(r"'([^']*)'")


def key_path(prefix: str, loc: Loc) -> str:
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def validate_section(tp: Any, data: Any, prefix: str, *, tagged: Mapping[str, type[BaseModel]] | None = None
                     ) -> tuple[Any, list[Problem]]:
    """`data` validated as `tp`, and the problems of the first try. `tagged` maps the tags of a
    discriminated union to their models (pydantic puts the tag in an error's location)."""
    adapter: TypeAdapter[Any] = TypeAdapter(tp)
    problems: list[Problem] | None = None
    for _ in range(_RETRIES):
        try:
            return adapter.validate_python(data), problems or []
        except ValidationError as exc:
            errors = [(_untagged(e["loc"], tagged), e) for e in exc.errors()]
            if problems is None:
                problems = [_problem(tp, prefix, loc, e, tagged) for loc, e in errors]
            trimmed = _without(data, [loc if e["type"] != "missing" else loc[:-1] for loc, e in errors])
            if trimmed is None:
                break
            data = trimmed
    return None, problems or []


def _untagged(loc: Loc, tagged: Mapping[str, type[BaseModel]] | None) -> Loc:
    return loc[1:] if tagged and loc and loc[0] in tagged else loc


def _problem(tp: Any, prefix: str, loc: Loc, error: Any, tagged: Mapping[str, type[BaseModel]] | None) -> Problem:
    kind, ctx = error["type"], error.get("ctx") or {}
    value = error["input"]
    if kind == "config":
        fix = error["msg"]
        loc = loc + tuple(ctx.get("at", ()))
        value = "****" if ctx.get("hide") else ctx.get("value", value)
    elif kind == "extra_forbidden":
        root = tagged[error["loc"][0]] if tagged and error["loc"] and error["loc"][0] in tagged else tp
        fix = f"unknown setting; expected one of: {', '.join(_keys_at(root, loc[:-1]))}"
    elif kind in ("literal_error", "union_tag_invalid"):
        fix = "must be one of: " + ", ".join(_QUOTED.findall(ctx.get("expected") or ctx.get("expected_tags") or ""))
        if kind == "union_tag_invalid":
            loc, value = ("provider",), ctx.get("tag")
    elif kind == "union_tag_not_found":
        loc, fix = ("provider",), "must be a string"
        value = value.get("provider") if isinstance(value, Mapping) else value
    else:
        fix = _FIXES.get(kind, error["msg"])
    if kind == "missing":
        value = None
    return Problem(key_path(prefix, loc), value, fix)


def _without(data: Any, locs: list[Loc]) -> Any:
    """A copy of `data` without the values at `locs` (each falls back to its default), or None
    when nothing could be taken out (a problem of the section as a whole)."""
    if any(not loc for loc in locs):
        return None
    data = copy.deepcopy(data)
    # Deepest and last first, so a list's later indices are gone before its earlier ones.
    for loc in sorted(set(locs), key=lambda loc: (len(loc), [str(p).zfill(8) for p in loc]), reverse=True):
        parent = data
        for part in loc[:-1]:
            try:
                parent = parent[part]
            except (KeyError, IndexError, TypeError):
                parent = None
                break
        in_list = isinstance(parent, list) and isinstance(loc[-1], int) and loc[-1] < len(parent)
        if (isinstance(parent, dict) and loc[-1] in parent) or in_list:
            del parent[loc[-1]]
        else:
            return None
    return data


def _keys_at(tp: Any, loc: Loc) -> list[str]:
    """The keys the model at `loc` below `tp` takes (for the fix of an unknown key)."""
    for part in loc:
        tp = _step(_bare(tp), part)
    model = _bare(tp)
    return model.keys() if isinstance(model, type) and hasattr(model, "keys") else []


def _bare(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType) and len([a for a in get_args(tp) if a is not type(None)]) == 1:
            tp = next(a for a in get_args(tp) if a is not type(None))
        else:
            return tp


def _step(tp: Any, part: str | int) -> Any:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, field in tp.model_fields.items():
            if part in (name, field.alias):
                return field.annotation
        return None
    args = get_args(tp)
    if get_origin(tp) in (tuple, list) and args:
        return args[0]
    if args:  # a mapping: its values
        return args[-1]
    return None
