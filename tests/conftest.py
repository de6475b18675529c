"""Shared fixtures: synthetic media made once per session, the real samples when present."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: see vidvpr/cli/__init__.py

import pytest

from tests.media import make_equirect_video

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def isolated_hash_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the content-hash cache of the tests out of the user's ~/.cache."""
    import os

    os.environ["VIDVPR_CACHE_DIR"] = str(tmp_path_factory.mktemp("vidvpr-cache"))


@pytest.fixture(scope="session")
def equirect_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """256×128 equirect video, 12 frames at 30 fps, markers at yaw 0/90/180/270, frame codes."""
    return make_equirect_video(tmp_path_factory.mktemp("media") / "room.mp4")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data with the real 360° samples; skips the test when it is absent."""
    if not (SHARED_DATA / "testRoom1_1920Mono.mp4").exists():
        pytest.skip(f"real samples not found at {SHARED_DATA}")
    return SHARED_DATA
