"""Training pairs: (the clean image the teacher sees, the same image as the student sees it), with positions.

Two kinds of training data, one interface (`TrainingSet`):

* a vidvpr dataset (`--train MANIFEST`): the manifest's DATABASE rows only (queries are never
  trained on); the teacher sees the reference view frame, the student the same frame in each
  `--lq` encode cell (one pair per cell), or the reference frame degraded on the fly. Video frames
  are decoded once into ``RUN/frames/`` (uint8 arrays, memory-mapped, each with a sidecar written
  last and checked before reuse: `vidvpr.distill.frames`), so training reads them at random
  without seeking in videos; the folder is removed when the run completes.
* an image folder in the VPR-datasets-downloader layout (`--train FOLDER`): ``images/train/
  database`` and ``images/train/queries`` when present, else the images in FOLDER itself;
  positions (and headings) from the file names. The student sees the degraded image.

Pair p is (variant p // places, place p % places): a variant is an encode cell, or "reference"
when the student's images are made on the fly.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from vidvpr.core.errors import BadInput
from vidvpr.core.provenance import sha256_file
from vidvpr.core.records import FileRecord
from vidvpr.dataset.manifest import Manifest, load_manifest
from vidvpr.dataset.records import MANIFEST_FILE
from vidvpr.dataset.vpr_names import parse_vpr_filename
from vidvpr.descriptors.frames import frame_batches, normalise_images
from vidvpr.distill.config import FOLDER_REFERENCE_RADIUS_M
from vidvpr.distill.degrade import LowQuality
from vidvpr.distill.frames import FrameStore
from vidvpr.encoding.table import finished_cells
from vidvpr.evaluate.cells import GridCell, cell_name, encode_folder, encoded_cells, reference_cell

REFERENCE = "reference"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
TRAIN_FOLDERS = ("images/train/database", "images/train/queries")
FRAMES_DIR = "frames"


@dataclass(frozen=True)
class Place:
    """One clean training image: where it was taken and which sequence (video or folder) it belongs to."""

    id: str
    easting_m: float
    northing_m: float
    heading_deg: float | None
    sequence: str


@dataclass(frozen=True)
class HqSource:
    """Clean images that share one descriptor-cache key: a view video and its frames, or a folder listing."""

    name: str
    record: FileRecord
    frames: list[int]
    places: list[int]  # the place of each frame, in the same order


class TrainingSet(ABC):
    """Places, the student's variants of them, and how to read both sides of a pair."""

    kind: str
    source: Path
    places: list[Place]
    variants: tuple[str, ...]
    low_quality: LowQuality
    reference_radius_m: float  # the radius a correct match lies within, as the data is evaluated
    max_heading_diff_deg: float | None

    @property
    def pairs(self) -> int:
        return len(self.variants) * len(self.places)

    def split(self, pair: int) -> tuple[int, int]:
        """(variant, place) of a pair index."""
        return divmod(int(pair), len(self.places))

    def positions(self) -> np.ndarray:
        return np.array([(p.easting_m, p.northing_m) for p in self.places], dtype=np.float64).reshape(-1, 2)

    def headings(self) -> np.ndarray | None:
        values = [p.heading_deg for p in self.places]
        return None if any(v is None for v in values) else np.asarray(values, dtype=np.float64)

    def identity(self) -> dict[str, object]:
        """What the training data is, for the run's configuration hash and sidecar."""
        return {"kind": self.kind, "source": str(self.source.resolve()), "places": len(self.places),
                "images": {s.name: s.record.hash for s in self.hq_sources()}, "lq": self.low_quality.names}

    def trained_videos(self) -> dict[str, str]:
        """The content hash of every video (or image folder) training reads, by name, so that anyone can
        check what a student has seen (teacher's side and student's side)."""
        return {s.name: s.record.hash for s in self.hq_sources()}

    def lq_images(self, pairs: Sequence[int]) -> list[np.ndarray]:
        """The student's RGB images of `pairs` (degradations applied)."""
        return [self.low_quality.degrade(self._variant_image(*self.split(p))) for p in pairs]

    def prepare(self, need_hq: bool) -> None:
        """Make every image readable at random (decode videos once); `need_hq` for teacher-every-step training."""

    def cleanup(self) -> None:
        """Remove what `prepare` made (a completed run needs it no more)."""

    @abstractmethod
    def hq_sources(self) -> list[HqSource]:
        """The clean images grouped by descriptor-cache key."""

    @abstractmethod
    def hq_batches(self, source: HqSource, batch_size: int) -> Iterator[tuple[list[int], torch.Tensor]]:
        """(places, ImageNet-normalised clean batch) over `source`, each batch one image size."""

    @abstractmethod
    def hq_images(self, places: Sequence[int]) -> list[np.ndarray]:
        """The teacher's clean RGB images of `places`."""

    def variant_image(self, variant: int, place: int) -> np.ndarray:
        """A variant's image of a place before on-the-fly degradations."""
        return self._variant_image(variant, place)

    @abstractmethod
    def _variant_image(self, variant: int, place: int) -> np.ndarray:
        """A variant's image of a place before on-the-fly degradations."""


