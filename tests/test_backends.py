"""Specification of the inference backends: torch, or the model's exported ONNX graph on ONNX Runtime
or OpenVINO. The runtimes are installed by the `test` extra, so these tests run (and do not skip)
wherever `make test` runs."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tests.test_eval import dataset  # noqa: F401  (a module fixture)
from tests.test_manifest import sliced_views  # noqa: F401  (a session fixture)
from vidvpr.cli import main
from vidvpr.core.errors import BadInput, ToolMissing
from vidvpr.descriptors.cache import DescriptorCache, DescriptorRecord
from vidvpr.descriptors.extract import ForwardCounter, describe_video
from vidvpr.evaluate.config import EvalConfig
from vidvpr.evaluate.grid import evaluate_grid
from vidvpr.models import backends, graphs
from vidvpr.models.backends import resolve_backend
from vidvpr.models.inference import Inference
from vidvpr.models.registry import load_model

RUNTIMES = [pytest.param(name, marks=pytest.mark.skipif(not backends.installed(name), reason=f"{name} not installed"))
            for name in ("onnx", "openvino")]


@pytest.fixture(scope="module")
def model():
    return load_model("netvlad-efficientnet-lite0", num_clusters=8)


@pytest.fixture(scope="module")
def graphs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder of exported graphs for the tests that only read them (an export takes seconds)."""
    return tmp_path_factory.mktemp("graphs")


def images(batch: int, width: int, height: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, 3, height, width, generator=torch.Generator().manual_seed(seed))


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


# --- choosing -------------------------------------------------------------------------------


def test_auto_is_the_first_installed_runtime_on_the_cpu_and_torch_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends, "installed", lambda name: name in ("torch", "onnx"))
    assert resolve_backend("auto", "cpu") == "onnx"
    assert resolve_backend("auto", "cuda") == "torch"
    monkeypatch.setattr(backends, "installed", lambda name: name == "torch")
    assert resolve_backend("auto", "cpu") == "torch"  # torch stays the default where no runtime is installed


def test_a_runtime_that_is_not_installed_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends, "installed", lambda name: name == "torch")
    with pytest.raises(ToolMissing, match=r"pip install 'vidvpr\[onnx\]'"):
        resolve_backend("onnx", "cpu")


def test_a_runtime_refuses_other_devices_and_unknown_names_are_listed() -> None:
    with pytest.raises(BadInput, match="runs on the cpu, not on cuda"):
        resolve_backend("onnx", "cuda")
    with pytest.raises(BadInput, match="Use auto, torch, onnx, openvino"):
        resolve_backend("tensorrt", "cpu")


@pytest.mark.parametrize("name", ["auto", "torch", "onnx"])
def test_an_unknown_device_is_bad_input_whatever_the_backend(name: str) -> None:
    # review-b: `vidvpr distill --device tpu` (and `vidvpr demo study --device tpu`) was exit 1, a bare StopIteration
    with pytest.raises(BadInput, match="Unknown --device 'tpu'. Use cpu, cuda, mps."):
        resolve_backend(name, "tpu")


def test_the_command_line_refuses_an_unknown_backend_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["eval", str(tmp_path), "--out", str(tmp_path / "e"), "--backend", "tpu"])
    assert result.exit_code == 2 and "tpu" in result.stderr and result.stderr.count("\n") == 1


# --- the runtimes ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", RUNTIMES)
def test_descriptors_match_torch_within_cosine_0_999_at_several_sizes_and_batches(backend: str, model,
                                                                                 graphs_dir: Path) -> None:
    inference = Inference(model, backend, graphs_dir)
    for batch, width, height in ((3, 64, 36), (1, 64, 36), (2, 96, 48)):
        x = images(batch, width, height)
        expected = Inference(model).describe(x)
        got = inference.describe(x)
        assert got.shape == expected.shape and got.dtype == np.float32
        assert cosines(got, expected).min() > 0.999
    assert sorted(p.name for p in (graphs_dir / model.fingerprint / "graphs").iterdir()) == [
        "descriptors-64x36.json", "descriptors-64x36.onnx", "descriptors-96x48.json",
        "descriptors-96x48.onnx"]  # one export per input size


