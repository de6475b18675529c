"""Databases larger than memory: memory-mapped and chunked databases, approximate faiss indexes
through `vidvpr eval --index`, search parameters, and indexes refused for the memory they need."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import faiss
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tests.test_eval import dataset  # noqa: F401  (a module fixture)
from tests.test_manifest import sliced_views  # noqa: F401  (a session fixture)
from vidvpr.cli import main
from vidvpr.core.errors import BadInput
from vidvpr.dataset.manifest import load_manifest
from vidvpr.descriptors.cache import DescriptorCache
from vidvpr.descriptors.extract import ForwardCounter
from vidvpr.evaluate import index_memory
from vidvpr.evaluate import search as search_module
from vidvpr.evaluate.cells import reference_cell
from vidvpr.evaluate.grid import EvalConfig, database_parts, describe_rows
from vidvpr.evaluate.index_memory import built_bytes, index_bytes
from vidvpr.evaluate.search import build_index, database_chunks, search
from vidvpr.models import load_model

TOOLS = Path(__file__).resolve().parents[1] / "tools"


@pytest.fixture(scope="module")
def vectors(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, np.memmap, np.ndarray]:
    """(database float16 in memory, the same as a read-only .npy memory map, float32 queries)."""
    rng = np.random.default_rng(11)
    database = rng.normal(size=(3000, 32)).astype(np.float16)
    path = tmp_path_factory.mktemp("memmap") / "database.npy"
    np.save(path, database)
    return database, np.load(path, mmap_mode="r"), rng.normal(size=(60, 32)).astype(np.float32)


def test_a_float16_memory_map_gives_the_same_exact_results_as_the_array_in_memory(vectors) -> None:
    database, mapped, queries = vectors
    assert isinstance(mapped, np.memmap) and mapped.dtype == np.float16
    in_memory = search(build_index(database.astype(np.float32)), queries, k=10)
    from_disk = search(build_index(mapped), queries, k=10)
    np.testing.assert_array_equal(from_disk[1], in_memory[1])
    np.testing.assert_array_equal(from_disk[0], in_memory[0])


@pytest.mark.parametrize("factory", [None, "IVF16,Flat|nprobe=4"])
def test_a_database_in_parts_gives_the_same_results_as_the_parts_joined(vectors, factory) -> None:
    _, mapped, queries = vectors
    bounds = [0, 1, 2, 700, 701, 2999, 3000]  # pieces of one row among large ones
    parts = [mapped[a:b] for a, b in itertools.pairwise(bounds)]
    joined = np.concatenate(parts).astype(np.float32)
    np.testing.assert_array_equal(search(build_index(parts, factory), queries, k=5)[1],
                                  search(build_index(joined, factory), queries, k=5)[1])


def test_small_parts_are_added_in_chunks_of_the_chunk_size(vectors) -> None:
    _, mapped, _ = vectors
    parts = [mapped[i:i + 1] for i in range(250)]
    chunks = list(database_chunks(parts, rows=100))
    assert [len(c) for c in chunks] == [100, 100, 50]
    np.testing.assert_array_equal(np.concatenate(chunks), np.asarray(mapped[:250], dtype=np.float32))


def test_search_parameters_after_the_bar_are_applied_and_defaults_otherwise(vectors) -> None:
    _, mapped, _ = vectors
    assert faiss.extract_index_ivf(build_index(mapped, "IVF16,Flat|nprobe=3")).nprobe == 3
    assert faiss.extract_index_ivf(build_index(mapped, "IVF16,Flat")).nprobe == search_module.DEFAULT_NPROBE
    assert faiss.extract_index_ivf(build_index(mapped, "PCA16,IVF16,Flat|nprobe=5")).nprobe == 5
    assert faiss.downcast_index(build_index(mapped, "HNSW8|efSearch=20")).hnsw.efSearch == 20
    assert faiss.downcast_index(build_index(mapped, "HNSW8")).hnsw.efSearch == search_module.DEFAULT_EF_SEARCH


@pytest.mark.parametrize(("factory", "message"), [
    ("IVF16,Flat|nprobe=x", "bad faiss search parameters 'nprobe=x'.*could not interpret"),
    ("IVF16,Flat|bogus=3", "bad faiss search parameters 'bogus=3'.*could not set parameter bogus"),
    ("HNSW8|nprobe=2", "bad faiss search parameters 'nprobe=2' for 'HNSW8|nprobe=2'"),
    ("IVF16,Blat", "bad faiss index factory string 'IVF16,Blat'"),
])
def test_bad_factory_strings_and_parameters_are_one_line_bad_input_before_training(
        vectors, monkeypatch: pytest.MonkeyPatch, factory: str, message: str) -> None:
    _, mapped, _ = vectors
    monkeypatch.setattr(search_module, "train_index", lambda *args: pytest.fail("trained before checking"))
    with pytest.raises(BadInput, match=message) as caught:
        build_index(mapped, factory)
    assert "\n" not in str(caught.value) and ".cpp" not in str(caught.value)


def test_an_index_too_large_for_the_memory_is_refused_before_building_naming_one_that_fits(
        monkeypatch: pytest.MonkeyPatch) -> None:
    database = np.zeros((20_000, 64), np.float32)
    room = 3_000_000  # Flat needs 5.6 MB, IVF512,SQ8 2.2 MB
    monkeypatch.setattr(search_module, "new_index", lambda *args: pytest.fail("built before checking"))
    with pytest.raises(BadInput) as caught:
        build_index(database, available=room)
    message = str(caught.value)
    assert message.startswith("IVF512,SQ8 fits (0.0022 GB); Flat needs 0.0056 GB of the 0.003 GB available here")
    assert "20,000 × 64 descriptors" in message and "\n" not in message
    assert index_bytes("IVF512,SQ8", 20_000, 64) <= room < index_bytes(None, 20_000, 64)


@pytest.mark.parametrize("factory", [None, "IVF32,Flat", "IVF32,SQ8", "IVF32,PQ8", "HNSW16", "PCA16,IVF32,Flat",
                                     "PQ8", "IVF32,PQ8x4fs"])
def test_index_size_estimates_cover_the_built_index_and_are_within_half_of_it(factory: str | None) -> None:
    database = np.random.default_rng(5).normal(size=(10_000, 32)).astype(np.float32)
    estimate, built = index_bytes(factory, 10_000, 32), built_bytes(build_index(database, factory))
    assert built <= estimate <= 1.5 * built, (estimate, built)


@pytest.mark.parametrize("factory", ["PQ8", "IVF16,PQ8", "OPQ8,IVF16,PQ8", "IVF16,PQ8,RFlat"])
def test_pq_indexes_skip_polysemous_training_as_no_search_uses_it(factory: str) -> None:
    top = index_memory.new_index(32, factory)
    chain = [faiss.downcast_index(top)]  # every level kept alive: the top one owns the rest
    while not hasattr(chain[-1], "do_polysemous_training"):
        chain.append(faiss.downcast_index(getattr(chain[-1], "index", None) or chain[-1].base_index))
    assert chain[-1].do_polysemous_training is False


# ---------------------------------------------------------------- the eval path


@pytest.fixture(scope="module")
def eval_parts(dataset):  # noqa: F811
    manifest = load_manifest(dataset[0])
    reference = reference_cell(manifest)
    model = load_model("netvlad-efficientnet-lite0", num_clusters=4)
    return manifest, reference, model


def test_the_eval_database_is_read_from_the_cache_as_memory_maps_in_manifest_order(eval_parts, tmp_path) -> None:
    manifest, reference, model = eval_parts
    cache, config, cpu = DescriptorCache(tmp_path / "cache"), EvalConfig(batch_size=5), torch.device("cpu")
    counter = ForwardCounter()
    parts = database_parts(model, manifest.database, reference, reference, cache, config, cpu, counter)
    assert counter.images == len(manifest.database)  # computed into the cache, batch by batch
    assert len(parts) == 2 and all(isinstance(p, np.memmap) and p.dtype == np.float16 for p in parts)
    in_memory = describe_rows(model, manifest.database, reference, reference, cache, config, cpu, counter, None)
    assert counter.images == len(manifest.database)  # served from the cache
    np.testing.assert_array_equal(np.concatenate(parts).astype(np.float32), in_memory)
    shuffled = [manifest.database[i] for i in (5, 6, 7, 20, 0, 1, 13, 12)]
    parts = database_parts(model, shuffled, reference, reference, cache, config, cpu, counter)
    assert [len(p) for p in parts] == [3, 1, 2, 1, 1]
    np.testing.assert_array_equal(np.concatenate(parts).astype(np.float32), in_memory[[5, 6, 7, 20, 0, 1, 13, 12]])


@pytest.fixture(scope="module")
def eval_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One output folder (model and descriptor cache) shared by the runs below."""
    return tmp_path_factory.mktemp("eval-index")


