"""The demo dataset's definition: one pydantic model whose defaults are the built-in demo.

manifests/demo.toml is the same definition written out (a test keeps the two identical);
`--definition FILE` reads any TOML of that shape, keys left out taking the built-in values.
The model validates, words the errors and supplies the defaults; the defaults live in code, not
a data file, so an installed package needs no package data.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, model_validator

from vidvpr.core.records import Strict, read_toml_file, validate_data, validation_problem

SHAPES = ("rectangle",)
ROLES = ("database", "query")
TRAJECTORY_FORMATS = ("csv-xy", "tum")
CAMERAS = ("equirect", "dual-fisheye")  # `demo make --camera`: equirect .mp4, or Insta360-shaped .insv (demo.fisheye)
NAME_REGEX = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
MIN_WALL_CLEARANCE_M = 0.3


class DemoPart(Strict):
    """Demo definition tables: strict types, unknown keys refused, immutable (hashable for caches)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True, frozen=True)


class RouteSpec(DemoPart):
    """The loop's geometry. `length_m` is the perimeter of the corridor centreline."""

    shape: Literal["rectangle"] = "rectangle"
    length_m: float = Field(480.0, gt=0)
    aspect: float = Field(3.0, ge=1.0, description="east-west side / north-south side")
    corridor_width_m: float = Field(3.0, gt=2 * MIN_WALL_CLEARANCE_M)
    wall_height_m: float = Field(3.0, gt=0, le=10.0)
    camera_height_m: float = Field(1.6, gt=0)
    corner_radius_m: float = Field(1.5, gt=0, description="the walker's path rounds each corner with this radius")

    @property
    def sides_m(self) -> tuple[float, float]:
        """(A, B): east-west and north-south side of the centreline rectangle."""
        short = self.length_m / (2.0 * (1.0 + self.aspect))
        return self.aspect * short, short

    @property
    def half_width_m(self) -> float:
        return self.corridor_width_m / 2.0

    @property
    def corners_s_m(self) -> tuple[float, float, float, float]:
        """Arc length of the centreline corners: NW, NE, SE, SW (= the end of the loop)."""
        a, b = self.sides_m
        return b, a + b, a + 2 * b, 2 * (a + b)

    def loop_length_m(self, lateral_offset_m: float) -> float:
        """Length of one loop walked `lateral_offset_m` to the right of the centreline."""
        return self.length_m - 8.0 * self.corner_radius_m + 2.0 * math.pi * (self.corner_radius_m - lateral_offset_m)


class PlacesSpec(DemoPart):
    """How many places (posters) line the route, and how many of them share a design."""

    count: int = Field(96, ge=1)
    shared_designs: int = Field(3, ge=0, description="designs that appear at several places (perceptual aliasing)")
    places_sharing: int = Field(12, ge=0, description="places that show one of the shared designs")

    @property
    def distinct_designs(self) -> int:
        return self.count - self.places_sharing + (self.shared_designs if self.places_sharing else 0)


class TraversalSpec(DemoPart):
    """One walk around the loop: which split it feeds, where and how it is filmed."""

    name: str = Field(pattern=NAME_REGEX)
    role: Literal["database", "query"]
    lateral_offset_m: float = Field(0.0, description="right of the corridor centreline (negative: left)")
    speed_mps: float = Field(1.4, gt=0)
    fps: float = Field(1.0, gt=0, le=60)
    start_m: float = Field(20.0, description="where the walk starts, metres along the west corridor")
    lighting_gain: float = Field(1.0, gt=0)
    tint_rgb: tuple[float, float, float] = (1.0, 1.0, 1.0)
    noise_std: float = Field(0.0, ge=0, description="sensor noise in 8-bit levels")
    trajectory_format: Literal["csv-xy", "tum"] = "csv-xy"
    # day: the ceiling lights on; night: off, but for scattered lamps and the camera's own light
    lighting: Literal["day", "night"] = "day"


class EncodingSpec(DemoPart):
    """How the equirect videos are encoded (fixed threads: x264 output depends on the thread count)."""

    codec: str = "libx264"
    crf: int = Field(18, ge=0, le=51)
    preset: str = "veryfast"
    threads: int = Field(2, ge=1)
    pix_fmt: str = "yuv420p"


