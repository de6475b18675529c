"""The held-out world of `vidvpr demo study`: a second world nothing is trained or tuned on.

It is the demo definition's `heldout_definition()`: the same renderer, camera, walks, views and
ground truth, in a world of another seed, route and places (other posters, plates, walls), and
with the night walk. Under DIR/heldout it is rendered (at the size of the demo in DIR), sliced,
encoded at the cells the study evaluates, and given one manifest per query walk, each searching
that walk in the day database walk:

    DIR/heldout/<walk>/<walk>.mp4, trajectory   the rendered walks (demo.json records them)
    DIR/heldout/views/, enc/                    view videos and the encode cells
    DIR/heldout/dataset-<walk>.toml             the manifest definition: database walk(s) + <walk>
    DIR/heldout/manifest-<walk>/                its manifest (vidvpr manifest)

Every stage skips finished work, so a rerun of the study costs seconds here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vidvpr.core.errors import BadInput
from vidvpr.core.provenance import sha256_file
from vidvpr.dataset.definition import load_definition as load_dataset_definition
from vidvpr.dataset.manifest import build_manifest
from vidvpr.demo.definition import DemoDefinition, TraversalSpec
from vidvpr.demo.make import write_manifest_definition
from vidvpr.demo.run import DemoRunConfig, Progress, no_progress, render_slice_encode
from vidvpr.run import Executor

HELDOUT_DIR = "heldout"


@dataclass
class HeldoutWorld:
    """The held-out world on disk: its definition, a manifest per query walk, and what every video is."""

    out_dir: Path
    definition: DemoDefinition
    manifests: dict[str, Path]  # query walk name -> manifest folder (database walks + that walk)
    lighting: dict[str, str]  # query walk name -> "day" or "night"
    videos: dict[str, str] = field(default_factory=dict)  # every video under out_dir (relative path) -> content hash
    stages_s: dict[str, float] = field(default_factory=dict)

    def walk(self, lighting: str) -> str:
        """The query walk of this lighting (BadInput if the world has none)."""
        names = [name for name, light in self.lighting.items() if light == lighting]
        if not names:
            raise BadInput(f"{self.out_dir}: the held-out world has no {lighting} query walk")
        return names[0]


def heldout_definition(definition: DemoDefinition) -> DemoDefinition:
    """The held-out world of a demo definition, or BadInput if it has none."""
    try:
        return definition.heldout_definition()
    except ValueError as exc:
        raise BadInput(f"demo definition {definition.name}: {exc}") from None


def prepare_heldout(demo_dir: Path, definition: DemoDefinition, size: str, qps: tuple[int, ...], resolution: str,
                    progress: Progress = no_progress, executor: Executor | None = None) -> HeldoutWorld:
    """Render, slice and encode (at `resolution` × `qps`, no VMAF) the held-out world of `definition`
    under `demo_dir`/heldout, and build a manifest per query walk."""
    world = heldout_definition(definition)
    out_dir = Path(demo_dir) / HELDOUT_DIR
    timings: dict[str, float] = {}
    config = DemoRunConfig(size=size, qps=qps, resolutions=resolution, vmaf=False, definition=world,
                           definition_source=f"heldout world of {definition.name}")
    render_slice_encode(out_dir, config, progress, executor, timings)
    database = [t for t in world.traversals if t.role == "database"]
    manifests, lighting = {}, {}
    for walk in (t for t in world.traversals if t.role == "query"):
        manifests[walk.name] = _manifest(out_dir, world, database, walk)
        lighting[walk.name] = walk.lighting
    videos = {path.relative_to(out_dir).as_posix(): sha256_file(path) for path in sorted(out_dir.rglob("*.mp4"))
              if not path.name.startswith(".")}
    return HeldoutWorld(out_dir, world, manifests, lighting, videos, timings)


def _manifest(out_dir: Path, world: DemoDefinition, database: list[TraversalSpec], walk: TraversalSpec) -> Path:
    """The manifest searching `walk` in the database walks (rebuilt only when its inputs changed)."""
    definition = out_dir / f"dataset-{walk.name}.toml"
    write_manifest_definition(definition, world, traversals=[*database, walk])
    manifest = out_dir / f"manifest-{walk.name}"
    build_manifest(load_dataset_definition(definition), manifest)
    return manifest
