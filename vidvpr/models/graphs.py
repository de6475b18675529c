"""A model exported to ONNX for the CPU runtimes, once per fingerprint and input size, and cached.

Exported with PyTorch's TorchScript-based exporter (`torch.onnx.export(dynamo=False)`), which
needs no package beyond torch. (The dynamo exporter needs onnxscript and had not finished one
export of EfficientNet-Lite0-NetVLAD after 40 minutes on this 2-core machine, under load.)

One graph per input size (W, H), the batch dimension dynamic: EfficientNet-Lite's TensorFlow
"SAME" padding is computed from the input size in Python, so a trace holds the padding of the
size it was made at. A graph traced at 320×176 and run at 288×160 gave descriptors 1.6e-3 off
with no error; here the graph's height and width are fixed, so a runtime refuses another size.

What a graph computes is its head (`GraphHead`): the model's descriptors, or something built on
the model with several named outputs (`vidvpr distill`'s teacher targets: descriptors and channel
correlations from one pass).

Layout, beside the model's descriptors: ``CACHE/<fingerprint>/graphs/<head>-<W>x<H>.onnx`` and its
record ``.json`` (`GraphRecord`, written last: fingerprint, head, outputs, size, opset, exporter
versions, the file's size and content hash). A graph without a record that matches, or whose file
fails its hash, is exported again: an interrupted or damaged export is never served.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from vidvpr.core.atomic import atomic_output, ensure_writable_dir
from vidvpr.core.records import FileRecord, Record
from vidvpr.models.model import VPRModel

LOG = logging.getLogger(__name__)

GRAPHS_DIR = "graphs"
OPSET = 17
INPUT_NAME = "images"
DESCRIPTORS = "descriptors"


@dataclass(frozen=True)
class GraphHead:
    """What a graph computes from an ImageNet-normalised (B, 3, H, W) batch: `module` (the model, or
    a module built on it) returning one tensor or a tuple, one per name in `outputs`."""

    name: str
    module: nn.Module
    outputs: tuple[str, ...]


def descriptors_head(model: VPRModel) -> GraphHead:
    """The model's own forward pass: (B, D) L2-normalised descriptors."""
    return GraphHead(DESCRIPTORS, model, (DESCRIPTORS,))


class GraphRecord(Record):
    """The record beside an exported graph: what it is the export of, and the file as written."""

    SCHEMA = "vidvpr.onnx-graph/1"
    KIND = "vidvpr exported ONNX graph record"

    model: str
    fingerprint: str
    head: str
    outputs: list[str]
    input_size: list[int]  # W, H
    opset: int
    exporter: str
    graph: FileRecord  # path relative to the record's folder
    versions: dict[str, str]
    elapsed_s: float


def graph_paths(folder: Path, fingerprint: str, size: tuple[int, int], head: str = DESCRIPTORS) -> tuple[Path, Path]:
    """(graph, record) of the export of `head` of model `fingerprint` at `size` (W, H) under cache folder `folder`."""
    stem = f"{head}-{size[0]}x{size[1]}"
    base = Path(folder) / fingerprint / GRAPHS_DIR
    return base / f"{stem}.onnx", base / f"{stem}.json"


def cached_graph(model: VPRModel, size: tuple[int, int], folder: Path, head: GraphHead | None = None) -> Path | None:
    """The finished export of `head` (default: the descriptors) of `model` at `size`, or None when
    absent, of something else, or damaged."""
    head = head or descriptors_head(model)
    path, record_path = graph_paths(folder, model.fingerprint, size, head.name)
    record = GraphRecord.load_or_none(record_path)
    if (record is None or record.fingerprint != model.fingerprint or record.head != head.name
            or record.outputs != list(head.outputs) or record.input_size != list(size) or record.opset != OPSET
            or not record.graph.matches(path.parent / record.graph.path, check_hash=True)):
        return None
    return path


def exported_graph(model: VPRModel, size: tuple[int, int], folder: Path, head: GraphHead | None = None) -> Path:
    """The ONNX graph of `head` (default: the descriptors) of `model` for input at `size` = (W, H):
    the cached one, or exported now (traced on the CPU, in eval mode)."""
    head = head or descriptors_head(model)
    found = cached_graph(model, size, folder, head)
    if found is not None:
        return found
    path, record_path = graph_paths(folder, model.fingerprint, size, head.name)
    ensure_writable_dir(path.parent)
    started = time.perf_counter()
    on_cpu = all(parameter.device.type == "cpu" for parameter in head.module.parameters())
    traced = head.module if on_cpu else copy.deepcopy(head.module).cpu()
    was_training = traced.training
    traced.eval()
    example = torch.zeros(2, 3, size[1], size[0])
    LOG.info("%s: exporting %s (%s) at %dx%d to ONNX", path, model.name, head.name, *size)
    try:
        with atomic_output(path) as tmp, warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the exporter's deprecation and tracer warnings
            torch.onnx.export(traced, (example,), str(tmp), dynamo=False, opset_version=OPSET,
                              input_names=[INPUT_NAME], output_names=list(head.outputs),
                              dynamic_axes={name: {0: "batch"} for name in (INPUT_NAME, *head.outputs)})
    finally:
        traced.train(was_training)
    GraphRecord(model=model.name, fingerprint=model.fingerprint, head=head.name, outputs=list(head.outputs),
                input_size=list(size), opset=OPSET, exporter="torch.onnx.export (TorchScript)",
                graph=FileRecord.of(path, path.parent), versions={"torch": torch.__version__},
                elapsed_s=round(time.perf_counter() - started, 3)).save(record_path)
    return path
