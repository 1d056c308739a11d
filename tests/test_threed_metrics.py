"""3D metrics on cases checkable by hand: a cube against itself, a shifted cube, a sphere, broken meshes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import trimesh
from typer.testing import CliRunner

from zero123.cli.__main__ import app
from zero123.threed.metrics import (MetricProtocol, evaluate_folders, evaluate_mesh, get_metric_protocol, surface_points,
                                    voxelize)

CUBE = trimesh.creation.box((1.0, 1.0, 1.0))
SPHERE = trimesh.creation.icosphere(subdivisions=5, radius=0.5)
#: A point's distance to the nearest SAMPLE of a surface is at least its distance to the surface,
#: and exceeds it by at most the sampling floor (a surface against itself scores about 0.005).
SAMPLING_FLOOR = 0.01


def box_distance(p: np.ndarray, half: float = 0.5, center=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Unsigned distance of points to the surface of an axis-aligned cube (exact)."""
    q = np.abs(p - np.asarray(center)) - half
    outside = np.linalg.norm(np.maximum(q, 0), axis=1)
    inside = np.minimum(q.max(1), 0)
    return np.abs(outside + inside)


def test_cube_against_itself():
    m = evaluate_mesh(CUBE, CUBE)
    assert m.volume_iou == 1.0 and m.fscore == 1.0
    assert m.chamfer < SAMPLING_FLOOR  # two independent samplings of the same surface


def test_shifted_cube_by_a_quarter():
    """Shift 0.25 along x (ground-truth normalisation for both): overlap 0.75, union 1.25 -> IoU 0.6."""
    shifted = CUBE.copy().apply_translation((0.25, 0.0, 0.0))
    m = evaluate_mesh(shifted, CUBE)
    assert m.volume_iou == pytest.approx(0.6, abs=1e-9)
    p, g = surface_points(shifted.vertices, shifted.faces, 100_000, 5), surface_points(CUBE.vertices, CUBE.faces, 100_000, 6)
    d_p, d_g = box_distance(p), box_distance(g, center=(0.25, 0, 0))  # analytic nearest-surface distances
    exact = 0.5 * (d_p.mean() + d_g.mean())
    assert exact - 1e-3 <= m.chamfer <= exact + SAMPLING_FLOOR
    assert m.precision == pytest.approx((d_p < 0.05).mean(), abs=0.02)
    assert m.recall == pytest.approx((d_g < 0.05).mean(), abs=0.02)
    # each mesh normalised by its own box: the shift is gone
    assert evaluate_mesh(shifted, CUBE, MetricProtocol(normalize="each")).volume_iou == 1.0


def test_sphere_inside_the_cube():
    """The inscribed ball fills pi / 6 of the cube; distances are known in closed form."""
    m = evaluate_mesh(SPHERE, CUBE)
    assert m.volume_iou == pytest.approx(math.pi / 6, abs=0.01)
    s, c = surface_points(SPHERE.vertices, SPHERE.faces, 100_000, 1), surface_points(CUBE.vertices, CUBE.faces, 100_000, 2)
    d_s = box_distance(s)  # ball point -> cube surface
    d_c = np.abs(np.linalg.norm(c, axis=1) - 0.5)  # cube point -> sphere
    exact = 0.5 * (d_s.mean() + d_c.mean())
    assert exact - 1e-3 <= m.chamfer <= exact + SAMPLING_FLOOR
    f_expected = 2 * (d_s < 0.05).mean() * (d_c < 0.05).mean() / ((d_s < 0.05).mean() + (d_c < 0.05).mean())
    assert m.fscore == pytest.approx(f_expected, abs=0.02)


def test_volume_iou_of_meshes_that_are_not_watertight():
    """A sphere with a hole, turned inside out, or two boxes overlapping (inner faces) has the solid's volume."""
    holed = trimesh.Trimesh(SPHERE.vertices, np.delete(SPHERE.faces, np.arange(0, 40), axis=0), process=False)
    assert not holed.is_watertight
    assert evaluate_mesh(holed, SPHERE).volume_iou > 0.97
    inverted = trimesh.Trimesh(SPHERE.vertices, SPHERE.faces[:, ::-1], process=False)
    assert evaluate_mesh(inverted, SPHERE).volume_iou > 0.99
    a = trimesh.creation.box((1.0, 0.4, 0.4))
    b = trimesh.creation.box((0.4, 1.0, 0.4))  # a plus sign: overlapping parts, inner faces inside each other
    plus = trimesh.util.concatenate([a, b])
    solid = voxelize(np.asarray(plus.vertices), np.asarray(plus.faces), 64)
    c = (np.arange(64) + 0.5) / 64 - 0.5  # voxel centres, index order [x, y, z]
    x, y, z = np.meshgrid(c, c, c, indexing="ij")
    inside = (np.abs(z) < 0.2) & (((np.abs(x) < 0.5) & (np.abs(y) < 0.2)) | ((np.abs(x) < 0.2) & (np.abs(y) < 0.5)))
    assert (solid == inside).mean() > 0.995


