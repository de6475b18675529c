"""Slicing the same input twice gives the same bytes, whatever the heap held before (README,
"Reproducible views"): x264 reads bytes it never wrote, so none of them may be left to chance."""

from __future__ import annotations

import ctypes
import hashlib
from pathlib import Path

import av
import numpy as np
import pytest

from vidvpr.core.heap import PERTURB_BYTE, defined_heap
from vidvpr.slicing.config import SliceConfig
from vidvpr.slicing.slicer import slice_video
from vidvpr.slicing.writer import yuv420p_frame, yuv420p_plane_views

# 80x32 views (the small demo's): their 40-pixel chroma rows are not a multiple of 16, the case
# in which x264 copies row padding too; four views encode in four threads at once
VIEW_SIZE = (80, 32)


def test_an_encoder_frame_holds_zeros_in_its_row_padding_whatever_the_heap_held() -> None:
    width, height = VIEW_SIZE
    for _ in range(8):  # leave freed frames full of 0xAB where the next one may be allocated
        dirty = av.VideoFrame(width, height, "yuv420p")
        for plane in dirty.planes:
            np.frombuffer(plane, np.uint8)[...] = 0xAB
        del dirty
    buffer = np.arange(height * 3 // 2 * width, dtype=np.uint8).reshape(-1, width)
    frame = yuv420p_frame(buffer, width, height)
    for plane, picture in zip(frame.planes, yuv420p_plane_views(buffer, width, height)):
        rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
        assert np.array_equal(rows[:, :picture.shape[1]], picture)
        assert not rows[:, picture.shape[1]:].any(), "row padding left as the allocator found it"


def _fresh_allocation_bytes(size: int = 1 << 16) -> bytes:
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    address = libc.malloc(size)
    try:
        return ctypes.string_at(address, size)
    finally:
        libc.free(ctypes.c_void_p(address))


def test_new_allocations_hold_a_fixed_byte_while_encoders_run() -> None:
    with defined_heap() as applied:
        if not applied:
            pytest.skip("this C library has no M_PERTURB (not glibc)")
        held = _fresh_allocation_bytes()
    assert held == bytes([~PERTURB_BYTE & 0xFF]) * len(held)


def test_an_encoder_finishing_leaves_the_heap_defined_for_those_still_running() -> None:
    with defined_heap() as applied:
        if not applied:
            pytest.skip("this C library has no M_PERTURB (not glibc)")
        with defined_heap():
            pass
        held = _fresh_allocation_bytes()
    assert held == bytes([~PERTURB_BYTE & 0xFF]) * len(held)


@pytest.mark.slow
def test_slicing_the_same_video_again_gives_identical_bytes(equirect_video: Path, tmp_path: Path) -> None:
    config = SliceConfig(size=VIEW_SIZE, force=True)
    digests = set()
    for run in range(8):
        slice_video(equirect_video, tmp_path / f"run{run}", config)
        digests.add(tuple(hashlib.sha256(path.read_bytes()).hexdigest()
                          for path in sorted((tmp_path / f"run{run}").rglob("*.mp4"))))
    assert len(digests) == 1, f"{len(digests)} different sets of view videos from 8 slices of one input"
