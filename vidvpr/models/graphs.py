"""A model exported to ONNX for the CPU runtimes, once per fingerprint and input size, and cached.

Exported with PyTorch's TorchScript-based exporter (`torch.onnx.export(dynamo=False)`), which
needs no package beyond torch. (The dynamo exporter needs onnxscript and had not finished one
export of EfficientNet-Lite0-NetVLAD after 40 minutes on this 2-core machine, under load.)

One graph per input size (W, H), the batch dimension dynamic: EfficientNet-Lite's TensorFlow
"SAME" padding is computed from the input size in Python, so a trace holds the padding of the
size it was made at. A graph traced at 320×176 and run at 288×160 gave descriptors 1.6e-3 off
with no error; here the graph's height and width are fixed, so a runtime refuses another size.

Layout, beside the model's descriptors: ``CACHE/<fingerprint>/graphs/<W>x<H>.onnx`` and its
record ``<W>x<H>.json`` (`GraphRecord`, written last: fingerprint, size, opset, exporter
versions, the file's size and content hash). A graph without a record that matches, or whose file
fails its hash, is exported again: an interrupted or damaged export is never served.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from pathlib import Path

import torch

from vidvpr.core.atomic import atomic_output, ensure_writable_dir
from vidvpr.core.records import FileRecord, Record
from vidvpr.models.model import VPRModel

LOG = logging.getLogger(__name__)

GRAPHS_DIR = "graphs"
OPSET = 17
INPUT_NAME, OUTPUT_NAME = "images", "descriptors"


class GraphRecord(Record):
    """``<W>x<H>.json`` beside an exported graph: what it is the export of, and the file as written."""

    SCHEMA = "vidvpr.onnx-graph/1"
    KIND = "vidvpr exported ONNX graph record"

    model: str
    fingerprint: str
    input_size: list[int]  # W, H
    descriptor_dim: int
    opset: int
    exporter: str
    graph: FileRecord  # path relative to the record's folder
    versions: dict[str, str]
    elapsed_s: float


def graph_paths(folder: Path, fingerprint: str, size: tuple[int, int]) -> tuple[Path, Path]:
    """(graph, record) of the export of model `fingerprint` at `size` (W, H) under cache folder `folder`."""
    base = Path(folder) / fingerprint / GRAPHS_DIR
    return base / f"{size[0]}x{size[1]}.onnx", base / f"{size[0]}x{size[1]}.json"


def cached_graph(model: VPRModel, size: tuple[int, int], folder: Path) -> Path | None:
    """The finished export of `model` at `size`, or None when absent, of something else, or damaged."""
    path, record_path = graph_paths(folder, model.fingerprint, size)
    record = GraphRecord.load_or_none(record_path)
    if (record is None or record.fingerprint != model.fingerprint or record.input_size != list(size)
            or record.opset != OPSET or not record.graph.matches(path.parent / record.graph.path, check_hash=True)):
        return None
    return path


def exported_graph(model: VPRModel, size: tuple[int, int], folder: Path) -> Path:
    """The ONNX graph of `model` for (B, 3, H, W) ImageNet-normalised input at `size` = (W, H): the
    cached one, or exported now (the model is traced on the CPU, in eval mode)."""
    found = cached_graph(model, size, folder)
    if found is not None:
        return found
    path, record_path = graph_paths(folder, model.fingerprint, size)
    ensure_writable_dir(path.parent)
    started = time.perf_counter()
    traced = model if next(model.parameters()).device.type == "cpu" else copy.deepcopy(model).cpu()
    was_training = traced.training
    traced.eval()
    example = torch.zeros(2, 3, size[1], size[0])
    LOG.info("%s: exporting %s at %dx%d to ONNX", path, model.name, *size)
    try:
        with atomic_output(path) as tmp, warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the exporter's deprecation and tracer warnings
            torch.onnx.export(traced, (example,), str(tmp), dynamo=False, opset_version=OPSET,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    finally:
        traced.train(was_training)
    GraphRecord(model=model.name, fingerprint=model.fingerprint, input_size=list(size),
                descriptor_dim=model.descriptor_dim, opset=OPSET, exporter="torch.onnx.export (TorchScript)",
                graph=FileRecord.of(path, path.parent), versions={"torch": torch.__version__},
                elapsed_s=round(time.perf_counter() - started, 3)).save(record_path)
    return path
