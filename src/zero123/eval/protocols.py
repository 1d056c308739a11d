"""Evaluation protocols: which view is the input, which views are scored, at what resolution.

A protocol is data (:class:`EvalProtocol`); presets are ready instances in :data:`PROTOCOLS`.
All of them read the user's LOCAL data in the ``views_release`` layout
(:mod:`zero123.eval.views`); nothing is downloaded.

Presets (docs/conventions.md, Evaluation protocols):

``views-release`` (default)
    Any ``views_release`` folder: split ``val``, input view 0, every other view scored, 256 px,
    white background, LPIPS vgg.

``syncdreamer-gso30``
    SyncDreamer's protocol: 30 Google Scanned Objects, 16 views per object on a 30 deg elevation
    ring (azimuth 0, 22.5, ..., 337.5 deg, same distance), input = view 0 (azimuth 0), all 16 ring
    views scored (view 0 coincides with the input pose, as in SyncDreamer), 256 px, white, LPIPS
    vgg. Provide: one folder per object with ``000.png .. 015.png`` (RGBA renders, transparent
    background) and ``000.npy .. 015.npy`` (3x4 world-to-camera, Blender axes, z-up world).
    Objects are the first 30 sub-folders in name order (or ``valid_paths.json`` order).

``zero123-rtmv``
    Zero-1-to-3's RTMV protocol: the first 20 scenes of RTMV's ``google_scanned`` split, frame 0 as
    input, frames 1..16 scored, 256 px, white. Convert each scene to one folder holding frames
    ``000.png .. 016.png`` (RGBA; RTMV's EXR/PNG frames composited with their alpha) and
    ``000.npy .. 016.npy`` (each frame's camera as a 3x4 world-to-camera matrix in Blender camera
    axes, z-up world: RTMV's json gives camera-to-world in OpenCV/Blender conventions depending on
    the exporter; invert and convert, see :func:`zero123.camera.blender_to_opencv_world_to_cam`
    for the axis flip). Scene folders in name order; the first 20 are used. The paper does not say
    which LPIPS backbone it used; we report vgg and say so.

Targets are one of:

* ``"others"``: every view but the input;
* a tuple of view indices;
* a tuple of :class:`TargetChange` (relative camera changes from the input view, e.g. azimuth 90).
  Ground truth must have been rendered at those poses: for each object the view whose relative
  pose to the input matches within ``match_tolerance_deg`` (azimuth and elevation, radius ignored)
  is scored; a change with no matching view is reported as missing for that object (and the
  object is skipped if none match). Write such a set with ``az:90,az:180,az:270,el:30,el:-30`` in
  mind: input view 0 plus one view per change.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Literal, Union

from ..camera import RelativeCamera
from .metrics import LPIPS_BACKBONES, LpipsBackbone
from .views import SPLITS, Split


@dataclass(frozen=True)
class TargetChange:
    """A target camera relative to the input view, in degrees: +azimuth counter-clockwise seen from
    above, +elevation moves the camera UP (elevation change = -d_polar, docs/conventions.md, Cameras)."""

    azimuth: float = 0.0
    elevation: float = 0.0

    @property
    def label(self) -> str:
        parts = []
        if self.azimuth or not self.elevation:
            parts.append(f"az:{self.azimuth:g}")
        if self.elevation:
            parts.append(f"el:{self.elevation:g}")
        return "+".join(parts)

    def distance_deg(self, cam: RelativeCamera) -> float:
        """Largest of the azimuth and elevation mismatches (degrees, azimuth wrapped)."""
        daz = (cam.azimuth - self.azimuth + 180.0) % 360.0 - 180.0
        # At the poles azimuth is meaningless: compare elevation only there.
        if abs(abs(self.elevation) - 90.0) < 1e-6:
            daz = 0.0
        return max(abs(daz), abs(cam.elevation - self.elevation))


Targets = Union[Literal["others"], tuple[int, ...], tuple[TargetChange, ...]]


@dataclass(frozen=True)
class EvalProtocol:
    """What is scored and how (docs/conventions.md, Evaluation protocols).

    Attributes:
        name: preset name (``"<preset> (modified)"`` after :meth:`replace`).
        input_view: index of the conditioning view in every object folder.
        targets: ``"others"``, view indices, or relative camera changes (see module docstring).
        resolution: side in pixels at which metrics are computed (ground truth is downsampled to it,
            predictions are resized to it when the model's resolution differs).
        background: always ``"white"`` (alpha blended over white).
        split: which objects of the folder: ``"val"``, ``"train"`` or ``"all"``.
        num_objects: use only the first N objects of the split (``None``: all).
        lpips_backbone: ``"vgg"``, ``"alex"`` or ``"squeeze"``.
        match_tolerance_deg: for camera-change targets, the largest angle mismatch accepted.
        description: one line for reports.
    """

    name: str = "views-release"
    input_view: int = 0
    targets: Targets = "others"
    resolution: int = 256
    background: Literal["white"] = "white"
    split: Split = "val"
    num_objects: int | None = None
    lpips_backbone: LpipsBackbone = "vgg"
    match_tolerance_deg: float = 2.0
    description: str = field(default="", compare=False)

    def __post_init__(self):
        if isinstance(self.input_view, bool) or not isinstance(self.input_view, int) or self.input_view < 0:
            raise ValueError(f"protocol input_view must be an integer >= 0, got {self.input_view!r}")
        if isinstance(self.resolution, bool) or not isinstance(self.resolution, int) or not 8 <= self.resolution <= 4096:
            raise ValueError(f"protocol resolution must be an integer in [8, 4096], got {self.resolution!r}")
        if self.background != "white":
            raise ValueError(f"protocol background must be 'white', got {self.background!r}")
        if self.split not in SPLITS:
            raise ValueError(f"protocol split must be one of {SPLITS}, got {self.split!r}")
        if self.num_objects is not None and (not isinstance(self.num_objects, int) or self.num_objects < 1):
            raise ValueError(f"protocol num_objects must be a positive integer or None, got {self.num_objects!r}")
        if self.lpips_backbone not in LPIPS_BACKBONES:
            raise ValueError(f"protocol lpips_backbone must be one of {LPIPS_BACKBONES}, got {self.lpips_backbone!r}")
        if not self.match_tolerance_deg > 0:
            raise ValueError(f"protocol match_tolerance_deg must be > 0, got {self.match_tolerance_deg!r}")
        t = self.targets
        if isinstance(t, str):
            if t != "others":
                raise ValueError(f"protocol targets must be 'others', view indices or camera changes, got {t!r}")
        elif isinstance(t, tuple) and t:
            if all(isinstance(x, int) and not isinstance(x, bool) for x in t):
                if min(t) < 0:
                    raise ValueError(f"protocol target view indices must be >= 0, got {t}")
            elif not all(isinstance(x, TargetChange) for x in t):
                raise ValueError(f"protocol targets must be all view indices or all TargetChange, got {t!r}")
        else:
            raise ValueError(f"protocol targets must be 'others' or a non-empty tuple, got {t!r}")

    @property
    def uses_camera_changes(self) -> bool:
        return isinstance(self.targets, tuple) and isinstance(self.targets[0], TargetChange)

    def replace(self, **changes) -> "EvalProtocol":
        """A copy with ``changes``; the name gains `` (modified)`` if any value differs."""
        new = dataclasses.replace(self, **changes)
        if new != self and not self.name.endswith("(modified)"):
            new = dataclasses.replace(new, name=f"{self.name} (modified)")
        return new

    def describe(self) -> dict:
        """JSON-ready description, as written into reports."""
        if isinstance(self.targets, str):
            targets = self.targets
        elif self.uses_camera_changes:
            targets = [t.label for t in self.targets]
        else:
            targets = list(self.targets)
        return {
            "name": self.name,
            "description": self.description,
            "input_view": self.input_view,
            "targets": targets,
            "resolution": self.resolution,
            "background": self.background,
            "split": self.split,
            "num_objects": self.num_objects,
            "lpips_backbone": self.lpips_backbone,
            "match_tolerance_deg": self.match_tolerance_deg,
            "ground_truth_resize": "alpha blended on white, PIL antialiased bicubic to resolution",
            "prediction_resize": "PIL bicubic to resolution only when the model's resolution differs",
        }


PROTOCOLS: dict[str, EvalProtocol] = {
    "views-release": EvalProtocol(
        name="views-release",
        description="views_release folder: input view 0, all other views scored, 256 px, white",
    ),
    "syncdreamer-gso30": EvalProtocol(
        name="syncdreamer-gso30",
        input_view=0,
        targets=tuple(range(16)),
        resolution=256,
        split="all",
        num_objects=30,
        lpips_backbone="vgg",
        description="SyncDreamer GSO-30: 30 objects, input view 0, 16 views on a 30 deg elevation ring, 256 px, white, LPIPS vgg",
    ),
    "zero123-rtmv": EvalProtocol(
        name="zero123-rtmv",
        input_view=0,
        targets=tuple(range(1, 17)),
        resolution=256,
        split="all",
        num_objects=20,
        lpips_backbone="vgg",
        description="Zero-1-to-3 RTMV: first 20 google_scanned scenes, frame 0 input, frames 1-16 scored, 256 px, white",
    ),
}

#: How many objects each preset expects; fewer is allowed but noted in the report.
EXPECTED_OBJECTS: dict[str, int] = {"syncdreamer-gso30": 30, "zero123-rtmv": 20}


def get_protocol(name: str) -> EvalProtocol:
    """The preset called ``name``; ValueError listing the choices otherwise."""
    if name not in PROTOCOLS:
        raise ValueError(f"protocol: unknown protocol {name!r}; choose one of {sorted(PROTOCOLS)}")
    return PROTOCOLS[name]


_CHANGE_RE = re.compile(r"^(az|el)\s*:\s*([-+]?\d+(?:\.\d+)?)$")
_RANGE_RE = re.compile(r"^(\d+)\s*-\s*(\d+)$")


def parse_targets(spec: str) -> Targets:
    """Parse a ``--targets`` string.

    * ``"others"``: every view but the input;
    * ``"1,2,5"`` or ``"1-16"``: view indices (ranges inclusive);
    * ``"az:90,az:180,el:30,el:-30"``: camera changes in degrees; ``"az:90+el:30"`` combines both.

    >>> parse_targets("1-3,7")
    (1, 2, 3, 7)
    >>> [t.label for t in parse_targets("az:90,el:-30,az:45+el:30")]
    ['az:90', 'el:-30', 'az:45+el:30']
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"--targets must be 'others', view indices like '1-16' or changes like 'az:90,el:30', got {spec!r}")
    spec = spec.strip()
    if spec == "others":
        return "others"
    items = [s.strip() for s in spec.split(",") if s.strip()]
    if all(re.fullmatch(r"\d+|\d+\s*-\s*\d+", s) for s in items):
        out: list[int] = []
        for s in items:
            m = _RANGE_RE.match(s)
            if m:
                a, b = int(m.group(1)), int(m.group(2))
                if b < a:
                    raise ValueError(f"--targets: range {s!r} is empty (end before start)")
                out.extend(range(a, b + 1))
            else:
                out.append(int(s))
        return tuple(dict.fromkeys(out))
    changes: list[TargetChange] = []
    for s in items:
        az = el = 0.0
        seen: set[str] = set()
        for part in s.split("+"):
            m = _CHANGE_RE.match(part.strip())
            if not m or m.group(1) in seen:
                raise ValueError(
                    f"--targets: cannot parse {s!r}; use 'others', view indices ('1,2' or '1-16') or camera "
                    "changes in degrees ('az:90', 'el:-30', 'az:90+el:30'), not a mix"
                )
            seen.add(m.group(1))
            value = float(m.group(2))
            if m.group(1) == "az":
                az = value
            else:
                el = value
        if not -90.0 <= el <= 90.0:
            raise ValueError(f"--targets: elevation change {el:g} is outside [-90, 90] degrees")
        changes.append(TargetChange(azimuth=az, elevation=el))
    return tuple(changes)


def angle_label(cam: RelativeCamera) -> str:
    """Short label of a relative camera for tables and contact sheets."""
    az = (cam.azimuth + 180.0) % 360.0 - 180.0
    return f"az{az:+.0f} el{cam.elevation:+.0f}" if not math.isclose(cam.elevation, 0.0, abs_tol=0.5) else f"az{az:+.0f}"