@pytest.mark.parametrize("backend", RUNTIMES)
def test_a_graph_is_exported_once_per_fingerprint_and_size(backend: str, model, graphs_dir: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    Inference(model, backend, graphs_dir).describe(images(2, 64, 36))
    monkeypatch.setattr(torch.onnx, "export", lambda *a, **k: pytest.fail("exported again"))
    Inference(model, backend, graphs_dir).describe(images(2, 64, 36))  # another process: the cached graph


@pytest.mark.parametrize("damage", ["flipped byte", "no record", "truncated"])
def test_a_damaged_or_partial_export_is_exported_again_never_served(damage: str, model, graphs_dir: Path,
                                                                    tmp_path: Path) -> None:
    graph, record = graphs.graph_paths(tmp_path, model.fingerprint, (64, 36))
    graph.parent.mkdir(parents=True)
    for made in graphs.graph_paths(graphs_dir, model.fingerprint, (64, 36)):  # a finished export, copied
        if not made.exists():
            graphs.exported_graph(model, (64, 36), graphs_dir)
        (graph.parent / made.name).write_bytes(made.read_bytes())
    first = graphs.exported_graph(model, (64, 36), tmp_path)
    assert first == graph and graphs.cached_graph(model, (64, 36), tmp_path) == graph
    data = bytearray(graph.read_bytes())
    if damage == "flipped byte":
        data[len(data) // 2] ^= 0xFF
        graph.write_bytes(bytes(data))
    elif damage == "no record":  # killed between the graph and its record
        record.unlink()
    else:
        graph.write_bytes(bytes(data[: len(data) // 2]))
    assert graphs.cached_graph(model, (64, 36), tmp_path) is None
    graphs.exported_graph(model, (64, 36), tmp_path)
    assert graphs.cached_graph(model, (64, 36), tmp_path) == graph


def test_a_graph_of_another_model_is_not_served(model, tmp_path: Path) -> None:
    graphs.exported_graph(model, (64, 36), tmp_path)
    other = load_model("netvlad-efficientnet-lite0", num_clusters=4)
    assert graphs.cached_graph(other, (64, 36), tmp_path) is None


@pytest.mark.parametrize("backend", RUNTIMES)
def test_an_inference_pickles_without_its_sessions_and_runs_where_it_lands(backend: str, model,
                                                                          graphs_dir: Path) -> None:
    inference = Inference(model, backend, graphs_dir)
    x = images(2, 64, 36)
    expected = inference.describe(x)
    moved = pickle.loads(pickle.dumps(inference))
    assert moved._sessions == {} and np.allclose(moved.describe(x), expected, atol=1e-6)


# --- the descriptor cache and the evaluation ------------------------------------------------


@pytest.mark.parametrize("backend", RUNTIMES)
def test_descriptors_of_one_backend_are_never_served_for_another(backend: str, model, tmp_path: Path,
                                                                equirect_video: Path) -> None:
    cache = DescriptorCache(tmp_path / "cache")
    counter = ForwardCounter()
    torch_descriptors = describe_video(model, equirect_video, [0, 3], cache, counter=counter)
    runtime_descriptors = describe_video(Inference(model, backend, cache.folder), equirect_video, [0, 3], cache,
                                         counter=counter)
    assert counter.images == 4  # the runtime computed its own
    assert cosines(runtime_descriptors, torch_descriptors).min() > 0.999
    records = [DescriptorRecord.load(p) for p in cache.folder.glob("*/*.json")]
    assert sorted((r.backend, r.fingerprint) for r in records) == [
        (backend, f"{model.fingerprint}-{backend}"), ("torch", model.fingerprint)]


@pytest.mark.slow
@pytest.mark.parametrize("backend", RUNTIMES)
def test_an_evaluation_on_a_runtime_gives_torchs_recall(backend: str, dataset, tmp_path: Path) -> None:  # noqa: F811
    manifest, enc = dataset
    on_torch = evaluate_grid(manifest, tmp_path / "torch", EvalConfig(enc_dir=enc, batch_size=8, backend="torch"))
    on_runtime = evaluate_grid(manifest, tmp_path / backend, EvalConfig(enc_dir=enc, batch_size=8, backend=backend))
    assert [round(row.recall[1], 3) for row in on_runtime.rows] == [round(row.recall[1], 3) for row in on_torch.rows]
    recorded = (tmp_path / backend / "results.json").read_text()
    assert f'"backend": "{backend}"' in recorded