def _eval(manifest: Path, out: Path, *options: str) -> tuple[int, str, dict | None]:
    result = CliRunner().invoke(main, ["eval", str(manifest), "--out", str(out), "--quiet", "--json", *options])
    return result.exit_code, result.stderr, json.loads(result.stdout) if result.exit_code == 0 else None


def _ranking(out: Path) -> list[str]:
    lines = (out / "predictions" / "netvlad-efficientnet-lite0" / "same" / "reference.csv").read_text().splitlines()
    return [",".join(line.split(",")[:3]) for line in lines]  # query, rank, database id (no distances)


@pytest.fixture(scope="module")
def exact_run(dataset, eval_out: Path) -> tuple[dict, list[str]]:  # noqa: F811
    code, stderr, summary = _eval(dataset[0], eval_out)
    assert code == 0, stderr
    return summary, _ranking(eval_out)


def test_ivf_with_every_list_probed_through_vidvpr_eval_ranks_as_exact_search(dataset, eval_out, exact_run) -> None:  # noqa: F811
    code, stderr, summary = _eval(dataset[0], eval_out, "--index", "IVF2,Flat|nprobe=2")
    assert code == 0, stderr
    assert summary["forward_images"] == 0  # descriptors from the cache
    assert _ranking(eval_out) == exact_run[1]
    assert [r["recall"] for r in summary["rows"]] == [r["recall"] for r in exact_run[0]["rows"]]
    recorded = json.loads((eval_out / "results.json").read_text())
    assert recorded["index"] == "IVF2,Flat|nprobe=2"


