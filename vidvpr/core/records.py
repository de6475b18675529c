"""Typed records: one pydantic model per file kind, used both to write the file and to read it.

A record's JSON carries a ``schema`` field ("vidvpr.<kind>/<version>"). Reading validates the
whole file against the model, so a renamed or missing field is an error at the reader, never a
silent ``None`` three calls later. Every problem (missing file, not JSON, a list where an object
belongs, a wrong field) is a one-line BadInput naming the file.
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vidvpr.core.atomic import write_json_atomic
from vidvpr.core.errors import BadInput
from vidvpr.core.text import printable

M = TypeVar("M", bound=BaseModel)


def validation_problem(exc: ValidationError) -> str:
    """The first problem of a pydantic error as 'where: what', for one-line messages."""
    # a misspelt key explains the "missing" error beside it: report it first
    first = min(exc.errors(), key=lambda error: error.get("type") != "extra_forbidden")
    where = ".".join(str(part) for part in first.get("loc", ()) if not _is_branch_name(part))
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    if first.get("type") == "extra_forbidden":
        message = "unknown key"
    elif first.get("type") == "missing":
        message = "missing"
    more = f" (and {len(exc.errors()) - 1} more problem{'s' if len(exc.errors()) > 2 else ''})" if len(exc.errors()) > 1 else ""
    return printable(f"{where or 'top level'}: {message}{more}")


def _is_branch_name(part: object) -> bool:
    """Location parts pydantic adds for union members and validators, not keys of the file."""
    if not isinstance(part, str):
        return False
    return (part == "__root__" or part[:1].isupper() or part in ("str", "int", "float", "bool", "list", "dict", "tuple")
            or part.startswith(("function-", "constrained-", "json-or-python", "tagged-union", "nullable")))


def read_text_file(path: Path, what: str) -> str:
    """A UTF-8 text file's contents (a byte-order mark is dropped), or BadInput naming the file:
    missing, a folder, unreadable, not text."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BadInput(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a folder, not a {what}") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        if _is_utf16(data):  # what Windows PowerShell and Notepad's "Unicode" write
            raise BadInput(f"{path}: UTF-16 text; save the {what} as UTF-8") from None
        raise BadInput(f"{path}: not a text file (expected a {what})") from None


def _is_utf16(data: bytes) -> bool:
    """Whether `data` looks like text in UTF-16 with a byte-order mark: it decodes, and is mostly
    ASCII as the files vidvpr reads are (a binary file may start with the same two bytes)."""
    if not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False
    try:
        text = data.decode("utf-16")
    except UnicodeDecodeError:
        return False
    return sum(char.isascii() for char in text) >= 0.9 * len(text)


def read_toml_file(path: Path, what: str) -> dict[str, Any]:
    """A parsed TOML file, or BadInput naming it."""
    text = read_text_file(path, what)
    try:
        return tomllib.loads(text)
    except ValueError as exc:  # TOMLDecodeError, or an integer beyond Python's digit limit
        raise BadInput(f"{path}: not valid TOML ({exc})") from None
    except RecursionError:
        raise BadInput(f"{path}: not valid TOML (nested too deeply)") from None


def read_json_file(path: Path, what: str = "JSON file") -> Any:
    """Parse a JSON file, or raise BadInput naming it (missing, unreadable, not JSON)."""
    text = read_text_file(path, what)
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise BadInput(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise BadInput(f"{path}: JSON nested too deeply") from None


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def read_json_object(path: Path, what: str = "JSON file") -> dict[str, Any]:
    """A JSON file that must hold an object."""
    data = read_json_file(path, what)
    if not isinstance(data, dict):
        raise BadInput(f"{path}: expected a JSON object in the {what}, found {type(data).__name__}")
    return data


def validate_data(model: type[M], data: Any, source: str) -> M:
    """Validate parsed TOML/JSON data against `model` the way JSON is validated (lists may fill
    tuples; in strict models a boolean is never a number); BadInput naming `source` and the key."""
    try:
        text = json.dumps(data, default=str, allow_nan=False)
    except RecursionError:
        raise BadInput(f"{source}: holds values that are not plain data (nested too deeply)") from None
    except ValueError:  # NaN or an infinity (TOML has nan and inf): say where
        where, value = _first_non_finite(data)
        raise BadInput(f"{source}: {where or 'top level'}: {value} is not allowed (numbers must be finite)") from None
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        raise BadInput(f"{source}: {validation_problem(exc)}") from None


def _first_non_finite(data: Any, where: str = "") -> tuple[str, float] | tuple[None, None]:
    """(dotted key path, value) of the first NaN or infinity in parsed TOML/JSON data, or (None, None)."""
    if isinstance(data, float) and not math.isfinite(data):
        return where, data
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, (list, tuple)) else ()
    for key, value in items:
        found = _first_non_finite(value, f"{where}.{key}" if where else str(key))
        if found[0] is not None:
            return found
    return None, None


