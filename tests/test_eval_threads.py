"""The offline model's NetVLAD initialisation, and so its fingerprint and the descriptor cache's keys,
do not depend on how many threads torch runs (MKL/oneDNN round differently per split of a batch)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.test_eval import dataset  # noqa: F401  (a module fixture)
from tests.test_manifest import sliced_views  # noqa: F401  (a session fixture)


def _fingerprint(manifest: Path, enc: Path, out: Path, threads: str) -> tuple[str, float]:
    env = {**os.environ, "MKL_NUM_THREADS": threads, "OMP_NUM_THREADS": threads}
    subprocess.run([sys.executable, "-m", "vidvpr", "eval", str(manifest), "--enc", str(enc), "--cells", "reference",
                    "--out", str(out), "--quiet"], check=True, env=env)
    model = json.loads((out / "results.json").read_text())["models"][0]
    init = json.loads(next((out / "models").glob("*-netvlad-init.json")).read_text())
    return model["fingerprint"], init["alpha"]


def test_the_offline_model_has_the_same_fingerprint_on_one_thread_and_on_two(dataset, tmp_path: Path) -> None:  # noqa: F811
    manifest, enc = dataset
    # with torch on two threads the local features were rounded differently (alpha 48.649640 against
    # 48.649644 on the small demo), so a shared --cache missed every entry
    assert _fingerprint(manifest, enc, tmp_path / "one", "1") == _fingerprint(manifest, enc, tmp_path / "two", "2")