@pytest.mark.parametrize("factory", ["HNSW8|efSearch=16", "IVF2,PQ8x4", "IVF2,SQ8|nprobe=1"])
def test_approximate_indexes_run_end_to_end_through_vidvpr_eval(dataset, eval_out, exact_run, factory) -> None:  # noqa: F811
    code, stderr, summary = _eval(dataset[0], eval_out, "--index", factory)
    assert code == 0, stderr
    ranking = _ranking(eval_out)
    assert ranking[0] == "query_id,rank,database_id" and len(ranking) <= len(exact_run[1])  # IVF may return fewer
    assert {line.split(",")[0] for line in ranking[1:]} == {line.split(",")[0] for line in exact_run[1][1:]}
    assert all(0 <= value <= 1 for row in summary["rows"] for value in row["recall"].values())


@pytest.mark.parametrize(("factory", "message"), [
    ("IVF2,Flat|nprobe=x", "vidvpr: error: bad faiss search parameters 'nprobe=x'"),
    ("NotAnIndex", "vidvpr: error: bad faiss index factory string 'NotAnIndex'"),
])
def test_bad_index_options_through_vidvpr_eval_are_one_line_exit_2_before_any_descriptor(
        dataset, tmp_path: Path, factory: str, message: str) -> None:  # noqa: F811
    code, stderr, _ = _eval(dataset[0], tmp_path / "out", "--index", factory)
    assert code == 2 and stderr.startswith(message) and stderr.count("\n") == 1
    assert not (tmp_path / "out" / "descriptors").exists() and not (tmp_path / "out" / "results.csv").exists()


def test_vidvpr_eval_refuses_an_index_too_large_for_the_memory_in_one_line_before_describing(
        dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    rows, dim = 24, load_model("netvlad-efficientnet-lite0").descriptor_dim
    room = (index_bytes(None, rows, dim) + index_bytes("IVF2,Flat", rows, dim)) // 2  # Flat fits, IVF2 does not
    monkeypatch.setattr(index_memory, "available_bytes", lambda: room)
    code, stderr, _ = _eval(dataset[0], tmp_path / "out", "--index", "IVF2,Flat")
    assert code == 2 and stderr.count("\n") == 1, stderr
    assert stderr.startswith("vidvpr: error: Flat fits (") and "IVF2,Flat needs" in stderr and "× 7168" in stderr
    assert not (tmp_path / "out" / "descriptors").exists() and not (tmp_path / "out" / "results.csv").exists()


# ---------------------------------------------------------------- the benchmark cannot rot


def test_the_search_benchmark_runs_at_a_small_size_and_reports_every_index() -> None:
    result = subprocess.run([sys.executable, str(TOOLS / "bench_search.py"), "--rows", "5000", "--dim", "32",
                             "--queries", "200", "--json", "--quiet"], capture_output=True, text=True, check=False,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    names = [entry["index"] for entry in report["indexes"]]
    assert names[0] == "Flat (exact)" and len(names) >= 4
    for entry in report["indexes"]:
        assert 0 <= entry["recall_at_1"] <= 1 and entry["qps"] > 0 and entry["bytes"] > 0
    assert report["indexes"][0]["recall_at_1"] > 0.5 and report["indexes"][0]["recall_ratio"] == 1


def test_the_search_benchmark_refuses_a_bad_index_string_in_one_line_before_writing_the_database() -> None:
    result = subprocess.run([sys.executable, str(TOOLS / "bench_search.py"), "--rows", "1000", "--dim", "16",
                             "--index", "NOPE", "--quiet"], capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == ("bench_search.py: error: bad faiss index factory string 'NOPE': "
                                                      "could not parse index string NOPE")