# ---------------------------------------------------------------- vidvpr datasets


class VideoTrainingSet(TrainingSet):
    """The database recordings of a vidvpr dataset; the student's frames from encode cells or degraded."""

    def __init__(self, manifest: Manifest, cells: list[GridCell], low_quality: LowQuality, run_dir: Path) -> None:
        self.kind, self.source, self.manifest = "vidvpr-dataset", manifest.directory, manifest
        self.low_quality = low_quality
        self.reference = reference_cell(manifest)
        self.cells = {REFERENCE: self.reference, **{cell.name: cell for cell in cells}}
        self.variants = tuple(cell.name for cell in cells) or (REFERENCE,)
        rows = manifest.database
        self.places = [Place(r.id, r.easting_m, r.northing_m, r.heading_deg, f"{r.recording}/{r.view}") for r in rows]
        parameters = manifest.meta.parameters
        self.reference_radius_m = float(parameters["radius_m"])
        self.max_heading_diff_deg = parameters.get("max_heading_diff_deg")
        self._groups: dict[tuple[str, str], tuple[list[int], list[int]]] = {}
        for i, row in enumerate(rows):
            frames, places = self._groups.setdefault((row.recording, row.view), ([], []))
            frames.append(row.frame)
            places.append(i)
        self._where = {place: (key, k) for key, (_, places) in self._groups.items() for k, place in enumerate(places)}
        self._frames = FrameStore(Path(run_dir) / FRAMES_DIR)
        self._stores: dict[tuple[str, tuple[str, str]], np.ndarray] = {}

    def hq_sources(self) -> list[HqSource]:
        return [HqSource(f"{rec}/{view}", self.reference.videos[(rec, view)][1], frames, places)
                for (rec, view), (frames, places) in self._groups.items()]

    def trained_videos(self) -> dict[str, str]:
        names = dict.fromkeys((REFERENCE, *self.variants))  # the reference views, then each --lq cell
        return {f"{name}/{rec}/{view}": self.cells[name].videos[(rec, view)][1].hash
                for name in names for rec, view in self._groups}

    def hq_batches(self, source: HqSource, batch_size: int) -> Iterator[tuple[list[int], torch.Tensor]]:
        video = self.reference.videos[tuple(source.name.split("/", 1))][0]  # type: ignore[index]
        place_of = dict(zip(source.frames, source.places))
        for frames, batch in frame_batches(video, source.frames, batch_size):
            yield [place_of[f] for f in frames], batch

    def prepare(self, need_hq: bool) -> None:
        names = list(self.variants) + ([REFERENCE] if need_hq and REFERENCE not in self.variants else [])
        for name in names:
            for key, (frames, _) in self._groups.items():
                self._stores[(name, key)] = self._store(self.cells[name], key, frames)

    def cleanup(self) -> None:
        self._stores.clear()
        self._frames.clear()

    def hq_images(self, places: Sequence[int]) -> list[np.ndarray]:
        return [self._image(REFERENCE, place) for place in places]

    def _variant_image(self, variant: int, place: int) -> np.ndarray:
        return self._image(self.variants[variant], place)

    def _image(self, name: str, place: int) -> np.ndarray:
        key, k = self._where[place]
        if (name, key) not in self._stores:
            self.prepare(need_hq=name == REFERENCE)
        return np.asarray(self._stores[(name, key)][k])

    def _store(self, cell: GridCell, key: tuple[str, str], frames: list[int]) -> np.ndarray:
        """The decoded `frames` of one cell video as a read-only memory map, decoded on first use."""
        video, record = cell.videos[key]
        return self._frames.frames_of(video, record, frames)


def _train_cells(manifest: Manifest, enc_dir: Path | None, wanted: tuple[str, ...]) -> list[GridCell]:
    """The `--lq` cells over the database views, or BadInput naming a cell that was never encoded."""
    if not wanted:
        return []
    if enc_dir is None:
        sibling = manifest.directory.parent / "enc"
        if not sibling.is_dir():
            raise BadInput(f"--lq {wanted[0]} is an encode cell: give the encode folder with --enc")
        enc_dir = sibling
    enc_dir = encode_folder(enc_dir)
    views = {(r.recording, r.view) for r in manifest.database}
    present = sorted({cell_name(c.codec, c.resolution, c.qp) for _, c in finished_cells(Path(enc_dir))
                      if (c.recording, c.view) in views})
    missing = [name for name in wanted if name not in present]
    if missing:
        has = f"it has {', '.join(present)}" if present else "it has no cells of the database views"
        raise BadInput(f"--lq {missing[0]}: that cell was never encoded in {enc_dir} ({has})")
    cells = {cell.name: cell for cell in encoded_cells(manifest, Path(enc_dir), list(wanted))}
    return [cells[name] for name in wanted]


