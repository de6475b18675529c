"""Parsing `vidvpr encode` option strings: quantiser specs, resolutions, codec lists and presets. Pure."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from vidvpr.core.errors import BadInput
from vidvpr.encoding.codecs import CODECS, codec_names

DEFAULT_QP_STEP = 5
NAMED_HEIGHTS = {"360p": 360, "480p": 480, "720p": 720, "1080p": 1080}
MIN_SIDE = 16


def comma_items(text: str, option: str) -> list[str]:
    """The stripped comma-separated items of `text`; none when it holds no item at all ('', ' , ').
    An empty item among others ('20,,30', '20,', ',20') is refused rather than skipped: it is a
    typo (a value left out), not a choice — as `vidvpr eval` refuses '--seq-len 5,,10'."""
    parts = [part.strip() for part in text.split(",")]
    if not any(parts):
        return []
    if "" in parts:
        raise BadInput(f"{option} has an empty item in {text!r} (two commas in a row, or one at an end)")
    return parts


@dataclass(frozen=True)
class Resolution:
    """A target size: a name fixes the height (width follows the view's aspect), WxH fixes both."""

    label: str
    height: int
    width: int | None = None

    def size_for(self, view_width: int, view_height: int) -> tuple[int, int]:
        """(width, height) for a view of the given size; widths from the aspect are rounded to even."""
        if self.width is not None:
            return self.width, self.height
        return max(2, 2 * math.floor(self.height * view_width / view_height / 2 + 0.5)), self.height


def parse_qp_spec(spec: str) -> tuple[int, ...]:
    """'20..50' (step 5), '20..50:2' or '20,30,45' → sorted distinct QPs (range checked later)."""
    text = spec.strip()
    if ".." in text:
        match = re.fullmatch(r"(-?\d+)\s*\.\.\s*(-?\d+)(?:\s*:\s*(-?\d+))?", text)
        if not match:
            raise BadInput(f"--qp '{spec}' is not A..B, A..B:STEP or a list like 20,30,45")
        start, stop = int(match.group(1)), int(match.group(2))
        step = int(match.group(3)) if match.group(3) else DEFAULT_QP_STEP
        if step <= 0:
            raise BadInput(f"--qp '{spec}': step must be positive, got {step}")
        if start > stop:
            raise BadInput(f"--qp '{spec}' is an empty range ({start} > {stop}); write it low..high")
        return tuple(range(start, stop + 1, step))
    parts = comma_items(text, "--qp")
    try:
        values = [int(part) for part in parts]
    except ValueError:
        raise BadInput(f"--qp '{spec}' is not A..B, A..B:STEP or a list like 20,30,45") from None
    if not values:
        raise BadInput("--qp is empty; give e.g. 20..50 or 20,30,45")
    return tuple(sorted(set(values)))


def parse_resolutions(spec: str) -> tuple[Resolution, ...]:
    """'720p,360p,640x480' → Resolutions in the given order (duplicates dropped)."""
    found: dict[str, Resolution] = {}
    for part in (p.lower() for p in comma_items(spec, "--res")):
        if part in NAMED_HEIGHTS:
            found.setdefault(part, Resolution(part, NAMED_HEIGHTS[part]))
            continue
        match = re.fullmatch(r"(\d+)x(\d+)", part)
        if not match:
            raise BadInput(f"Unknown resolution '{part}'. Use {', '.join(NAMED_HEIGHTS)} or WxH.")
        width, height = int(match.group(1)), int(match.group(2))
        if width % 2 or height % 2 or width < MIN_SIDE or height < MIN_SIDE:
            raise BadInput(f"--res {part}: width and height must be even and at least {MIN_SIDE} (yuv420p)")
        found.setdefault(part, Resolution(part, height, width))
    if not found:
        raise BadInput(f"--res is empty; give e.g. 720p,360p or 640x360 ({', '.join(NAMED_HEIGHTS)} or WxH)")
    return tuple(found.values())


def _known_codec(name: str, option: str) -> str:
    if name not in CODECS:
        raise BadInput(f"{option}: unknown codec '{name}'. Use {codec_names()}.")
    return name


def parse_codecs(spec: str) -> tuple[str, ...]:
    """'libx264,jpeg' → codec names in order (duplicates dropped); BadInput naming the valid ones."""
    names = comma_items(spec, "--codec")
    if not names:
        raise BadInput(f"--codec is empty; give one or more of {codec_names()}")
    return tuple(dict.fromkeys(_known_codec(name, "--codec") for name in names))


def parse_qp_options(values: Iterable[str]) -> tuple[tuple[int, ...] | None, tuple[tuple[str, tuple[int, ...]], ...]]:
    """Repeated --qp values → (the grid's values or None, per-codec values).

    'SPEC' sets the values of every codec whose quantiser is a QP; 'CODEC=SPEC' (e.g.
    'jpeg=10,50,90', 'libsvtav1=20..60:10') sets one codec's own.
    """
    default: tuple[int, ...] | None = None
    given: dict[str | None, str] = {}  # what set each codec's values (None: the grid's), to refuse a second
    per_codec: dict[str, tuple[int, ...]] = {}
    for value in values:
        name, sep, spec = value.partition("=")
        codec = _known_codec(name.strip(), f"--qp {value}") if sep else None
        if codec in given:  # the second silently replaced the first: '--qp 20 --qp 30' ran QP 30 only
            whose, prefix = (f"{codec}'s", f"{codec}=") if codec else ("the grid's", "")
            raise BadInput(f"--qp {given[codec]} and --qp {value}: give {whose} values once, as one list "
                           f"(e.g. --qp {prefix}20,30)")
        given[codec] = value
        if codec is not None:
            per_codec[codec] = parse_qp_spec(spec)
        else:
            default = parse_qp_spec(value)
    return default, tuple(per_codec.items())


def parse_preset_spec(spec: str | None) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """--preset 'fast' or 'fast,libsvtav1=8,libvpx-vp9=realtime-8' → (preset for all, per codec)."""
    if spec is None:
        return None, ()
    shared: str | None = None
    per_codec: dict[str, str] = {}
    for part in comma_items(spec, "--preset"):
        name, sep, preset = part.partition("=")
        if sep:
            if not preset.strip():
                raise BadInput(f"--preset {part}: no preset after '='; give e.g. {name.strip()}=PRESET")
            per_codec[_known_codec(name.strip(), f"--preset {part}")] = preset.strip()
        else:
            shared = part
    return shared, tuple(per_codec.items())
