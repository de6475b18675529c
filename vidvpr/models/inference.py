"""A model as the descriptor stage runs it: on its inference backend (`vidvpr.models.backends`).

`Inference` pairs a `VPRModel` with a backend. `describe(batch)` gives L2-normalised float32
descriptors whatever runs them; `cache_key` is the model's fingerprint for torch and the
fingerprint plus the backend's name otherwise, so descriptors of one backend are never served for
another. The ONNX runtimes run the model's graph exported at the batch's input size
(`vidvpr.models.graphs`, cached beside the descriptors); each session is checked once against
torch on two images before it is used (cosine of every output at least `PARITY_MIN_COSINE`).
With a `GraphHead` other than the descriptors, `run(batch)` gives the head's several outputs.

An `Inference` pickles without its sessions (they are opened again where it runs: a Dask worker).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidvpr.core.errors import ToolMissing
from vidvpr.core.threads import usable_cores
from vidvpr.models.backends import BACKENDS
from vidvpr.models.graphs import INPUT_NAME, GraphHead, descriptors_head, exported_graph
from vidvpr.models.initialise import model_versions
from vidvpr.models.model import VPRModel

Session = Callable[[np.ndarray], list[np.ndarray]]  # a batch -> the graph's outputs, in order
PARITY_MIN_COSINE = 0.999  # issue 16's bound; measured on the demo: > 0.99999 (README, "vidvpr eval")
PARITY_SEED = 0


def _onnxruntime_session(graph: Path, threads: int) -> Session:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # threads wait passively, as torch's do (OMP_WAIT_POLICY): spinning starves a shared machine
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    return lambda images: session.run(None, {INPUT_NAME: images})


def _openvino_session(graph: Path, threads: int) -> Session:
    import openvino

    # float32 everywhere: OpenVINO's default on CPUs with bfloat16 units is bfloat16, whose
    # descriptors would depend on the machine (and drift 1e-4 from torch's)
    compiled = openvino.Core().compile_model(str(graph), "CPU", {
        "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()

    def run(images: np.ndarray) -> list[np.ndarray]:
        results = request.infer({0: images})
        return [np.array(results[output], copy=True) for output in compiled.outputs]  # the request reuses its buffers

    return run


RUNTIMES: dict[str, Callable[[Path, int], Session]] = {"onnx": _onnxruntime_session, "openvino": _openvino_session}


def runtime_version(backend: str) -> dict[str, str]:
    """The installed version of a backend's runtime package, for provenance."""
    module = BACKENDS[backend].runtime
    if module is None:
        return {}
    with contextlib.suppress(metadata.PackageNotFoundError):
        return {module: metadata.version(module)}
    return {module: "unknown"}


class Inference:
    """`model` (or `head`, built on it) run by `backend` ("torch", "onnx" or "openvino", already
    resolved); the ONNX runtimes keep their graphs in `graphs_dir` (the descriptor cache's folder)."""

    def __init__(self, model: VPRModel, backend: str = "torch", graphs_dir: Path | None = None,
                 threads: int | None = None, head: GraphHead | None = None) -> None:
        if backend != "torch" and (backend not in RUNTIMES or graphs_dir is None):
            raise ValueError(f"backend {backend!r} needs a runtime and a folder for its graphs")
        self.model = model
        self.backend = backend
        self.graphs_dir = Path(graphs_dir) if graphs_dir is not None else None
        self.threads = threads
        self.head = head or descriptors_head(model)
        self._sessions: dict[tuple[int, int], Session] = {}

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def fingerprint(self) -> str:
        return self.model.fingerprint

    @property
    def descriptor_dim(self) -> int:
        return self.model.descriptor_dim

    @property
    def cache_key(self) -> str:
        """Under which name the descriptor cache keeps this model's descriptors on this backend."""
        return self.model.fingerprint if self.backend == "torch" else f"{self.model.fingerprint}-{self.backend}"

    def versions(self) -> dict[str, str]:
        """What computes the descriptors: `model_versions()` and the runtime's package."""
        return {**model_versions(), "backend": self.backend, **runtime_version(self.backend)}

    def describe(self, batch: torch.Tensor, device: torch.device | None = None) -> np.ndarray:
        """(B, D) float32 descriptors of an ImageNet-normalised (B, 3, H, W) batch (the head's first output)."""
        return self.run(batch, device)[0]

    def run(self, batch: torch.Tensor, device: torch.device | None = None) -> list[np.ndarray]:
        """The head's outputs for an ImageNet-normalised (B, 3, H, W) batch, as float32 arrays."""
        if self.backend == "torch":
            device = device or torch.device("cpu")
            with torch.inference_mode(), _autocast(device):
                return _as_arrays(self.head.module(batch.to(device, non_blocking=True)))
        size = (int(batch.shape[3]), int(batch.shape[2]))
        session = self._sessions.get(size) or self._open(size)
        return [np.asarray(out, dtype=np.float32) for out in session(np.ascontiguousarray(batch.numpy(), np.float32))]

    def _open(self, size: tuple[int, int]) -> Session:
        assert self.graphs_dir is not None
        self.head.module.cpu().eval()
        graph = exported_graph(self.model, size, self.graphs_dir, self.head)
        session = RUNTIMES[self.backend](graph, self.threads or usable_cores())
        check_parity(self.head, session, size, self.backend)
        self._sessions[size] = session
        return session

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_sessions": {}}


def _autocast(device: torch.device) -> contextlib.AbstractContextManager[object]:
    """Mixed precision on GPUs; full float32 on the CPU (where float16 is slower, not faster)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def _as_arrays(outputs: torch.Tensor | tuple[torch.Tensor, ...]) -> list[np.ndarray]:
    tensors = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
    return [tensor.float().cpu().numpy() for tensor in tensors]


def check_parity(head: GraphHead, session: Session, size: tuple[int, int], backend: str) -> float:
    """The smallest cosine, over every output and row, between torch's and the session's outputs on
    two random images; a ToolMissing (use torch) below `PARITY_MIN_COSINE`."""
    generator = torch.Generator().manual_seed(PARITY_SEED)
    images = torch.randn(2, 3, size[1], size[0], generator=generator)
    with torch.inference_mode():
        expected = _as_arrays(head.module(images))
    got = session(images.numpy())
    cosine = min(float(np.min(np.sum(e.reshape(2, -1) * g.reshape(2, -1), axis=1) / (
        np.linalg.norm(e.reshape(2, -1), axis=1) * np.linalg.norm(g.reshape(2, -1), axis=1)).clip(min=1e-12)))
        for e, g in zip(expected, got))
    if not cosine >= PARITY_MIN_COSINE:
        raise ToolMissing(f"--backend {backend}: the {head.name} at {size[0]}x{size[1]} differ from torch's "
                          f"(cosine {cosine:.6f} < {PARITY_MIN_COSINE}); use --backend torch")
    return cosine


def as_inference(model: VPRModel | Inference) -> Inference:
    """`model` as an `Inference` (a bare model runs on torch)."""
    return model if isinstance(model, Inference) else Inference(model)
