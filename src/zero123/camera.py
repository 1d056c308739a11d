"""Cameras: the relative camera Zero-1-to-3 is conditioned on, and converters between conventions.

The convention in full, with the conventions of other codebases: ``docs/conventions.md``, "Cameras".
This module is the camera core: the one place T (:func:`pose_vector`) and the pinhole focal length
(:func:`focal_length_px`) are written; the pipeline, the trainer, the dataset reader, evaluation,
the test sets and both renderers go through the functions below, and so must every new caller.

In short: z-up world, objects at the origin; a stored pose is a 3x4 **world-to-camera** ``[R | t]``
in Blender camera axes (looks along its -Z, +Y up, +X right), centre ``C = -R^T t``; polar
``atan2(sqrt(x^2 + y^2), z)``, azimuth ``atan2(y, x)``, radius ``|C|``. The model sees
``T = [d_polar, sin(d_azimuth), cos(d_azimuth), d_radius]`` (target minus condition); **+d_polar moves
the camera down**, so the user-facing elevation change is ``-d_polar``; Stable Zero123 puts the input
view's absolute polar angle in the last slot (``camera_embedding="cond_polar"``). User-facing
``camera_params`` are ``{"azimuth": deg, "elevation": deg, "radius": ratio}`` (``"delta_radius"``:
zero123's raw value), the ratio read with :data:`DEFAULT_INPUT_DISTANCE`.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

CameraEmbedding = Literal["relative_radius", "cond_polar"]
CAMERA_EMBEDDINGS: tuple[str, ...] = ("relative_radius", "cond_polar")

#: Nominal distance of the input camera from the object, used to turn a radius *ratio* into
#: zero123's ``d_radius``. The middle of the training range [1.5, 2.2] (docs/conventions.md, Dataset layout).
DEFAULT_INPUT_DISTANCE = 1.85
#: Training distribution limits (docs/conventions.md, Cameras).
TRAIN_D_RADIUS_RANGE = (-0.7, 0.7)
TRAIN_DISTANCE_RANGE = (1.5, 2.2)

#: ``(4, 4)`` rotation from glTF's frame (+Y up, +Z forward: the glTF 2.0 specification) to the
#: z-up world: ``(x, y, z) -> (x, -z, y)``, what Blender does on glTF import. Mesh import applies it
#: to ``.glb``/``.gltf`` files and GLB export its inverse (docs/conventions.md, "Cameras").
WORLD_FROM_GLTF = np.array([[1.0, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0], [0, 0, 0, 1]])
#: Suffixes of the formats whose files are +Y up by specification.
GLTF_SUFFIXES: tuple[str, ...] = (".glb", ".gltf")

#: Largest user-facing camera changes in degrees: an azimuth change beyond one turn is a typo, an
#: elevation change beyond 180 leaves the training range of d_polar (-180, 180).
MAX_AZIMUTH_CHANGE = 360.0
MAX_ELEVATION_CHANGE = 180.0

_PARAM_KEYS = {"azimuth", "elevation", "radius", "delta_radius"}


def _finite(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        if isinstance(value, (torch.Tensor, np.ndarray)) and np.ndim(value) == 0:
            value = float(value)
        else:
            raise TypeError(f"camera parameter {name!r} must be a real number, got {type(value).__name__}: {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"camera parameter {name!r} must be finite, got {value}")
    return value


@dataclass(frozen=True)
class RelativeCamera:
    """A camera change from the input (condition) view to a target view, in zero123's terms.

    Attributes:
        d_polar: change of polar angle in radians; positive moves the camera DOWN.
        d_azimuth: change of azimuth in radians; positive is counter-clockwise seen from +Z.
        d_radius: change of camera distance (target - input) in world units; positive is away.
    """

    d_polar: float
    d_azimuth: float
    d_radius: float = 0.0

    def __post_init__(self):
        for name in ("d_polar", "d_azimuth", "d_radius"):
            object.__setattr__(self, name, _finite(name, getattr(self, name)))
        if not -math.pi < self.d_polar < math.pi:
            warnings.warn(
                f"d_polar={math.degrees(self.d_polar):.1f} deg is outside the training range (-180, 180) deg; "
                "results are out of distribution",
                stacklevel=3,
            )
        lo, hi = TRAIN_D_RADIUS_RANGE
        if not lo <= self.d_radius <= hi:
            warnings.warn(
                f"d_radius={self.d_radius:.3f} is outside the training range [{lo}, {hi}]; "
                "results are out of distribution",
                stacklevel=3,
            )

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_degrees(
        cls,
        azimuth: float = 0.0,
        elevation: float = 0.0,
        radius: float = 1.0,
        *,
        delta_radius: float | None = None,
        input_distance: float = DEFAULT_INPUT_DISTANCE,
    ) -> "RelativeCamera":
        """User-facing camera change: +azimuth turns counter-clockwise seen from above, +elevation
        moves the camera UP, ``radius`` is the ratio of target to input distance (1.0 = same).

        ``delta_radius`` (zero123's raw ``d_radius``) overrides ``radius`` when given.

        >>> cam = RelativeCamera.from_degrees(azimuth=90, elevation=30)
        >>> round(math.degrees(cam.d_polar), 6), round(math.degrees(cam.d_azimuth), 6), cam.d_radius
        (-30.0, 90.0, 0.0)
        """
        azimuth = _finite("azimuth", azimuth)
        elevation = _finite("elevation", elevation)
        if not -MAX_AZIMUTH_CHANGE <= azimuth <= MAX_AZIMUTH_CHANGE:
            raise ValueError(f"azimuth is a change in degrees and must be in [-{MAX_AZIMUTH_CHANGE:g}, {MAX_AZIMUTH_CHANGE:g}], got {azimuth:g}")
        if not -MAX_ELEVATION_CHANGE <= elevation <= MAX_ELEVATION_CHANGE:
            raise ValueError(
                f"elevation is a change in degrees and must be in [-{MAX_ELEVATION_CHANGE:g}, {MAX_ELEVATION_CHANGE:g}] "
                f"(the polar range zero123 was trained on), got {elevation:g}"
            )
        if abs(elevation) > 90.0:
            warnings.warn(
                f"elevation change {elevation:g} deg is beyond +-90: the camera passes over the pole "
                "(the original demo allowed -90 to 90)",
                stacklevel=2,
            )
        input_distance = _finite("input_distance", input_distance)
        if input_distance <= 0:
            raise ValueError(f"input_distance must be > 0, got {input_distance}")
        if delta_radius is not None:
            d_radius = _finite("delta_radius", delta_radius)
        else:
            radius = _finite("radius", radius)
            if radius <= 0:
                raise ValueError(f"camera parameter 'radius' is a distance ratio and must be > 0, got {radius}")
            d_radius = input_distance * (radius - 1.0)
        return cls(d_polar=math.radians(-elevation), d_azimuth=math.radians(azimuth), d_radius=d_radius)

    @classmethod
    def from_params(
        cls,
        params: "Mapping[str, float] | RelativeCamera",
        *,
        input_distance: float = DEFAULT_INPUT_DISTANCE,
        name: str = "camera_params",
    ) -> "RelativeCamera":
        """Parse one ``camera_params`` dict (``azimuth``, ``elevation``, ``radius`` or ``delta_radius``).

        ``name`` is the argument name used in error messages (e.g. ``"camera_params[2]"``).

        >>> RelativeCamera.from_params({"azimuth": 30.0, "delta_radius": 0.2}).d_radius
        0.2
        """
        if isinstance(params, RelativeCamera):
            return params
        if not isinstance(params, Mapping):
            raise TypeError(
                f"{name} must be a dict like {{'azimuth': 45.0, 'elevation': 0.0, 'radius': 1.0}} "
                f"(or a list of them), got {type(params).__name__}: {params!r}"
            )
        bad_keys = [k for k in params if not isinstance(k, str)]
        if bad_keys:
            raise TypeError(f"{name} keys must be strings among {sorted(_PARAM_KEYS)}, got {bad_keys!r}")
        unknown = set(params) - _PARAM_KEYS
        if unknown:
            raise ValueError(
                f"{name} has unknown key(s) {sorted(unknown)}; allowed keys are {sorted(_PARAM_KEYS)}"
            )
        if "radius" in params and "delta_radius" in params:
            raise ValueError(
                f"{name}: give either 'radius' (a ratio) or 'delta_radius' (zero123's d_radius), not both"
            )
        return cls.from_degrees(
            azimuth=params.get("azimuth", 0.0),
            elevation=params.get("elevation", 0.0),
            radius=params.get("radius", 1.0),
            delta_radius=params.get("delta_radius"),
            input_distance=input_distance,
        )

    @classmethod
    def from_world_to_cam(cls, cond_world_to_cam: np.ndarray, target_world_to_cam: np.ndarray) -> "RelativeCamera":
        """Relative camera between two stored 3x4 (or 4x4) world-to-camera matrices
        (``docs/conventions.md``, "Cameras"); the spherical angles come from
        :func:`spherical_from_world_to_cams`, as in :func:`relative_pose_embedding`."""
        pc, ac, rc = (float(x) for x in spherical_from_world_to_cams(_as_world_to_cams("cond_world_to_cam", cond_world_to_cam)))
        pt, at, rt = (float(x) for x in spherical_from_world_to_cams(_as_world_to_cams("target_world_to_cam", target_world_to_cam)))
        return cls(d_polar=pt - pc, d_azimuth=_wrap_angle(at - ac), d_radius=rt - rc)

    @classmethod
    def from_absolute(
        cls,
        cond_elevation: float,
        cond_azimuth: float,
        cond_distance: float,
        target_elevation: float,
        target_azimuth: float,
        target_distance: float,
    ) -> "RelativeCamera":
        """From absolute cameras in degrees, elevation measured UP from the equator (+ = above).

        This is threestudio's convention: d_polar = cond_elev - elev, d_az = az - cond_az,
        d_r = dist - cond_dist.

        >>> cam = RelativeCamera.from_absolute(30, 0, 2.0, 0, 90, 1.5)  # input 30 deg up, target on the equator
        >>> round(math.degrees(cam.d_polar), 6), round(math.degrees(cam.d_azimuth), 6), cam.d_radius
        (30.0, 90.0, -0.5)
        """
        ce, ca, cd = (_finite(n, v) for n, v in (("cond_elevation", cond_elevation), ("cond_azimuth", cond_azimuth), ("cond_distance", cond_distance)))
        te, ta, td = (_finite(n, v) for n, v in (("target_elevation", target_elevation), ("target_azimuth", target_azimuth), ("target_distance", target_distance)))
        for n, v in (("cond_elevation", ce), ("target_elevation", te)):
            if not -90.0 <= v <= 90.0:
                raise ValueError(f"{n} is an absolute elevation in degrees and must be in [-90, 90], got {v}")
        for n, v in (("cond_distance", cd), ("target_distance", td)):
            if v <= 0:
                raise ValueError(f"{n} is a camera distance and must be > 0, got {v}")
        return cls(d_polar=math.radians(ce - te), d_azimuth=_wrap_angle(math.radians(ta - ca)), d_radius=td - cd)

    @classmethod
    def from_threestudio(
        cls, elevation: float, azimuth: float, camera_distance: float,
        cond_elevation: float, cond_azimuth: float, cond_camera_distance: float,
    ) -> "RelativeCamera":
        """threestudio's zero123 guidance inputs (degrees, absolute elevation + = up)."""
        return cls.from_absolute(cond_elevation, cond_azimuth, cond_camera_distance, elevation, azimuth, camera_distance)

    @classmethod
    def from_kiui(cls, d_elevation: float, d_azimuth: float, d_radius: float = 0.0) -> "RelativeCamera":
        """kiui / DreamGaussian / LGM deltas (degrees). There elevation is NEGATIVE above the
        equator, so their elevation change goes straight into the d_polar slot."""
        return cls(
            d_polar=math.radians(_finite("d_elevation", d_elevation)),
            d_azimuth=math.radians(_finite("d_azimuth", d_azimuth)),
            d_radius=_finite("d_radius", d_radius),
        )

    @classmethod
    def from_stable_dreamfusion(cls, d_polar: float, d_azimuth: float, d_radius: float = 0.0) -> "RelativeCamera":
        """stable-dreamfusion deltas (degrees; polar measured from its +Y up axis). It feeds
        ``sin(-d_azimuth)`` / ``cos(-d_azimuth)`` to the model because its look-at builds a
        mirrored camera frame; the returned camera is the one the model actually receives."""
        return cls(
            d_polar=math.radians(_finite("d_polar", d_polar)),
            d_azimuth=-math.radians(_finite("d_azimuth", d_azimuth)),
            d_radius=_finite("d_radius", d_radius),
        )

    # ------------------------------------------------------------------ views
    @property
    def elevation(self) -> float:
        """User-facing elevation change in degrees (+ = camera moves up)."""
        return -math.degrees(self.d_polar)

    @property
    def azimuth(self) -> float:
        """Azimuth change in degrees (+ = counter-clockwise seen from +Z)."""
        return math.degrees(self.d_azimuth)

    def embedding(self, kind: CameraEmbedding = "relative_radius", cond_elevation: float | None = None) -> torch.Tensor:
        """The 4-vector ``T`` fed to ``cc_projection`` (float32, shape ``(4,)``).

        Args:
            kind: ``"relative_radius"`` (Zero-1-to-3: last slot = d_radius) or ``"cond_polar"``
                (Stable Zero123: last slot = the input view's absolute polar angle in radians).
            cond_elevation: input view's elevation in degrees (+ = above), required for ``"cond_polar"``.

        >>> [round(v, 6) + 0.0 for v in RelativeCamera.from_degrees(azimuth=90, radius=1.2).embedding().tolist()]
        [0.0, 1.0, 0.0, 0.37]
        >>> round(RelativeCamera.from_degrees().embedding("cond_polar", cond_elevation=30)[3].item(), 6)  # deg2rad(60)
        1.047198
        """
        if kind == "relative_radius":
            last = self.d_radius
        elif kind == "cond_polar":
            if cond_elevation is None:
                raise ValueError(
                    "camera_embedding='cond_polar' (Stable Zero123) needs the input view's elevation: "
                    "pass cond_elevation=<degrees above the equator>"
                )
            last = math.radians(90.0 - check_cond_elevation(cond_elevation))
        else:
            raise ValueError(f"camera embedding kind must be one of {CAMERA_EMBEDDINGS}, got {kind!r}")
        return pose_vector(
            torch.tensor(self.d_polar, dtype=torch.float64),
            torch.tensor(self.d_azimuth, dtype=torch.float64),
            torch.tensor(last, dtype=torch.float64),
        )

    def apply_to_spherical(self, polar: float, azimuth: float, radius: float) -> tuple[float, float, float]:
        """Target (polar, azimuth, radius) in radians/world units for an input camera at the given ones."""
        return polar + self.d_polar, _wrap_angle(azimuth + self.d_azimuth), radius + self.d_radius


def check_cond_elevation(cond_elevation: float | None) -> float | None:
    """``None``, or the input view's absolute elevation in degrees (+ = above the equator) checked
    to be a finite number in [-90, 90]. Checked whenever it is given, whatever the model's embedding.

    >>> check_cond_elevation(30), check_cond_elevation(None)
    (30.0, None)
    """
    if cond_elevation is None:
        return None
    if isinstance(cond_elevation, bool) or not isinstance(cond_elevation, (numbers.Real, np.floating, np.integer)) \
            or not math.isfinite(float(cond_elevation)) or not -90.0 <= float(cond_elevation) <= 90.0:
        raise ValueError(
            f"cond_elevation is the input view's absolute elevation in degrees and must be a finite number in [-90, 90], "
            f"got {cond_elevation!r}"
        )
    return float(cond_elevation)


def parse_cameras(
    camera_params, *, input_distance: float = DEFAULT_INPUT_DISTANCE
) -> list[RelativeCamera]:
    """Normalise ``camera_params`` (one dict / :class:`RelativeCamera`, or a list of them) to a list."""
    if isinstance(camera_params, (Mapping, RelativeCamera)):
        return [RelativeCamera.from_params(camera_params, input_distance=input_distance)]
    if isinstance(camera_params, Sequence) and not isinstance(camera_params, (str, bytes)):
        if len(camera_params) == 0:
            raise ValueError("camera_params is an empty list; give at least one target camera")
        return [
            RelativeCamera.from_params(p, input_distance=input_distance, name=f"camera_params[{i}]")
            for i, p in enumerate(camera_params)
        ]
    raise TypeError(
        "camera_params must be a dict like {'azimuth': 45.0, 'elevation': 0.0, 'radius': 1.0}, "
        f"a RelativeCamera, or a list of them; got {type(camera_params).__name__}: {camera_params!r}"
    )


def embed_cameras(
    cameras: Sequence[RelativeCamera], kind: CameraEmbedding = "relative_radius", cond_elevation: float | None = None
) -> torch.Tensor:
    """Stack the ``T`` vectors of several cameras: shape ``(N, 4)``, float32."""
    return torch.stack([c.embedding(kind, cond_elevation) for c in cameras])


# ---------------------------------------------------------------------- pose matrices
def _wrap_angle(a: float) -> float:
    """Wrap to (-pi, pi]."""
    a = math.fmod(a + math.pi, 2 * math.pi)
    if a <= 0:
        a += 2 * math.pi
    return a - math.pi


def world_to_cam_from_spherical(polar: float, azimuth: float, radius: float) -> np.ndarray:
    """3x4 float64 world-to-camera matrix (Blender camera axes: looks along -Z, +Y up) of a camera at
    (polar, azimuth, radius) looking at the origin with world +Z as up.

    Angles in radians: ``polar`` from +Z (0 = straight above, pi/2 = equator), ``azimuth``
    counter-clockwise from +X seen from +Z. The image's +Y is the projection of world +Z, so a
    camera on the equator sees the object upright. At the poles (polar 0 or pi, where world +Z is
    the viewing axis) the limit of the nearby cameras at the same azimuth is used, so the frame is
    continuous in polar: from above, image up points away from the azimuth direction.

    >>> m = world_to_cam_from_spherical(math.pi / 2, 0.0, 2.0)  # on +X, looking along -X
    >>> (m.round(6) + 0.0).tolist()  # + 0.0 turns -0.0 into 0.0
    [[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, -2.0]]
    """
    polar, azimuth, radius = (_finite(n, v) for n, v in (("polar", polar), ("azimuth", azimuth), ("radius", radius)))
    if radius <= 0:
        raise ValueError(f"radius must be > 0, got {radius}")
    st, ct, sp, cp = math.sin(polar), math.cos(polar), math.sin(azimuth), math.cos(azimuth)
    center = radius * np.array([st * cp, st * sp, ct], dtype=np.float64)
    up = (0.0, 0.0, 1.0)
    if abs(st) < 1e-9:  # pole: the limit of image-up near the pole (see docstring)
        up = (-cp, -sp, 0.0) if ct > 0 else (cp, sp, 0.0)
    return world_to_cam_look_at(center, up=up)


def world_to_cam_look_at(center: np.ndarray, target=(0.0, 0.0, 0.0), up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """3x4 float64 world-to-camera matrix (Blender axes) of a camera at ``center`` looking at ``target``.

    Rows of ``R`` are the camera's +X (right), +Y (up) and +Z (backwards, away from ``target``) in
    world coordinates; ``t = -R @ center``. ``up`` is a hint projected onto the image plane; when it
    is parallel to the viewing axis world +Y is used instead.
    """
    center = np.asarray(center, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - center
    norm = np.linalg.norm(forward)
    if norm < 1e-12:
        raise ValueError("camera centre coincides with the look-at target")
    forward /= norm
    right = np.cross(forward, np.asarray(up, dtype=np.float64))
    if np.linalg.norm(right) < 1e-9:  # looking straight along the up axis
        right = np.cross(forward, np.array([0.0, 1.0, 0.0]))
    right /= np.linalg.norm(right)
    cam_up = np.cross(right, forward)
    # columns of cam-to-world rotation: +X right, +Y up, +Z backwards (camera looks along -Z)
    rot_cam_to_world = np.stack([right, cam_up, -forward], axis=1)
    rot = rot_cam_to_world.T
    return np.concatenate([rot, (-rot @ center)[:, None]], axis=1)


def blender_to_opencv_world_to_cam(world_to_cam: np.ndarray) -> np.ndarray:
    """Convert a world-to-camera matrix from Blender camera axes (+X right, +Y up, looks along -Z)
    to OpenCV camera axes (+X right, +Y down, looks along +Z)."""
    m = _as_world_to_cams("world_to_cam", world_to_cam).numpy().copy()
    m[..., 1:3, :] *= -1.0
    return m


# ---------------------------------------------------------------------- the pose vector T (one place)
def pose_vector(d_polar: torch.Tensor, d_azimuth: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """The 4-vector ``T = [d_polar, sin(d_azimuth), cos(d_azimuth), last]`` the model is conditioned on.

    This is the only place the formula is written; every caller (pipeline, trainer, dataset reader,
    evaluation, test sets, score distillation) reaches it through :meth:`RelativeCamera.embedding`
    or :func:`relative_pose_embedding`. See ``docs/conventions.md`` ("Cameras").

    Args:
        d_polar: ``(...)`` polar change in radians (+ = the camera moves DOWN).
        d_azimuth: ``(...)`` azimuth change in radians (+ = counter-clockwise seen from +Z).
        last: ``(...)`` ``d_radius`` (``"relative_radius"``) or the input view's absolute polar
            angle in radians (``"cond_polar"``, Stable Zero123).

    Returns:
        ``(..., 4)`` float32.

    >>> pose_vector(torch.tensor(0.5), torch.tensor(0.0), torch.tensor(0.1)).tolist()
    [0.5, 0.0, 1.0, 0.10000000149011612]
    """
    d_polar, d_azimuth, last = torch.broadcast_tensors(*(torch.as_tensor(x) for x in (d_polar, d_azimuth, last)))
    return torch.stack([d_polar, torch.sin(d_azimuth), torch.cos(d_azimuth), last], dim=-1).to(torch.float32)


def relative_pose_embedding(
    cond_world_to_cams: torch.Tensor | np.ndarray,
    target_world_to_cams: torch.Tensor | np.ndarray,
    kind: CameraEmbedding = "relative_radius",
) -> torch.Tensor:
    """T for batches of stored poses (condition view -> target view), in float64 then cast to float32.

    Args:
        cond_world_to_cams: ``(B, 3, 4)`` (or ``(3, 4)``) world-to-camera matrices of the condition views.
        target_world_to_cams: ``(B, 3, 4)`` (or ``(3, 4)``) world-to-camera matrices of the target views.
        kind: ``"relative_radius"`` (last slot ``r_t - r_c``) or ``"cond_polar"`` (last slot the
            condition view's absolute polar angle, radians).

    Returns:
        ``(B, 4)`` float32 (``(4,)`` for single matrices).

    >>> c = world_to_cam_from_spherical(math.pi / 2, 0.0, 2.0); t = world_to_cam_from_spherical(math.pi / 3, math.pi / 2, 1.5)
    >>> [round(v, 6) + 0.0 for v in relative_pose_embedding(c, t).tolist()]
    [-0.523599, 1.0, 0.0, -0.5]
    """
    if kind not in CAMERA_EMBEDDINGS:
        raise ValueError(f"camera embedding kind must be one of {CAMERA_EMBEDDINGS}, got {kind!r}")
    pc, ac, rc = spherical_from_world_to_cams(_as_world_to_cams("cond_world_to_cams", cond_world_to_cams))
    pt, at, rt = spherical_from_world_to_cams(_as_world_to_cams("target_world_to_cams", target_world_to_cams))
    last = rt - rc if kind == "relative_radius" else pc.expand_as(pt)
    return pose_vector(pt - pc, at - ac, last)


# ---------------------------------------------------------------------- batched poses (torch)
def _as_world_to_cams(name: str, world_to_cams) -> torch.Tensor:
    """``(..., 3, 4)`` float64 tensor of rigid world-to-camera matrices (``(..., 4, 4)`` accepted), or a
    ValueError naming ``name``: wrong shape, NaN/inf, or a rotation part that is not a rotation."""
    m = world_to_cams if isinstance(world_to_cams, torch.Tensor) else torch.as_tensor(np.asarray(world_to_cams, dtype=np.float64))
    if m.ndim < 2 or tuple(m.shape[-2:]) not in ((3, 4), (4, 4)):
        raise ValueError(f"{name} must be 3x4 (or 4x4) world-to-camera matrices, shape (3, 4) or (B, 3, 4); got shape {tuple(m.shape)}")
    m = m[..., :3, :].double()
    if not torch.isfinite(m).all():
        raise ValueError(f"{name} contains NaN or inf")
    rot = m[..., :3]
    err = float((rot @ rot.transpose(-1, -2) - torch.eye(3, dtype=rot.dtype)).abs().max()) if m.numel() else 0.0
    det = torch.linalg.det(rot) if m.numel() else torch.ones(1, dtype=rot.dtype)
    if err > 1e-3 or bool((det < 0).any()):
        raise ValueError(
            f"{name} must be rigid world-to-camera matrices [R | t] with R a rotation "
            f"(max |R R^T - I| = {err:.2e}, min det R = {float(det.min()):.3f}); "
            "a projection, scaled or mirrored matrix cannot be used"
        )
    return m


def camera_centers_from_world_to_cams(world_to_cams: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Camera centres ``C = -R^T t``: ``(B, 3, 4)`` world-to-camera -> ``(B, 3)`` (world frame, float64)."""
    m = _as_world_to_cams("world_to_cams", world_to_cams)
    return -(m[..., :3].transpose(-1, -2) @ m[..., 3:]).squeeze(-1)


def spherical_from_world_to_cams(world_to_cams: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(polar, azimuth, radius)`` of each camera centre (z-up world), float64 tensors of shape ``(B,)``.

    polar ``atan2(sqrt(x^2 + y^2), z)`` (0 = straight above), azimuth ``atan2(y, x)`` (counter-clockwise
    seen from +Z), radius ``|C|``.
    """
    c = camera_centers_from_world_to_cams(world_to_cams)
    x, y, z = c.unbind(-1)
    return torch.atan2(torch.hypot(x, y), z), torch.atan2(y, x), c.norm(dim=-1)


def elevation_deg_from_world_to_cam(world_to_cam: torch.Tensor | np.ndarray) -> float:
    """Absolute elevation in degrees (+ = above the equator, ``90 - polar``) of one 3x4 world-to-camera
    matrix: the input elevation Stable Zero123 and 3D reconstruction need.

    >>> round(elevation_deg_from_world_to_cam(world_to_cam_from_spherical(math.radians(60), 0.3, 2.0)), 6)
    30.0
    """
    polar, _, _ = spherical_from_world_to_cams(world_to_cam)
    return float(90.0 - torch.rad2deg(polar).reshape(-1)[0])


def world_to_cams_from_spherical(
    polar: torch.Tensor, azimuth: torch.Tensor, radius: torch.Tensor
) -> torch.Tensor:
    """Batched :func:`world_to_cam_from_spherical`: ``(B,)`` polar, azimuth (radians), radius ->
    ``(B, 3, 4)`` float64 world-to-camera matrices (Blender camera axes) looking at the origin, world +Z up.

    >>> m = world_to_cams_from_spherical(torch.tensor([math.pi / 2], dtype=torch.float64), torch.zeros(1), torch.full((1,), 2.0))
    >>> bool(torch.allclose(m[0], torch.from_numpy(world_to_cam_from_spherical(math.pi / 2, 0.0, 2.0))))
    True
    """
    polar, azimuth, radius = torch.broadcast_tensors(*(torch.as_tensor(x, dtype=torch.float64) for x in (polar, azimuth, radius)))
    if not (torch.isfinite(polar).all() and torch.isfinite(azimuth).all() and torch.isfinite(radius).all()):
        raise ValueError("polar, azimuth and radius must be finite")
    if (radius <= 0).any():
        raise ValueError(f"radius must be > 0, got min {float(radius.min())}")
    return torch.from_numpy(np.stack([
        world_to_cam_from_spherical(float(p), float(a), float(r))
        for p, a, r in zip(polar.reshape(-1), azimuth.reshape(-1), radius.reshape(-1))
    ])).reshape(*polar.shape, 3, 4)


# ---------------------------------------------------------------------- intrinsics and rays
def focal_length_px(fov_deg: float, size: int) -> float:
    """Pinhole focal length in pixels for a field of view ``fov_deg`` across ``size`` pixels:
    ``f = (size / 2) / tan(fov / 2)``. The training renders use a horizontal FOV of 49.13 deg
    (35 mm lens, 32 mm sensor; ``docs/conventions.md``). The only place this formula is written.

    >>> round(focal_length_px(90.0, 256), 9)
    128.0
    """
    fov_deg = _finite("fov_deg", fov_deg)
    if not 0.0 < fov_deg < 180.0:
        raise ValueError(f"fov_deg must be in (0, 180) degrees, got {fov_deg}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive integer number of pixels, got {size!r}")
    return (size / 2.0) / math.tan(math.radians(fov_deg) / 2.0)


def intrinsics_from_fov(fov_deg: float, width: int, height: int | None = None) -> np.ndarray:
    """``(3, 3)`` float64 pinhole matrix ``K`` (OpenCV pixel axes: x right, y DOWN, origin at the
    top-left corner of the image, pixel centres at ``i + 0.5``) with square pixels; ``fov_deg`` is
    the HORIZONTAL field of view across ``width``.

    >>> intrinsics_from_fov(90.0, 256).round(9).tolist()
    [[128.0, 0.0, 128.0], [0.0, 128.0, 128.0], [0.0, 0.0, 1.0]]
    """
    height = width if height is None else height
    f = focal_length_px(fov_deg, width)
    if isinstance(height, bool) or not isinstance(height, (int, np.integer)) or height < 1:
        raise ValueError(f"height must be a positive integer number of pixels, got {height!r}")
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


def camera_rays(
    world_to_cams: torch.Tensor | np.ndarray,
    fov_deg: float,
    height: int,
    width: int | None = None,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """World-frame rays through every pixel centre of a batch of pinhole cameras.

    Convention (the renderers' and the datasets'): world z-up; ``world_to_cams`` map world points to
    Blender camera axes (+X right, +Y up in the image, the camera looks along its -Z); pixel
    ``(row i, column j)`` has its centre at ``(j + 0.5, i + 0.5)``, row 0 at the TOP of the image;
    ``fov_deg`` is the horizontal field of view across ``width``. The camera-frame direction of a
    pixel is ``((j + 0.5 - W/2) / f, -(i + 0.5 - H/2) / f, -1)``, rotated to the world by ``R^T``
    and normalised, so a point rendered at pixel ``(i, j)`` lies on that pixel's ray.

    Args:
        world_to_cams: ``(B, 3, 4)`` world-to-camera matrices (``(3, 4)`` is treated as ``B = 1``).
        fov_deg: horizontal field of view in degrees.
        height: image height ``H`` in pixels.
        width: image width ``W`` (default ``H``).
        device, dtype: of the returned tensors.

    Returns:
        ``(origins, directions)``, each ``(B, H, W, 3)``: origins are the camera centres, directions
        unit vectors, both in world coordinates.

    >>> o, d = camera_rays(world_to_cam_from_spherical(math.pi / 2, 0.0, 2.0), 49.13, 4)
    >>> tuple(o.shape), [round(v, 4) + 0.0 for v in d[0, 2, 2].tolist()]  # right of and below the centre; the camera on +X looks along -X, image right = +Y
    ((1, 4, 4, 3), [-0.9872, 0.1128, -0.1128])
    """
    width = height if width is None else width
    m = _as_world_to_cams("world_to_cams", world_to_cams)
    if m.ndim == 2:
        m = m[None]
    f = focal_length_px(fov_deg, width)
    if isinstance(height, bool) or not isinstance(height, (int, np.integer)) or height < 1:
        raise ValueError(f"height must be a positive integer number of pixels, got {height!r}")
    rows = torch.arange(height, dtype=torch.float64) + 0.5
    cols = torch.arange(width, dtype=torch.float64) + 0.5
    ii, jj = torch.meshgrid(rows, cols, indexing="ij")
    dirs_cam = torch.stack([(jj - width / 2.0) / f, -(ii - height / 2.0) / f, -torch.ones_like(ii)], dim=-1)  # (H, W, 3)
    rot = m[:, :, :3]  # (B, 3, 3) world -> camera
    dirs = torch.einsum("bkc,hwk->bhwc", rot, dirs_cam)  # R^T d
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    centers = camera_centers_from_world_to_cams(m)[:, None, None, :].expand_as(dirs)
    return centers.to(device=device, dtype=dtype), dirs.to(device=device, dtype=dtype)


def project_points(
    points: torch.Tensor | np.ndarray,
    world_to_cam: torch.Tensor | np.ndarray,
    fov_deg: float,
    height: int,
    width: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel positions of world points in one pinhole camera: the inverse of :func:`camera_rays`.

    Same convention: ``world_to_cam`` maps world points to Blender camera axes (+X right, +Y up, the
    camera looks along -Z); ``fov_deg`` is the horizontal field of view across ``width``; pixel
    ``(row i, column j)`` covers ``[j, j + 1) x [i, i + 1)`` with row 0 at the TOP, so a point on the
    ray of pixel ``(i, j)``'s centre projects to ``(x, y) = (j + 0.5, i + 0.5)``.

    Args:
        points: ``(N, 3)`` world points.
        world_to_cam: ``(3, 4)`` world-to-camera matrix.
        fov_deg, height, width: the camera (``width`` defaults to ``height``).

    Returns:
        ``(pixels (N, 2) as (x, y) float64, depth (N,) float64)``; depth is the distance along the
        viewing axis (``-z`` in camera axes), <= 0 for points behind the camera.

    >>> m = world_to_cam_from_spherical(math.pi / 2, 0.0, 2.0)
    >>> px, d = project_points(np.array([[0.0, 0.0, 0.0]]), m, 49.13, 64)
    >>> px.tolist(), d.tolist()  # the origin projects to the image centre, 2 units away
    ([[32.0, 32.0]], [2.0])
    """
    width = height if width is None else width
    m = _as_world_to_cams("world_to_cam", world_to_cam).double().reshape(3, 4)
    p = torch.as_tensor(np.asarray(points) if not isinstance(points, torch.Tensor) else points).double().reshape(-1, 3)
    f = focal_length_px(fov_deg, width)
    cam = p @ m[:, :3].T + m[:, 3]
    depth = -cam[:, 2]
    safe = torch.where(depth.abs() < 1e-12, torch.full_like(depth, 1e-12), depth)
    x = width / 2.0 + f * cam[:, 0] / safe
    y = height / 2.0 - f * cam[:, 1] / safe
    return torch.stack([x, y], -1), depth
