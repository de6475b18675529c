"""Hypothesis strategies for any valid instance of a vidvpr record (`vidvpr.core.records.Record`),
built from the pydantic model itself: its fields' types, their bounds and patterns, optional
fields left out or given. A drawn instance is one the record's writer could write; instances its
own validators refuse are rejected, as its constructor would refuse them.

Integers and lists are drawn small more often than not, so that fields a model validator ties
together (a count and a list's length, say) agree often enough to be drawn.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import types
import typing
from functools import cache
from typing import Any, Literal

from hypothesis import assume
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

import vidvpr
from vidvpr.core.records import Record

LOOKAROUND = re.compile(r"\(\?<?[=!]")
json_leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                        st.text(max_size=8))
json_values = st.recursive(json_leaves, lambda children: st.lists(children, max_size=3)
                           | st.dictionaries(st.text(max_size=6), children, max_size=3), max_leaves=6)


def record_kinds() -> list[type[Record]]:
    """Every Record subclass vidvpr defines (all of its modules imported), by module and name."""
    for module in pkgutil.walk_packages(vidvpr.__path__, "vidvpr."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    found, stack = set(), [Record]
    while stack:
        for sub in stack.pop().__subclasses__():
            found.add(sub)
            stack.append(sub)
    return sorted(found, key=lambda kind: (kind.__module__, kind.__name__))


def _bounds(metadata: list[Any]) -> dict[str, Any]:
    """gt/ge/lt/le, min_length/max_length and pattern from a field's metadata (annotated-types,
    pydantic's FieldInfo and StringConstraints alike)."""
    found: dict[str, Any] = {}
    for item in metadata:
        inner = getattr(item, "metadata", None)
        if isinstance(inner, list):
            found.update(_bounds(inner))
        for name in ("gt", "ge", "lt", "le", "min_length", "max_length", "pattern"):
            value = getattr(item, name, None)
            if value is not None and not callable(value):
                found[name] = value
    return found


def _text(bounds: dict[str, Any]) -> st.SearchStrategy[str]:
    """Any text (up to 12 characters unless the field allows more), or text matching the field's pattern."""
    pattern = bounds.get("pattern")
    low, high = bounds.get("min_length", 0), bounds.get("max_length")
    if pattern is None:
        return st.text(min_size=low, max_size=max(low, 12 if high is None else high))
    if LOOKAROUND.search(pattern):  # Hypothesis cannot generate these: draw text and keep what matches
        matching = st.text(min_size=max(1, low), max_size=12).filter(lambda text: re.search(pattern, text) is not None)
    else:
        matching = st.from_regex(pattern, fullmatch=True)
    return matching.filter(lambda text: low <= len(text) <= (len(text) if high is None else high))


def _number(kind: type, bounds: dict[str, Any]) -> st.SearchStrategy[Any]:
    if kind is int:
        low = bounds.get("ge", bounds["gt"] + 1 if "gt" in bounds else None)
        high = bounds.get("le", bounds["lt"] - 1 if "lt" in bounds else None)
        small_low, small_high = max(0, low if low is not None else 0), min(3, high if high is not None else 3)
        full = st.integers(low, high)
        return st.one_of(st.integers(small_low, small_high), full) if small_low <= small_high else full
    low = bounds.get("ge", bounds.get("gt"))
    high = bounds.get("le", bounds.get("lt"))
    return st.floats(low, high, exclude_min="gt" in bounds, exclude_max="lt" in bounds, allow_nan=False,
                     allow_infinity=False)


