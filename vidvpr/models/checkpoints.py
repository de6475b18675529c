"""Reading and writing model checkpoints. Every checkpoint is untrusted input.

Files are read with ``torch.load(weights_only=True)``: only tensors, containers, numbers and
strings, plus the few numpy globals that training scripts' pickles carry (numpy scalars such as
the recalls pytorch-NetVlad stores, and their dtypes). The allow-list is active only during the
call. A file that needs any other global is refused, never executed, with the global named.

Key layouts of pytorch-NetVlad and LoQI-VPR are accepted as they are: a ``state_dict`` entry or a
bare state dict; ``module.`` segments of DataParallel (``encoder.module.0.weight``,
``module.pool.centroids``) and ``_orig_mod.`` of torch.compile are removed.
"""

from __future__ import annotations

import logging
import pickle
import re
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vidvpr.core.atomic import atomic_output
from vidvpr.core.errors import BadInput
from vidvpr.core.text import printable

LOG = logging.getLogger(__name__)

VIDVPR_CHECKPOINT_FORMAT = "vidvpr.checkpoint/1"
WRAPPER_SEGMENT = re.compile(r"(^|\.)(module|_orig_mod)\.")
MAX_KEYS_SHOWN = 4

# How torch's weights-only unpickler names what it refused (a global, or a class to build)
REFUSAL_PATTERNS = (re.compile(r"GLOBAL (\S+)"), re.compile(r"but got <class '([^']+)'>"))


def _numpy_scalar_constructor() -> Any:
    try:
        from numpy._core.multiarray import scalar  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import scalar
    return scalar


def _allowed_globals() -> list[Any]:
    """numpy scalars and dtypes, under the module names of numpy 1.x and 2.x pickles."""
    scalar = _numpy_scalar_constructor()
    allowed: list[Any] = [(scalar, "numpy.core.multiarray.scalar"), (scalar, "numpy._core.multiarray.scalar"),
                          np.dtype]
    dtype_classes = ("BoolDType", "Int8DType", "Int16DType", "Int32DType", "Int64DType", "UInt8DType",
                     "UInt16DType", "UInt32DType", "UInt64DType", "Float16DType", "Float32DType", "Float64DType")
    dtypes = getattr(np, "dtypes", None)
    allowed += [getattr(dtypes, name) for name in dtype_classes if hasattr(dtypes, name)]
    return allowed


def _torch_reason(message: str) -> str:
    """The unpickler's own words inside torch's multi-paragraph weights-only message."""
    core = message.split("Check the documentation of torch.load")[0].strip()
    if "WeightsUnpickler error:" in core:
        core = core.rsplit("WeightsUnpickler error:", 1)[1]
    elif core.startswith("Weights only load failed"):
        core = core.rsplit("\n\n", 1)[-1]
    return next((line.strip() for line in core.splitlines() if line.strip()), "unknown error")


def _refused_global(reason: str) -> str | None:
    for pattern in REFUSAL_PATTERNS:
        found = pattern.search(reason)
        if found:
            return found.group(1).rstrip(".,;:")
    return None


