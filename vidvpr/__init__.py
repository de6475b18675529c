"""vidvpr: video-based visual place recognition datasets from 360° video, and how compression hurts recall.

The stable Python API is the stage functions and their configs, importable from here::

    from vidvpr import slice_videos, SliceConfig, import_footage, ImportConfig, encode_grid, EncodeConfig
    from vidvpr import build_manifest, load_definition, load_manifest, export_vpr, ExportConfig, make_demo

Imports are lazy, so ``import vidvpr`` stays cheap; everything else lives in the subpackages
(`vidvpr.slicing`, `vidvpr.encoding`, `vidvpr.dataset`, ...) and may change between versions.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_API = {
    "slice_videos": "vidvpr.slicing.stage",
    "SliceConfig": "vidvpr.slicing.config",
    "ViewEncoding": "vidvpr.slicing.config",
    "import_footage": "vidvpr.ingest.stage",
    "ImportConfig": "vidvpr.ingest.config",
    "IndexPositions": "vidvpr.ingest.config",
    "encode_grid": "vidvpr.encoding.grid",
    "plan_encode": "vidvpr.encoding.grid",
    "EncodeConfig": "vidvpr.encoding.plan",
    "parse_qp_spec": "vidvpr.encoding.plan",
    "parse_resolutions": "vidvpr.encoding.plan",
    "load_definition": "vidvpr.dataset.definition",
    "definition_from_options": "vidvpr.dataset.definition",
    "build_manifest": "vidvpr.dataset.manifest",
    "load_manifest": "vidvpr.dataset.loading",
    "export_vpr": "vidvpr.dataset.export",
    "ExportConfig": "vidvpr.dataset.export",
    "evaluate": "vidvpr.evaluate.rerun",
    "evaluate_grid": "vidvpr.evaluate.grid",
    "EvalConfig": "vidvpr.evaluate.config",
    "load_model": "vidvpr.models.registry",
    "make_demo": "vidvpr.demo.make",
    "run_demo": "vidvpr.demo.run",
    "DemoConfig": "vidvpr.demo.make",
    "BadInput": "vidvpr.core.errors",
    "VidvprError": "vidvpr.core.errors",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'vidvpr' has no attribute {name!r}")