def strategy_for(annotation: Any, metadata: list[Any] | None = None) -> st.SearchStrategy[Any]:
    """Values of a field typed `annotation` (with its constraints `metadata`), as a writer passes them."""
    metadata = list(metadata or [])
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return strategy_for(args[0], metadata + list(args[1:]))
    bounds = _bounds(metadata)
    if annotation is typing.Any or annotation is object:
        return json_values
    if annotation is type(None) or annotation is None:
        return st.none()
    if origin is Literal:
        return st.sampled_from(args)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(strategy_for(arg, metadata) for arg in args))
    if annotation is bool:
        return st.booleans()
    if annotation in (int, float):
        return _number(annotation, bounds)
    if annotation is str:
        return _text(bounds)
    size = {"min_size": bounds.get("min_length", 0), "max_size": max(bounds.get("min_length", 0), 3)}
    if annotation in (list, tuple):
        return st.lists(json_values, **size)
    if annotation is dict:
        return st.dictionaries(st.text(max_size=6), json_values, max_size=3)
    if origin is list:
        return st.lists(strategy_for(args[0]), **size)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return st.lists(strategy_for(args[0]), **size).map(tuple)
        return st.tuples(*(strategy_for(arg) for arg in args))
    if origin is dict:
        return st.dictionaries(strategy_for(args[0]), strategy_for(args[1]), max_size=3)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return model_data(annotation).map(lambda data: _built(annotation, data))
    raise NotImplementedError(f"no strategy for {annotation!r}")


def _built(model: type[BaseModel], data: dict[str, Any]) -> BaseModel:
    try:
        return model(**data)
    except ValidationError:
        assume(False)
        raise


def _frame_times(data: dict[str, Any]) -> dict[str, Any]:
    """One of rule and time_s, one of the index list and its rule, lists as long as `frames`."""
    listed = [data[name] for name in ("time_s", "source_frame_index") if data.get(name) is not None]
    data["rule"] = None if data.get("time_s") is not None else "time_s[i] = i / fps"
    data["source_frame_index_rule"] = None if data.get("source_frame_index") is not None else "source_frame_index[i] = i"
    if listed:
        data["frames"] = len(listed[0])
    return data


def _imported_source(data: dict[str, Any]) -> dict[str, Any]:
    """Images listed exactly for a sequence of images, one name a frame."""
    if data["kind"] == "images":
        data["images"] = data.get("images") or ["0.png"]
        data["frames"] = len(data["images"])
    else:
        data.pop("images", None)
    return data


def _view_sidecar(data: dict[str, Any]) -> dict[str, Any]:
    """A view's frames as its timestamps count them; an imported view's kind, source and camera."""
    data["frames"] = data["timestamps"].frames
    data["kind"] = "imported_view_video" if data.get("camera") is not None else "view_video"
    return data


def _calibration(data: dict[str, Any]) -> dict[str, Any]:
    """Lens centres on the canvas (any point of it)."""
    width, height = data["canvas_width_px"], data["canvas_height_px"]
    data["lenses"] = tuple(lens.model_copy(update={"centre_x_px": abs(lens.centre_x_px) % (width + 1),
                                                   "centre_y_px": abs(lens.centre_y_px) % (height + 1)})
                           for lens in data["lenses"])
    return data


COHERENT = {"FrameTimes": _frame_times, "ImportedSourceRecord": _imported_source, "SliceSidecar": _view_sidecar,
            "FisheyeCalibration": _calibration}


@cache
def model_data(model: type[BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments for `model`: every required field, and any of the optional ones (fields its
    validators tie together made to agree, see COHERENT)."""
    required, optional = {}, {}
    for name, field in model.model_fields.items():
        if name == "schema_id":  # Record.__init__ sets it
            continue
        values = st.deferred(lambda field=field: strategy_for(field.annotation, field.metadata))
        (required if field.is_required() else optional)[name] = values
    drawn = st.fixed_dictionaries(required, optional=optional)
    return drawn.map(COHERENT[model.__name__]) if model.__name__ in COHERENT else drawn


def records(kind: type[Record]) -> st.SearchStrategy[Record]:
    """Valid instances of the record `kind` (Hypothesis rejects the ones its validators refuse)."""
    return model_data(kind).map(lambda data: _built(kind, data))