def _shortened(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _not_torch_file(path: Path) -> str | None:
    """Why `path` cannot be a torch.save file, judged from its first bytes (None: it may be one).

    torch.save writes a zip archive (torch >= 1.6) or a pickle of protocol 2 or above (older, and
    `_use_new_zipfile_serialization=False`); the first releases wrote a tar archive."""
    try:
        with path.open("rb") as handle:
            head = handle.read(512)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if not head:
        return "the file is empty"
    if head.startswith((b"PK\x03\x04", b"\x80")) or head[257:262] == b"ustar":
        return None
    return f"neither a zip archive nor a pickle (it starts with {head[:12]!r})"


def _cut_short_zip(path: Path) -> bool:
    """A zip archive (torch.save's format since torch 1.6) without the end-of-archive record every
    whole archive ends with: a file cut short, as an interrupted download or copy leaves it. torch
    says "[Errno 22] Invalid argument" or an internal miniz error for it."""
    with path.open("rb") as handle:
        if handle.read(4) != b"PK\x03\x04":
            return False
    return not zipfile.is_zipfile(path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict at `path`, loaded on the CPU without executing any code from it.

    Missing, unreadable, truncated or non-torch files, files that need a global outside the
    allow-list, and files that hold something other than a dict are one-line BadInputs. torch's
    own warnings while reading (e.g. about a plain pickle's protocol) are logged at debug level,
    not printed: a refused file is one line.
    """
    path = Path(path)
    if not path.exists():
        raise BadInput(f"{path}: checkpoint not found")
    if path.is_dir():
        raise BadInput(f"{path}: is a folder, not a checkpoint file")
    problem = _not_torch_file(path)
    if problem:
        raise BadInput(f"{path}: not a PyTorch checkpoint: {problem}")
    if _cut_short_zip(path):
        raise BadInput(f"{path}: not a readable PyTorch checkpoint: the file is cut short (a zip archive without "
                       "its end; an interrupted download or copy?)")
    try:
        with warnings.catch_warnings(record=True) as caught, torch.serialization.safe_globals(_allowed_globals()):
            warnings.simplefilter("always")
            try:
                data = torch.load(path, map_location="cpu", weights_only=True)
            finally:
                for warning in caught:
                    LOG.debug("%s: torch.load: %s", path, warning.message)
    except MemoryError:
        raise
    except Exception as exc:  # torch raises many types for damaged files; all are bad input here
        reason = _torch_reason(str(exc))
        refused = _refused_global(reason) if isinstance(exc, pickle.UnpicklingError) else None
        if refused:
            raise BadInput(f"{path}: refused to load: the checkpoint needs {refused}, which is not plain "
                           f"data (only tensors, numbers, strings, containers and numpy scalars load)") from None
        raise BadInput(f"{path}: not a readable PyTorch checkpoint ({_shortened(reason)})") from None
    if not isinstance(data, Mapping):
        raise BadInput(f"{path}: expected a checkpoint dict, found {type(data).__name__}")
    return dict(data)


def is_vidvpr_checkpoint(checkpoint: Mapping[str, Any]) -> bool:
    """Whether a loaded checkpoint was written by `save_checkpoint` (it carries model and options)."""
    return checkpoint.get("format") == VIDVPR_CHECKPOINT_FORMAT


def unwrap_key(key: str) -> str:
    """`key` without DataParallel's ``module.`` and torch.compile's ``_orig_mod.`` segments."""
    while True:
        stripped = WRAPPER_SEGMENT.sub(r"\1", key)
        if stripped == key:
            return key
        key = stripped


def state_dict_of(checkpoint: Mapping[str, Any], source: str) -> dict[str, torch.Tensor]:
    """The model weights of a checkpoint (its ``state_dict``, or the checkpoint itself), unwrapped."""
    state = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state, Mapping):
        raise BadInput(f"{source}: 'state_dict' is a {type(state).__name__}, not a dict of tensors")
    unwrapped: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise BadInput(f"{source}: not a model checkpoint: entry {key!r} is a {type(value).__name__}, not a tensor")
        name = unwrap_key(str(key))
        if name in unwrapped:
            raise BadInput(f"{source}: weights for {name!r} appear twice (with and without a module. prefix)")
        unwrapped[name] = value
    if not unwrapped:
        raise BadInput(f"{source}: checkpoint holds no weights")
    return unwrapped


def _listing(keys: list[str]) -> str:
    """The first keys, comma-separated (a checkpoint's keys are any strings: `printable`)."""
    shown = ", ".join(printable(key) for key in keys[:MAX_KEYS_SHOWN])
    return shown + (f" (+{len(keys) - MAX_KEYS_SHOWN} more)" if len(keys) > MAX_KEYS_SHOWN else "")


def state_mismatch(expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor]) -> str | None:
    """What keeps `found` from loading where `expected` is: missing, unexpected keys and shapes."""
    missing = [key for key in expected if key not in found]  # in model order
    unexpected = [key for key in found if key not in expected]
    shapes = [f"{key} is {tuple(found[key].shape)}, model expects {tuple(expected[key].shape)}"
              for key in expected if key in found and found[key].shape != expected[key].shape]
    problems = ([f"missing {_listing(missing)}"] if missing else []) + \
               ([f"unexpected {_listing(unexpected)}"] if unexpected else []) + shapes[:MAX_KEYS_SHOWN]
    return "; ".join(problems) or None


def load_state(module: nn.Module, state: Mapping[str, torch.Tensor], source: str,
               what: str = "model") -> None:
    """Load `state` into `module`, all keys and shapes exactly, or BadInput naming the offenders."""
    problem = state_mismatch(module.state_dict(), state)
    if problem:
        raise BadInput(f"{source}: weights do not fit the {what}: {problem}")
    module.load_state_dict(state, strict=True)


def save_checkpoint(path: str | Path, model_name: str, options: Mapping[str, Any],
                    state: Mapping[str, torch.Tensor], metadata: Mapping[str, Any] | None = None) -> Path:
    """Write a vidvpr checkpoint atomically: a plain dict of tensors, names, options and metadata.

    Everything in it loads with weights_only and no allow-list.
    """
    path = Path(path)
    payload = {
        "format": VIDVPR_CHECKPOINT_FORMAT,
        "model": model_name,
        "options": dict(options),
        "state_dict": {key: value.detach().cpu().clone() for key, value in state.items()},
        "metadata": dict(metadata or {}),
    }
    save_torch(payload, path)
    return path


def save_torch(payload: Any, path: Path) -> None:
    """`torch.save` of `payload` to `path` atomically, the same bytes for the same payload.

    Given a file name, torch names the zip archive's folder after it, here the temporary name with
    host, process id and counter: two identical runs wrote files of different hashes (and sizes).
    Given an open file, it names the folder "archive"."""
    with atomic_output(path) as tmp, open(tmp, "wb") as handle:
        torch.save(payload, handle)
