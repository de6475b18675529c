"""Perspective footage in: videos, image sequences and VPR-datasets-downloader folders become the
view videos and sidecars `vidvpr slice` makes, so the rest of the pipeline reads them unchanged.

    camera     the camera model (--hfov, --intrinsics, OpenCV calibration files), undistortion
    images     image sequences: natural order, times from --fps, file names or EXIF, pixels to planes
    footage    one source looked at whole before writing, read frame by frame
    view       one view video (stream copy or x264 CRF 10) and its sidecar
    positions  trajectories (frame index, named positions) and dataset definitions
    vpr_folder the VPR-datasets-downloader layout
    stage      `vidvpr import` itself
"""

from vidvpr.ingest.config import ImportConfig, IndexPositions
from vidvpr.ingest.stage import ImportSummary, import_footage

__all__ = ["ImportConfig", "ImportSummary", "IndexPositions", "import_footage"]