class ViewsSpec(DemoPart):
    """The perspective views the demo is meant to be sliced into (`vidvpr slice --yaw --fov`)."""

    yaws_deg: tuple[float, ...] = Field((0.0, 90.0, 180.0, 270.0), min_length=1)
    fov_deg: float = Field(90.0, ge=1.0, le=179.0)


class GroundTruthSpec(DemoPart):
    radius_m: float = Field(5.0, gt=0, description="a query's positives: database frames within this distance")
    # four views share each position: a view is only a positive of a query view facing the same way
    max_heading_diff_deg: float | None = Field(45.0, gt=0, le=180,
                                               description="and facing within this many degrees")


def _default_traversals() -> tuple[TraversalSpec, ...]:
    # The query is dimmer, warmer, noisier and walks 0.35 m right of the database's line. In a 3 m
    # corridor the side views look at a wall 1.3-1.7 m away, so the same wall appears at most 1.3×
    # larger in one traversal than in the other; walking 0.9 m apart (as before: -0.4 and +0.5 m)
    # made that nearly 2× and side views were almost never recognised (recall@1 under 0.1).
    return (
        TraversalSpec(name="database", role="database", lateral_offset_m=-0.15, speed_mps=1.4, fps=1.0,
                      lighting_gain=1.0, tint_rgb=(1.0, 1.0, 1.0), noise_std=0.0, trajectory_format="csv-xy"),
        TraversalSpec(name="query", role="query", lateral_offset_m=0.2, speed_mps=1.6, fps=1.0,
                      lighting_gain=0.7, tint_rgb=(1.08, 1.0, 0.88), noise_std=1.5, trajectory_format="csv-xy"),
    )


def _default_night() -> TraversalSpec:
    # the query's walk after dark: lit by a few lamps and the camera's own light (vidvpr.demo.lighting),
    # filmed with a lower exposure and more sensor noise
    return TraversalSpec(name="night", role="query", lateral_offset_m=0.2, speed_mps=1.6, fps=1.0,
                         lighting_gain=0.8, tint_rgb=(1.0, 0.96, 0.88), noise_std=4.0, trajectory_format="csv-xy",
                         lighting="night")


class HeldoutSpec(DemoPart):
    """The held-out world of `vidvpr demo study`: the same renderer, camera and walks (and the night
    walk) in a world of another seed, route and places, which nothing is trained or tuned on."""

    seed: int = 23
    route: RouteSpec = RouteSpec(length_m=400.0, aspect=2.0)
    places: PlacesSpec = PlacesSpec(count=80, shared_designs=3, places_sharing=10)