def test_turning_an_asymmetric_object_lowers_every_score():
    ell = trimesh.util.concatenate([trimesh.creation.box((1.0, 0.3, 0.3)),
                                    trimesh.creation.box((0.3, 0.6, 0.3)).apply_translation((0.35, 0.3, 0.0))])
    turned = ell.copy().apply_transform(trimesh.transformations.rotation_matrix(math.pi, (0, 0, 1)))
    same, rot = evaluate_mesh(ell, ell), evaluate_mesh(turned, ell)
    assert rot.volume_iou < 0.6 and rot.chamfer > 5 * same.chamfer and rot.fscore < 0.8
    # ICP can undo a small rigid offset, not needed for frames that agree
    nudged = ell.copy().apply_transform(trimesh.transformations.rotation_matrix(0.08, (0, 0, 1))).apply_translation((0.02, 0, 0))
    plain, aligned = evaluate_mesh(nudged, ell), evaluate_mesh(nudged, ell, MetricProtocol(alignment="icp"))
    assert aligned.volume_iou > plain.volume_iou and aligned.volume_iou > 0.95


def test_syncdreamer_protocol_points_from_depth_renders():
    proto = get_metric_protocol("syncdreamer-gso30")
    assert (proto.points, proto.render_views, proto.render_elevation, proto.render_distance, proto.voxel_downsample,
            proto.iou_resolution) == ("renders", 16, 30.0, 1.5, 0.01, 64)
    small = proto.replace(render_size=48, render_views=8)  # the same computation, cheaper
    same, other = evaluate_mesh(CUBE, CUBE, small), evaluate_mesh(SPHERE, CUBE, small)
    assert same.chamfer < 0.01 and same.volume_iou == 1.0
    assert other.chamfer > 0.05 and other.volume_iou == pytest.approx(math.pi / 6, abs=0.01)


def test_folders_of_objects(tmp_path):
    for name, pred in (("cube", CUBE), ("ball", SPHERE)):
        (tmp_path / "gt" / name / "meshes").mkdir(parents=True)
        CUBE.export(tmp_path / "gt" / name / "meshes" / "model.obj")
        (tmp_path / "pred" / name).mkdir(parents=True)
        pred.export(tmp_path / "pred" / name / "mesh.ply")
    per_object, means = evaluate_folders(tmp_path / "pred", tmp_path / "gt", "default")
    assert sorted(per_object) == ["ball", "cube"]
    assert per_object["cube"].volume_iou == 1.0
    assert means["volume_iou"] == pytest.approx((1.0 + per_object["ball"].volume_iou) / 2)


def test_eval_3d_command(tmp_path):
    CUBE.export(tmp_path / "cube.obj")
    SPHERE.export(tmp_path / "ball.glb")
    runner = CliRunner()
    res = runner.invoke(app, ["eval", "3d", "--pred", str(tmp_path / "ball.glb"), "--gt", str(tmp_path / "cube.obj"), "--json",
                              "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    result = json.loads(res.output)
    assert result["volume_iou"] == pytest.approx(math.pi / 6, abs=0.01) and result["fscore_threshold"] == 0.05
    assert json.loads((tmp_path / "out" / "results.json").read_text()) == result
    res = runner.invoke(app, ["eval", "3d", "--pred", str(tmp_path / "nope.glb"), "--gt", str(tmp_path / "cube.obj")])
    assert res.exit_code == 2 and res.output.strip().startswith("error:") and len(res.output.strip().splitlines()) == 1
    res = runner.invoke(app, ["eval", "3d", "--pred", str(tmp_path / "ball.glb"), "--gt", str(tmp_path / "cube.obj"), "--align", "best"])
    assert res.exit_code == 2 and "--alignment must be one of" in res.output


def test_bad_protocols():
    with pytest.raises(ValueError, match="unknown 3D protocol"):
        get_metric_protocol("gso")
    with pytest.raises(ValueError, match="fscore_threshold"):
        MetricProtocol(fscore_threshold=0)
    with pytest.raises(ValueError, match="faces"):
        evaluate_mesh((np.zeros((3, 3)), np.zeros((0, 3), int)), CUBE)
