"""The pipeline on a real Dask `LocalCluster` of worker processes: the same files as in-process, a
worker killed mid-unit, a bad source failing alone, workers that do not share the storage, and an
unreachable scheduler."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import distributed
import pytest
from click.testing import CliRunner

from tests.cluster_units import HoldingExecutor
from tests.media import make_equirect_video
from tests.test_export import encode_cells
from tests.test_manifest import make_dataset, sliced_views  # noqa: F401  (a session fixture)
from vidvpr.cli import main
from vidvpr.core.errors import OutputError, ToolMissing
from vidvpr.dataset.definition import load_definition
from vidvpr.dataset.manifest import build_manifest
from vidvpr.encoding.grid import encode_grid
from vidvpr.encoding.plan import EncodeConfig, parse_resolutions
from vidvpr.evaluate.grid import EvalConfig, evaluate_grid
from vidvpr.run import cluster as dask_executor
from vidvpr.run import probe
from vidvpr.run.cluster import DaskExecutor
from vidvpr.slicing.config import SliceConfig
from vidvpr.slicing.stage import slice_videos

pytestmark = pytest.mark.slow

SLICE = SliceConfig(yaws_deg=(0.0, 90.0), size=(128, 72))
ENCODE = EncodeConfig(qps=(20, 40), resolutions=parse_resolutions("128x72,64x36"), preset="fast")
TIMING_KEYS = {"elapsed_s", "encode_s", "process_wall_s", "process_cpu_s", "cpu_s", "fps", "realtime_factor",
               "encode_cpu_s", "encode_fps"}


@pytest.fixture(scope="module")
def cluster() -> Any:
    """Two worker processes with one thread each (each under a nanny that restarts it when killed)."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=logging.CRITICAL) as local:
        yield local


@pytest.fixture
def executor(cluster: Any) -> Any:
    client = distributed.Client(cluster, set_as_default=False)
    client.wait_for_workers(2, timeout=60)
    executor = DaskExecutor(client)
    yield executor
    executor.close()


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("cluster-sources")
    # the last is long enough for x264 (veryfast: 10 frames of lookahead) to start writing mid-slice
    return [make_equirect_video(folder / f"walk{i}.mp4", frames=frames) for i, frames in enumerate((12, 16, 48))]