class DemoDefinition(DemoPart):
    """The demo dataset. These defaults are the built-in demo; manifests/demo.toml spells them out."""

    name: str = Field("vidvpr-demo", pattern=NAME_REGEX)
    seed: int = 11
    route: RouteSpec = RouteSpec()
    places: PlacesSpec = PlacesSpec()
    traversals: tuple[TraversalSpec, ...] = Field(default_factory=_default_traversals, min_length=1)
    sizes: dict[str, tuple[int, int]] = Field(default_factory=lambda: {"default": (1024, 512), "small": (256, 128)},
                                              min_length=1)
    ground_truth: GroundTruthSpec = GroundTruthSpec()
    views: ViewsSpec = ViewsSpec()
    encoding: EncodingSpec = EncodingSpec()
    night: TraversalSpec = Field(default_factory=_default_night)
    heldout: HeldoutSpec | None = HeldoutSpec()  # None only in a held-out world itself (heldout_definition)

    @model_validator(mode="after")
    def _walkable(self) -> DemoDefinition:
        """Cross-field checks: the world can be built and every traversal walked and filmed."""
        route, places = self.route, self.places
        if min(route.sides_m) <= 2 * route.corridor_width_m + 2 * route.corner_radius_m:
            raise ValueError(f"route.length_m {route.length_m:g} is too short for aspect {route.aspect:g}: the "
                             f"loop's short side ({min(route.sides_m):.1f} m) must exceed twice the corridor width "
                             "plus twice the corner radius")
        if route.camera_height_m >= route.wall_height_m:
            raise ValueError(f"route.camera_height_m must be below wall_height_m ({route.wall_height_m:g})")
        if places.places_sharing > places.count:
            raise ValueError(f"places.places_sharing must be at most places.count={places.count}")
        if places.places_sharing and places.shared_designs < 1:
            raise ValueError("places.shared_designs must be >= 1 when places share designs")
        spacing = route.length_m / places.count
        if spacing < 2.5:
            raise ValueError(f"places.count {places.count} leaves {spacing:.1f} m per place; posters need at least 2.5 m")
        names = [t.name for t in self.traversals]
        if len(set(names)) != len(names):
            raise ValueError(f"traversal names must be unique, got {', '.join(names)}")
        limit = min(route.half_width_m - MIN_WALL_CLEARANCE_M, route.corner_radius_m - 0.1)
        for t in self.traversals:
            if abs(t.lateral_offset_m) > limit:
                raise ValueError(f"traversal '{t.name}': lateral_offset_m must be within ±{limit:g} m, "
                                 f"got {t.lateral_offset_m:g}")
            if route.loop_length_m(t.lateral_offset_m) / t.speed_mps * t.fps < 2:
                raise ValueError(f"traversal '{t.name}': one lap at {t.speed_mps:g} m/s and {t.fps:g} fps gives "
                                 "fewer than 2 frames")
            if any(c < 0 for c in t.tint_rgb):
                raise ValueError(f"traversal '{t.name}': tint_rgb must be non-negative")
        if self.night.lighting != "night":
            raise ValueError("night.lighting must be 'night' (the night walk `vidvpr demo make --night` adds)")
        if self.night.role != "query":
            raise ValueError("night.role must be 'query': the night walk is searched in the day database")
        formats = sorted({t.trajectory_format for t in self.traversals})
        if len(formats) != 1:
            raise ValueError(f"traversals mix trajectory formats ({', '.join(formats)}); one format keeps the "
                             "demo's recordings in one frame without declaring shared_local_frame")
        if {t.role for t in self.traversals} != set(ROLES):
            raise ValueError("traversals need at least one with role 'database' and one with role 'query'")
        for name, (width, height) in self.sizes.items():
            if not (re.fullmatch(NAME_REGEX, name) and width == 2 * height and height % 2 == 0 and height >= 16):
                raise ValueError(f"sizes.{name} = {width}x{height}: equirect frames are 2:1 with an even height >= 16")
        if self.heldout is not None:
            if self.heldout.seed == self.seed:
                raise ValueError(f"heldout.seed must differ from seed ({self.seed}): the held-out world is another world")
            try:
                self.heldout_definition()
            except ValueError as exc:
                raise ValueError(f"heldout: {exc}") from None
        return self

    def with_night(self) -> DemoDefinition:
        """This definition with the night walk among its traversals (unchanged if it has one already)."""
        if any(t.lighting == "night" for t in self.traversals):
            return self
        return self.model_copy(update={"traversals": (*self.traversals, self.night)})

    def heldout_definition(self) -> DemoDefinition:
        """The held-out world: this definition's walks (and its night walk) and everything else, in a
        world of the held-out seed, route and places. ValueError when that world cannot be walked."""
        if self.heldout is None:
            raise ValueError("a held-out world has no held-out world of its own")
        data = self.with_night().model_dump()
        data.update(name=f"{self.name}-heldout", seed=self.heldout.seed, route=self.heldout.route.model_dump(),
                    places=self.heldout.places.model_dump(), heldout=None)
        try:
            return DemoDefinition.model_validate(data, strict=False)
        except ValidationError as exc:
            raise ValueError(validation_problem(exc).removeprefix("top level: ")) from None


def load_definition(path: Path | None = None) -> DemoDefinition:
    """The demo definition in a TOML file (keys left out take the built-in values); None: built-in."""
    if path is None:
        return DemoDefinition()
    path = Path(path)
    table = read_toml_file(path, "definition file")
    return definition_from_data(table, str(path))


def definition_from_data(table: Any, source: str) -> DemoDefinition:
    """Validate a parsed definition; BadInput naming `source` and the key."""
    return validate_data(DemoDefinition, table, source)


def definition_dict(definition: DemoDefinition) -> dict[str, Any]:
    """The definition as plain JSON data (tuples as lists), comparable with what demo.json holds."""
    return definition.model_dump(mode="json")
