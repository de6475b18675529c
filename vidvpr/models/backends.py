"""Inference backends: what runs a model's forward pass when descriptors are computed.

``torch`` runs the model itself (any device). ``onnx`` (ONNX Runtime) and ``openvino`` (Intel's
OpenVINO) run the model exported once to ONNX (`vidvpr.models.graphs`) on the CPU; each comes
with an extra (``pip install 'vidvpr[onnx]'``, ``'vidvpr[openvino]'``). ``auto`` is the fastest
backend installed here for the device (`AUTO_ORDER`, measured by tools/bench_eval.py), else
torch. Deciding needs no import of torch or of the runtimes: this module is read by reruns that
must stay quick.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from vidvpr.core.errors import BadInput, ToolMissing


@dataclass(frozen=True)
class BackendSpec:
    """One registry entry: the Python modules it needs (its runtime first) and the extra that installs them."""

    name: str
    modules: tuple[str, ...]  # empty: nothing beyond vidvpr's own dependencies
    extra: str | None
    devices: tuple[str, ...]
    description: str

    @property
    def runtime(self) -> str | None:
        """The package that runs the model (its version goes into the provenance)."""
        return self.modules[0] if self.modules else None


# torch's ONNX exporter needs the `onnx` package to write a graph
BACKENDS: dict[str, BackendSpec] = {
    "torch": BackendSpec("torch", (), None, ("cpu", "cuda", "mps"), "the model's own forward pass (PyTorch)"),
    "onnx": BackendSpec("onnx", ("onnxruntime", "onnx"), "onnx", ("cpu",), "the exported ONNX graph on ONNX Runtime"),
    "openvino": BackendSpec("openvino", ("openvino", "onnx"), "openvino", ("cpu",),
                            "the exported ONNX graph on OpenVINO (float32)"),
}
# every device some backend runs on (`--device`)
DEVICES = tuple(dict.fromkeys(device for spec in BACKENDS.values() for device in spec.devices))
AUTO = "auto"
BACKEND_CHOICES = (AUTO, *BACKENDS)
DEFAULT_BACKEND = AUTO
# what `auto` tries first on a CPU: the faster of the two runtimes on the forward passes of
# EfficientNet-Lite0-NetVLAD (tools/bench_eval.py; README, "vidvpr eval"), then the other, then torch
AUTO_ORDER = ("openvino", "onnx", "torch")


def installed(name: str) -> bool:
    """Whether backend `name` can run here (its modules are importable), without importing them."""
    return all(importlib.util.find_spec(module) is not None for module in BACKENDS[name].modules)


def resolve_backend(name: str, device: str = "cpu") -> str:
    """The backend that will run for `--backend name` on `device`: `auto` picks the first of
    `AUTO_ORDER` installed for the device; a named one must be installed (ToolMissing, with the
    extra to install) and run on the device (BadInput); an unknown device is BadInput."""
    if device not in DEVICES:
        raise BadInput(f"Unknown --device '{device}'. Use {', '.join(DEVICES)}.")
    if name == AUTO:
        return next(backend for backend in AUTO_ORDER if device in BACKENDS[backend].devices and installed(backend))
    if name not in BACKENDS:
        raise BadInput(f"Unknown --backend '{name}'. Use {', '.join(BACKEND_CHOICES)}.")
    spec = BACKENDS[name]
    if device not in spec.devices:
        raise BadInput(f"--backend {name} runs on the {' or '.join(spec.devices)}, not on {device}; "
                       f"use --backend torch (or auto) with --device {device}")
    if not installed(name):
        raise ToolMissing(f"--backend {name} needs the Python packages {' and '.join(spec.modules)}: "
                          f"pip install 'vidvpr[{spec.extra}]' (or --backend torch)")
    return name