@pytest.fixture(scope="module")
def in_process(sources: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: slice and encode in this process (views in OUT/views, the grid in OUT/enc)."""
    out = tmp_path_factory.mktemp("in-process")
    results = slice_videos(sources, out / "views", SLICE)
    encode_grid([Path(r.path) for r in results], out / "enc", ENCODE)
    return out


def untimed(value: Any) -> Any:
    """A sidecar without its timings (wall and CPU seconds differ from run to run)."""
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    return value


def outputs(folder: Path) -> dict[str, Any]:
    """Every finished file under `folder`: videos byte for byte, sidecars without timings (and with the
    run's folder, which differs between the runs compared, named ROOT)."""
    found: dict[str, Any] = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        if path.suffix == ".mp4":
            found[name] = path.read_bytes()
        elif path.suffix == ".json" and path.name != "encodes.json":
            found[name] = untimed(json.loads(path.read_text().replace(str(folder.parent), "ROOT")))
    return found


def hidden(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*")]


def test_slice_and_encode_on_the_cluster_make_the_in_process_files(executor: DaskExecutor, sources: list[Path],
                                                                     in_process: Path, tmp_path: Path) -> None:
    results = slice_videos(sources, tmp_path / "views", SLICE, executor=executor)
    encoded = encode_grid([Path(r.path) for r in results], tmp_path / "enc", ENCODE, executor=executor)
    views = outputs(tmp_path / "views")
    assert len(views) == 12 and views == outputs(in_process / "views")
    cells = outputs(tmp_path / "enc")
    assert len(cells) == 48 and cells == outputs(in_process / "enc")
    reference = json.loads((in_process / "enc" / "encodes.json").read_text().replace(str(in_process), "ROOT"))
    assert untimed(json.loads(json.dumps(encoded.rows).replace(str(tmp_path), "ROOT"))) == untimed(reference["rows"])
    events = executor.client.get_events()
    workers = {entry["start"] for topic, entries in events.items() if topic.endswith("-attempts")
               for _, entry in entries}
    assert len(workers) == 2  # the units were spread over both worker processes
    assert all(report.failures == [] and report.retried == [] for report in executor.reports)
    again = slice_videos(sources, tmp_path / "views", SLICE, executor=executor)
    assert all(result.skipped for result in again)  # done units are skipped wherever they run
    assert {p.name.split("-")[1] for p in hidden(tmp_path)} == {"shared"}  # the storage markers, until close
    executor.close()
    assert hidden(tmp_path) == []


def test_a_worker_killed_mid_unit_is_retried_and_the_outputs_are_identical(
        cluster: Any, sources: list[Path], in_process: Path, tmp_path: Path) -> None:
    marker = tmp_path / "held"
    client = distributed.Client(cluster, set_as_default=False)
    client.wait_for_workers(2, timeout=60)
    executor = HoldingExecutor(client, f"slice {sources[2].absolute()}", marker, tmp_path / "views" / "walk2")
    killed: list[int] = []
    partial: list[Path] = []

    def kill_when_held() -> None:
        deadline = time.monotonic() + 60
        while not marker.exists() or not marker.read_text():
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)
        partial.extend((tmp_path / "views").rglob(".*.partial-*"))
        pid = int(marker.read_text())
        os.kill(pid, signal.SIGKILL)  # the worker process, mid-unit
        killed.append(pid)

    killer = threading.Thread(target=kill_when_held)
    killer.start()
    try:
        slice_videos(sources, tmp_path / "views", SLICE, executor=executor)
    finally:
        killer.join()
        executor.close()
    assert killed, "the unit was never held"
    assert {p.parent.name for p in partial} == {"walk2"} and {p.suffix for p in partial} == {".mp4"}
    assert outputs(tmp_path / "views") == outputs(in_process / "views")
    assert hidden(tmp_path / "views") == []  # the retry on this host removed the dead worker's partial files
    retried = executor.reports[-1].retried
    assert [r.unit for r in retried] == [f"slice {sources[2].absolute()}"]
    assert retried[0].attempts == 2 and "died while running it" in retried[0].reason


def test_a_bad_source_fails_alone_with_its_error_in_the_summary(cluster: Any, sources: list[Path],
                                                                tmp_path: Path) -> None:
    slow = make_equirect_video(tmp_path / "slow.mp4", frames=6, fps=Fraction(10))  # --fps 15 exceeds its 10
    out = tmp_path / "views"
    result = CliRunner().invoke(main, ["slice", str(sources[0]), str(slow), str(sources[1]), "--out", str(out),
                                       "--yaw", "0,90", "--size", "128x72", "--fps", "15",
                                       "--scheduler", cluster.scheduler_address, "--quiet"])  # errors print anyway
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[-2:] == [
        f"vidvpr: failed: slice {slow.absolute()}: --fps 15 exceeds the source's 10 fps ({slow.absolute()}); "
        "vidvpr never duplicates frames",
        f"vidvpr: error: 1 of 3 units failed, the others finished: slice {slow.absolute()}: --fps 15 exceeds the "
        f"source's 10 fps ({slow.absolute()}); vidvpr never duplicates frames"]
    assert "Traceback" not in result.output
    assert sorted(p.name for p in out.iterdir()) == ["walk0", "walk1"]
    assert all(len(list((out / name).glob("*.json"))) == 2 for name in ("walk0", "walk1"))


def test_eval_on_the_cluster_gives_the_in_process_results(executor: DaskExecutor, tmp_path: Path,
                                                          sliced_views: Path) -> None:  # noqa: F811
    definition = make_dataset(tmp_path / "ds", sliced_views, radius=2.5)
    build_manifest(load_definition(definition), tmp_path / "ds" / "manifest")
    enc = encode_cells(tmp_path / "ds" / "manifest", tmp_path / "ds" / "enc", qps=(40,))
    config = EvalConfig(enc_dir=enc, batch_size=8)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as on the workers (Dask sets OMP_NUM_THREADS=1): float sums depend on it
    try:
        here = evaluate_grid(tmp_path / "ds" / "manifest", tmp_path / "here", config)
    finally:
        torch.set_num_threads(threads)
    shutil.copytree(tmp_path / "here" / "models", tmp_path / "there" / "models")  # the same NetVLAD init
    there = evaluate_grid(tmp_path / "ds" / "manifest", tmp_path / "there", config, executor=executor)
    assert [row.model_dump() for row in there.rows] == [row.model_dump() for row in here.rows]
    made = sorted(p.relative_to(tmp_path / "here") for p in (tmp_path / "here").rglob("*")
                  if p.suffix in (".csv", ".npy") and p.name != "results.csv")
    assert len([p for p in made if p.suffix == ".npy"]) == 8 and len(made) == 10
    for path in made:  # descriptors and predictions, byte for byte
        assert (tmp_path / "there" / path).read_bytes() == (tmp_path / "here" / path).read_bytes(), path
    assert there.forward_images == here.forward_images > 0


def test_workers_that_do_not_see_the_output_folder_are_named_before_anything_is_written(
        sources: list[Path], tmp_path: Path) -> None:
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"]).returncode != 0:
        pytest.skip("needs unprivileged user and mount namespaces (unshare -rm)")
    storage = tmp_path / "storage"
    storage.mkdir()
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=":0",
                                  silence_logs=logging.CRITICAL) as local:
        # a real worker process for which `storage` is a different, empty folder (its own tmpfs)
        script = (f"mount -t tmpfs none {storage} && exec {sys.executable} -m distributed.cli.dask_worker "
                  f"{local.scheduler_address} --nthreads 1 --no-nanny --name outsider")
        outsider = subprocess.Popen(["unshare", "-rm", "sh", "-c", script], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        client = distributed.Client(local, set_as_default=False)
        try:
            client.wait_for_workers(2, timeout=60)
            names = {info["name"]: address for address, info in client.scheduler_info()["workers"].items()}
            executor = DaskExecutor(client)
            with pytest.raises(OutputError) as error:
                slice_videos(sources, storage / "views", SLICE, executor=executor)
            message = str(error.value)
            assert "\n" not in message and message.startswith("1 of 2 Dask workers cannot use the run's files: ")
            assert f"{names['outsider']} does not see {storage / 'views'}" in message
            assert list(storage.iterdir()) == []  # nothing written, the created --out removed again
        finally:
            client.close()
            outsider.send_signal(signal.SIGTERM)
            outsider.wait(timeout=30)


def test_the_probe_tells_a_folder_of_the_same_name_from_the_clients(tmp_path: Path) -> None:
    token, markers = probe.write_markers([tmp_path])
    assert probe.worker_probe([str(markers[0])], token, [], "tcp://a:1") is None
    assert probe.client_reads(markers, token, "tcp://a:1") is None
    assert probe.worker_probe([str(markers[0])], "another-token", [], "tcp://b:1").startswith("sees another folder")
    assert probe.client_reads(markers, token, "tcp://c:1").startswith("writes")
    assert probe.worker_probe([str(markers[0])], token, [(str(tmp_path / "gone.mp4"), 1)], "tcp://d:1") == \
        f"does not see input {tmp_path / 'gone.mp4'}"
    probe.remove_probe_files(markers, token, keep_markers=False)
    assert list(tmp_path.iterdir()) == []


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("how", ["option", "environment"])
def test_an_unreachable_scheduler_is_one_line_exit_3_and_touches_nothing(how: str, sources: list[Path],
                                                                        tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{_closed_port()}"
    env = dict(os.environ)  # Dask's own connect timeout (30 s): a refused connection must not wait for it
    argv = [sys.executable, "-m", "vidvpr", "slice", str(sources[0]), "--out", str(tmp_path / "out")]
    if how == "option":
        argv += ["--scheduler", address]
    else:
        env["DASK_SCHEDULER_ADDRESS"] = address
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=25)
    assert proc.returncode == 3
    assert proc.stderr.startswith(f"vidvpr: error: cannot reach the Dask scheduler at {address} (connection refused")
    assert proc.stderr.count("\n") == 1 and proc.stdout == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("address", ["nonsense:::", "head-node", "tcp://no-such-host.invalid:8786"])
def test_a_malformed_or_unknown_scheduler_address_is_one_line_at_once(address: str, sources: list[Path],
                                                                     tmp_path: Path) -> None:
    """Refused before a Dask Client exists: a failed Client lingers and prints a traceback a minute later."""
    argv = [sys.executable, "-m", "vidvpr", "slice", str(sources[0]), "--out", str(tmp_path / "out"),
            "--scheduler", address]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=50)
    assert proc.returncode == 3
    assert proc.stderr.startswith(f"vidvpr: error: cannot reach the Dask scheduler at {address} (")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_ffmpeg_dies_with_the_process_that_ran_it() -> None:
    """A worker killed mid-encode takes its ffmpeg with it (no orphan writing on for nobody): its next
    -progress report (every 0.5 s) meets a broken pipe and ffmpeg exits."""
    script = ("import sys, tempfile\nfrom pathlib import Path\nfrom vidvpr.media.ffmpeg import FfmpegPool, find_ffmpeg\n"
              "argv = [find_ffmpeg().path, '-nostdin', '-progress', 'pipe:1', '-f', 'lavfi', '-i', "
              "'testsrc2=size=320x240:rate=25', '-t', '600', '-f', 'null', '-']\n"
              "print('running', flush=True)\nFfmpegPool().run(argv, Path(tempfile.gettempdir()), 'test')\n")
    runner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert runner.stdout is not None and runner.stdout.readline() == "running\n"
    children: list[int] = []
    deadline = time.monotonic() + 30
    while not children and time.monotonic() < deadline:
        text = Path(f"/proc/{runner.pid}/task/{runner.pid}/children").read_text()
        children = [int(pid) for pid in text.split()]
        time.sleep(0.05)
    assert children, "ffmpeg never started"
    runner.kill()
    runner.wait()
    stat = Path(f"/proc/{children[0]}/stat")

    def alive() -> bool:  # neither gone nor a reaped-soon zombie
        try:
            return stat.read_text().split(")")[1].split()[0] != "Z"
        except OSError:
            return False

    deadline = time.monotonic() + 20  # ffmpeg reports every 0.5 s; a loaded machine may delay it by seconds
    while alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive()


class _BroadcastClient:
    """A Dask client whose broadcasts fail, as when a worker dies during one, `failures` times."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def scheduler_info(self, n_workers: int = -1) -> dict:
        return {"workers": {"tcp://127.0.0.1:1": {}}, "services": {}}

    def scatter(self, value: Any, broadcast: bool, hash: bool) -> str:
        from distributed.comm.core import CommClosedError

        self.calls += 1
        if self.calls <= self.failures:
            raise CommClosedError("in <TCP (closed) Scheduler Broadcast local=tcp://127.0.0.1:50472>: Stream is closed")
        return "future"


def test_a_worker_lost_while_the_model_is_sent_to_every_worker_is_sent_again(monkeypatch: pytest.MonkeyPatch,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    # kill -9 of a worker while `vidvpr eval --scheduler` broadcast the model: "internal error: CommClosedError", exit 1
    monkeypatch.setattr(dask_executor, "BROADCAST_PAUSE_S", 0.0)
    client = _BroadcastClient(failures=2)
    assert DaskExecutor(client).share("model") == "future" and client.calls == 3
    assert caplog.text.count("sending the model to every worker: a worker was lost during it") == 2
    client = _BroadcastClient(failures=3)
    with pytest.raises(ToolMissing, match=r"^sending the model to every worker failed 3 times, a worker's connection "
                                          r"closing each time \(in <TCP \(closed\) Scheduler Broadcast"):
        DaskExecutor(client).share("model")