class Strict(BaseModel):
    """Base of nested record parts: unknown keys are errors, numbers must be finite."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=True, defer_build=True)


class Record(Strict):
    """Base of every file vidvpr writes and reads back. Subclasses set SCHEMA and KIND."""

    SCHEMA: ClassVar[str]
    KIND: ClassVar[str] = "record"  # what the file is, in messages

    schema_id: str = Field(alias="schema")

    def __init__(self, **data: Any) -> None:
        if "schema" not in data and "schema_id" not in data:
            data["schema"] = self.SCHEMA
        super().__init__(**data)

    def to_json(self) -> dict[str, Any]:
        """The record as JSON data (field names as in the file)."""
        return self.model_dump(mode="json", by_alias=True)

    def save(self, path: Path) -> None:
        """Write the record atomically (temporary name, then rename)."""
        write_json_atomic(Path(path), self.to_json())

    @classmethod
    def from_data(cls, data: Any, source: str) -> Self:
        """Validate parsed JSON; BadInput naming `source` for anything that is not this record."""
        if not isinstance(data, dict):
            raise BadInput(f"{source}: expected a JSON object ({cls.KIND}), found {type(data).__name__}")
        found = data.get("schema")
        if found != cls.SCHEMA:
            raise BadInput(f"{source}: not a {cls.KIND} of this vidvpr version (schema {found!r}, expected {cls.SCHEMA!r})")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise BadInput(f"{source}: malformed {cls.KIND}: {validation_problem(exc)}") from None
        except RecursionError:
            raise BadInput(f"{source}: malformed {cls.KIND}: nested too deeply") from None

    @classmethod
    def load(cls, path: Path) -> Self:
        """Read and validate the record at `path`, or raise BadInput naming the file."""
        return cls.from_data(read_json_file(path, cls.KIND), str(path))

    @classmethod
    def load_or_none(cls, path: Path) -> Self | None:
        """The record, or None when it is missing or not a valid record (an output not done)."""
        try:
            return cls.load(path)
        except BadInput:
            return None


def finite_or_none(value: float | None) -> float | None:
    """`value`, or None for None, NaN and infinities (JSON has no NaN)."""
    return None if value is None or not math.isfinite(value) else float(value)


class FileRecord(Strict):
    """An input or output file as sidecars record it: path, size and content hash."""

    path: str
    bytes: int
    hash: str

    @classmethod
    def of(cls, path: Path, relative_to: Path | None = None) -> FileRecord:
        """Record `path`; its path is stored relative to `relative_to` (POSIX form) when given."""
        from vidvpr.core.provenance import sha256_file

        path = Path(path)
        shown = path.resolve().relative_to(Path(relative_to).resolve()).as_posix() if relative_to else str(path)
        return cls(path=shown, bytes=path.stat().st_size, hash=sha256_file(path))

    def matches(self, path: Path, check_hash: bool = False) -> bool:
        """Whether the file at `path` is still the one recorded: same size (and hash if asked).

        The hash check is cheap on reruns: hashes are cached by file identity.
        """
        from vidvpr.core.provenance import sha256_file

        try:
            if not Path(path).is_file() or Path(path).stat().st_size != self.bytes:
                return False
            return not check_hash or sha256_file(Path(path)) == self.hash
        except OSError:
            return False