# ---------------------------------------------------------------- image folders


class ImageTrainingSet(TrainingSet):
    """Images named in the VPR-datasets-downloader layout; the student sees them degraded on the fly."""

    def __init__(self, folder: Path, files: list[Path], low_quality: LowQuality) -> None:
        self.kind, self.source, self.files = "image-folder", folder, files
        self.low_quality = low_quality
        self.variants = (REFERENCE,)
        self.places = []
        for path in files:
            try:
                name = parse_vpr_filename(path)
            except ValueError as exc:
                raise BadInput(f"{path}: {exc}") from None
            self.places.append(Place(path.name, name.easting_m, name.northing_m,
                                     None if name.heading_deg is None else float(name.heading_deg % 360),
                                     path.parent.name))
        self.reference_radius_m = FOLDER_REFERENCE_RADIUS_M
        self.max_heading_diff_deg = None
        digest = hashlib.sha256()
        for path in files:
            digest.update(f"{path.relative_to(folder).as_posix()}|{sha256_file(path)}\n".encode())
        self._record = FileRecord(path=str(folder), bytes=sum(p.stat().st_size for p in files),
                                  hash="sha256:" + digest.hexdigest())

    def hq_sources(self) -> list[HqSource]:
        indices = list(range(len(self.files)))
        return [HqSource(self.source.name or str(self.source), self._record, indices, indices)]

    def hq_batches(self, source: HqSource, batch_size: int) -> Iterator[tuple[list[int], torch.Tensor]]:
        pending: list[int] = []
        images: list[np.ndarray] = []
        for place in source.places:
            image = self._variant_image(0, place)
            if images and (image.shape != images[0].shape or len(images) == batch_size):
                yield pending, normalise_images(images)
                pending, images = [], []
            pending.append(place)
            images.append(image)
        if images:
            yield pending, normalise_images(images)

    def hq_images(self, places: Sequence[int]) -> list[np.ndarray]:
        return [self._variant_image(0, place) for place in places]

    def _variant_image(self, variant: int, place: int) -> np.ndarray:
        path = self.files[place]
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise BadInput(f"{path}: not a readable image")
        return np.ascontiguousarray(bgr[..., ::-1])


def _folder_images(folder: Path) -> list[Path]:
    roots = [folder / sub for sub in TRAIN_FOLDERS if (folder / sub).is_dir()] or [folder]
    files = sorted(p for root in roots for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        others = sorted(p.parent.name for p in folder.glob("images/*/database") if p.is_dir())
        hint = (f"; it has images/{', images/'.join(others)} only (evaluation splits: `vidvpr export MANIFEST --split "
                "train --out DIR` writes images/train from a training manifest)") if others else ""
        raise BadInput(f"{folder}: no training images (expected {TRAIN_FOLDERS[0]}/*.jpg in the VPR-datasets-"
                       f"downloader layout, a folder of such images, or a vidvpr manifest folder){hint}")
    return files


def load_training_set(train: Path, low_quality: LowQuality, run_dir: Path, enc_dir: Path | None = None,
                      root: Path | None = None) -> TrainingSet:
    """The training set at `train`: a vidvpr manifest folder (database rows) or a VPR image folder."""
    train = Path(train)
    if not train.is_dir():
        raise BadInput(f"{train}: training data not found (a vidvpr manifest folder or a VPR image folder)")
    if (train / MANIFEST_FILE).is_file():
        manifest = load_manifest(train, root)
        if not manifest.database:
            raise BadInput(f"{train}: the manifest's database is empty: nothing to train on")
        database_only = replace(manifest, queries=[], positives=[])  # never train on (or need) the queries
        cells = _train_cells(database_only, enc_dir, low_quality.cells)
        return VideoTrainingSet(database_only, cells, low_quality, run_dir)
    if low_quality.cells:
        raise BadInput(f"--lq {low_quality.cells[0]} is an encode cell: cells need a vidvpr dataset (manifest "
                       f"folder) as --train; {train} is an image folder, use jpeg:Q or resize:NNNp")
    return ImageTrainingSet(train, _folder_images(train), low_quality)
