"""The object-like procedural kind (issue 13, item 1): upright vases, bottles, cups, bowls, lamps,
mugs, books, crates, cabinets, tables and chairs; selected with ``--kind objects``, recorded in the
manifest, the old ``primitives`` kind unchanged."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from zero123.cli.__main__ import app
from zero123.data.objects import (
    OBJECT_CATEGORIES,
    ProceduralConfig,
    object_category,
    object_like,
    procedural_object,
)
from zero123.data.writer import RenderSettings, procedural_jobs, render_dataset
from zero123.render.gl_backend import gl_available

BACKEND = "gl" if gl_available() else "torch"
OBJECTS = ProceduralConfig(kind="objects")


def _seed_of(category: str) -> int:
    return next(s for s in range(500) if object_category(s, OBJECTS) == category)


def test_every_category_is_drawn_and_builds_normalised_and_deterministic():
    seen = {object_category(s, OBJECTS) for s in range(120)}
    assert seen == set(OBJECT_CATEGORIES)
    for cat in OBJECT_CATEGORIES:
        seed = _seed_of(cat)
        m = object_like(seed, OBJECTS)
        ext = np.ptp(m.vertices, axis=0)
        assert ext.max() == pytest.approx(1.0, abs=1e-5), cat  # docs/conventions.md, Cameras: largest side 1
        assert np.allclose((m.vertices.max(0) + m.vertices.min(0)) / 2, 0.0, atol=1e-5), cat  # centred
        again = object_like(seed, OBJECTS)
        np.testing.assert_array_equal(m.vertices, again.vertices)
        np.testing.assert_array_equal(m.colors, again.colors)
    assert not np.array_equal(object_like(0, OBJECTS).vertices, object_like(1, OBJECTS).vertices)
    # procedural_object dispatches on the kind; the default kind is the old one, unchanged
    np.testing.assert_array_equal(procedural_object(4, OBJECTS).vertices, object_like(4, OBJECTS).vertices)
    np.testing.assert_array_equal(procedural_object(4).vertices, procedural_object(4, ProceduralConfig(kind="primitives")).vertices)


@pytest.mark.parametrize("category", ["vase", "bottle", "cup", "bowl"])
def test_surfaces_of_revolution_are_upright(category):
    """Only a yaw is applied: a lathed shape keeps its axis on world +Z, so every horizontal slice
    is centred on the z axis and made of at most two circles about it (outer and inner wall)."""
    m = object_like(_seed_of(category), ProceduralConfig(kind="objects", texture_probability=0.0))
    v = np.unique(np.round(m.vertices.astype(np.float64), 5), axis=0)  # the UV seam's copies once
    axis = v[:, :2].mean(0)  # regular polygons: the mean of each ring is on the axis
    z = v[:, 2]
    for level in np.unique(z)[:: max(len(np.unique(z)) // 6, 1)]:
        ring = v[z == level, :2]
        assert np.abs(ring.mean(0) - axis).max() < 1e-3, (category, level)
        rs = np.sort(np.hypot(*(ring - axis).T))
        assert (np.diff(rs) > 0.005).sum() <= 1, (category, level)


def test_open_vessels_show_an_inside_and_mug_has_a_handle():
    cup = object_like(_seed_of("cup"), OBJECTS).vertices
    top = cup[:, 2].max()
    rim = cup[np.abs(cup[:, 2] - top) < 1e-5]
    assert np.hypot(rim[:, 0], rim[:, 1]).min() > 0.1  # no cap: the rim is a ring
    assert (cup[:, 2] < top - 0.2).any() and (np.hypot(cup[:, 0], cup[:, 1]) < 0.05).sum() > 0  # an inner floor
    mug = object_like(_seed_of("mug"), OBJECTS).vertices
    r = np.hypot(mug[:, 0], mug[:, 1])
    # the handle sticks out on one side: the radius about the body's axis is not the same all round
    assert r.max() > 1.2 * np.percentile(r, 50)


def test_materials_follow_texture_probability():
    plain = [object_like(s, ProceduralConfig(kind="objects", texture_probability=0.0)) for s in range(12)]
    assert all((m.texture_index == -1).all() or (m.textures == 255).all() for m in plain)
    patterned = [object_like(s, ProceduralConfig(kind="objects", texture_probability=1.0)) for s in range(12)]
    assert all((m.textures != 255).any() for m in patterned)
    # colours stay away from white so that the silhouette reads on a white background
    for m in plain:
        assert ((1.0 - m.colors).max(axis=1) >= 0.15).all()


def test_rendered_silhouette_matches_the_eval_foreground_rule():
    """A render composited on white: the eval's near-white foreground rule (mask IoU) recovers the
    alpha mask, so mask IoU measures the object, not its colour."""
    from zero123.eval.metrics import foreground_mask

    settings = RenderSettings(num_views=3, image_size=48, backend=BACKEND, kind="objects")
    from zero123.data.writer import _renderer
    from zero123.data.cameras import sample_world_to_cams
    from zero123.render import Light

    rng = np.random.default_rng(0)
    for seed in (0, 1, 2, 3):
        rgba = _renderer(settings).render(object_like(seed, OBJECTS), sample_world_to_cams(rng, 3), Light.random(rng))
        for im in rgba:
            a = im[..., 3:].astype(np.float64) / 255
            rgb = im[..., :3] / 255 * a + (1 - a)
            fg, opaque, covered = foreground_mask(rgb), a[..., 0] > 0.5, a[..., 0] > 0
            assert opaque.sum() > 20
            assert not (opaque & ~fg).any()  # no part of the object reads as background (no near-white colours)
            assert not (fg & ~covered).any()  # and nothing outside it reads as foreground


def test_render_dataset_kind_and_elevation_band_reach_the_manifest(tmp_path):
    out = tmp_path / "d"
    res = CliRunner().invoke(app, ["render-dataset", "--procedural", "3", "--out", str(out), "--views", "4", "--size", "24",
                                   "--backend", BACKEND, "--no-progress", "--kind", "objects",
                                   "--elevation-min", "-10", "--elevation-max", "40"])
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "manifest.json").read_text())
    s = manifest["settings"]
    assert (s["kind"], s["elevation_min"], s["elevation_max"]) == ("objects", -10.0, 40.0)
    for v in range(4):
        m = np.load(out / "proc_000001" / f"{v:03d}.npy")
        centre = -m[:, :3].T @ m[:, 3]
        el = math.degrees(math.asin(centre[2] / np.linalg.norm(centre)))
        assert -10.0 - 1e-6 <= el <= 40.0 + 1e-6
    assert np.asarray(Image.open(out / "proc_000000" / "000.png"))[..., 3].max() == 255
    # the object is the objects kind's object for that job's seed
    job = procedural_jobs(3, seed=0)[0]
    assert object_category(int(job.source), OBJECTS) in OBJECT_CATEGORIES
    # resuming with the other kind is refused; bad kinds and bands are clear errors
    with pytest.raises(ValueError, match="kind"):
        render_dataset(out, procedural_jobs(3, seed=0), RenderSettings(num_views=4, image_size=24, backend=BACKEND,
                                                                        elevation_min=-10, elevation_max=40), progress=False)
    for args, msg in ((["--kind", "furniture"], "kind must be one of"), (["--elevation-min", "50", "--elevation-max", "40"], "elevation_min")):
        res = CliRunner().invoke(app, ["render-dataset", "--procedural", "1", "--out", str(tmp_path / "bad"), "--no-progress", *args])
        assert res.exit_code == 2 and msg in res.output, res.output
        assert not (tmp_path / "bad" / "proc_000000").exists()


def test_render_testset_kind_objects(tmp_path):
    out = tmp_path / "ts"
    res = CliRunner().invoke(app, ["eval", "render-testset", "-o", str(out), "--count", "1", "--size", "24",
                                   "--kind", "objects", "--backend", BACKEND, "--no-progress"])
    assert res.exit_code == 0, res.output
    assert json.loads((out / "testset.json").read_text())["kind"] == "objects"
    prim = tmp_path / "prim"
    assert CliRunner().invoke(app, ["eval", "render-testset", "-o", str(prim), "--count", "1", "--size", "24",
                                    "--backend", BACKEND, "--no-progress"]).exit_code == 0
    assert json.loads((prim / "testset.json").read_text())["kind"] == "primitives"
    a, b = (np.asarray(Image.open(d / "heldout_000000" / "001.png")) for d in (out, prim))
    assert not np.array_equal(a, b)
