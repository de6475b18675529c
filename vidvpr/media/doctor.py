"""`vidvpr doctor`: what this machine has for vidvpr, and whether it is enough."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vidvpr import __version__
from vidvpr.core.errors import VidvprError


@dataclass
class Check:
    """One thing looked for: what was found, and whether vidvpr cannot work without it."""

    name: str
    found: str | None
    required: bool = True

    @property
    def ok(self) -> bool:
        return self.found is not None or not self.required


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def lines(self) -> list[str]:
        out = [f"vidvpr {__version__}"]
        for check in self.checks:
            mark = "ok  " if check.found is not None else ("MISSING" if check.required else "no  ")
            out.append(f"{mark:8}{check.name:12}{check.found or ('required' if check.required else 'optional')}")
        out.append("all required tools found" if self.ok else "some required tools are missing")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [{"name": c.name, "found": c.found, "required": c.required, "ok": c.ok}
                                          for c in self.checks]}


def _try(probe: Any) -> str | None:
    try:
        return probe()
    except (ImportError, OSError, VidvprError, RuntimeError):
        return None


def _encoders() -> dict[str, list[str]]:
    """ffmpeg encoder → the `vidvpr encode --codec` names that need it (jpeg needs OpenCV instead)."""
    from vidvpr.encoding.codecs import CODECS

    found: dict[str, list[str]] = {}
    for codec in CODECS.values():
        if codec.encoder is not None:
            found.setdefault(codec.encoder, []).append(codec.name)
    return found


def check_environment(ffmpeg_path: str | None = None) -> DoctorReport:
    """Probe ffmpeg (each encoder `vidvpr encode` can drive, libvmaf, v360), PyAV, torch, faiss and OpenCV."""
    from vidvpr.media.ffmpeg import find_ffmpeg

    encoders = _encoders()
    report = DoctorReport()
    ffmpeg = _try(lambda: find_ffmpeg(ffmpeg_path))
    report.checks.append(Check("ffmpeg", f"{ffmpeg.version} ({ffmpeg.source}: {ffmpeg.path})" if ffmpeg else None))
    for name, codecs in encoders.items():
        present = ffmpeg is not None and ffmpeg.has_encoder(name)
        found = f"in ffmpeg (--codec {', '.join(codecs)})" if present else None
        report.checks.append(Check(name, found, name == "libx264"))
    for name, present in (("libvmaf", ffmpeg and ffmpeg.has_vmaf), ("v360", ffmpeg and "v360" in ffmpeg.filters)):
        report.checks.append(Check(name, "in ffmpeg" if present else None, False))

    def pyav() -> str:
        import av

        codecs = "libx264" if "libx264" in av.codecs_available else "no libx264"
        return f"{av.__version__} (libavcodec {'.'.join(map(str, av.library_versions['libavcodec']))}, {codecs})"

    def torch_version() -> str:
        import torch

        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        return f"{torch.__version__} (devices: {', '.join(devices)}; threads: {torch.get_num_threads()})"

    def faiss_version() -> str:
        import faiss

        return str(faiss.__version__)

    def opencv_version() -> str:
        import cv2

        return f"{cv2.__version__} (libjpeg for --codec jpeg)"

    report.checks.append(Check("pyav", _try(pyav)))
    report.checks.append(Check("opencv", _try(opencv_version)))
    report.checks.append(Check("torch", _try(torch_version)))
    report.checks.append(Check("faiss", _try(faiss_version)))
    return report
