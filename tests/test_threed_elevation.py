"""The input-elevation estimator: its consistency score finds the true elevation from exact views,
and with views that carry no signal it falls back to the default and says so."""

from __future__ import annotations

import numpy as np
import pytest

from zero123.data.objects import procedural_object
from zero123.render import create_renderer
from zero123.threed.elevation import ElevationSettings, best_elevation, candidate_score, estimate_elevation
from zero123.threed.reconstruct import input_camera, ring_world_to_cams


def on_white(rgba: np.ndarray) -> np.ndarray:
    x = rgba.astype(np.float32) / 255
    return x[..., :3] * x[..., 3:] + 1 - x[..., 3:]


@pytest.mark.parametrize("truth", [0.0, 30.0])
def test_consistency_score_peaks_at_the_true_elevation_with_exact_views(truth):
    settings = ElevationSettings(candidates=(-10.0, 0.0, 10.0, 20.0, 30.0, 40.0), hull_resolution=48)
    renderer = create_renderer("auto", image_size=64)
    mesh = procedural_object(777)
    rgba = renderer.render(mesh, input_camera(truth)[None])[0]
    views = on_white(renderer.render(mesh, ring_world_to_cams(settings.cameras(), truth, settings.distance)))
    renderer.close()
    scores = [candidate_score(on_white(rgba), rgba[..., 3] > 127, views, e, settings) for e in settings.candidates]
    estimate = best_elevation(list(settings.candidates), scores)
    print(f"true {truth}: scores {np.round(scores, 3).tolist()} -> {estimate:.1f}")
    assert abs(estimate - truth) <= 6.0
    assert max(scores) - min(scores) >= settings.min_spread


def test_estimate_with_a_random_model_falls_back(tiny_pipeline, tiny_image):
    from zero123.nvs import SamplingSettings

    settings = ElevationSettings(sampling=SamplingSettings(steps=2), azimuths=(0.0, 180.0), elevations=(0.0, 30.0),
                                 hull_resolution=24, min_spread=0.5)
    est = estimate_elevation(tiny_pipeline, tiny_image, settings)
    assert est.method == "fallback" and est.elevation_deg == settings.fallback and len(est.scores) == len(settings.candidates)
    assert est.report()["method"] == "fallback" and "best_candidate" in est.report() and est.report()["reason"]


def test_bad_elevation_settings():
    with pytest.raises(ValueError, match="candidates"):
        ElevationSettings(candidates=(10.0,))
    with pytest.raises(ValueError, match="inside"):
        ElevationSettings(candidates=(0.0, 70.0))  # 70 + the 30-degree views leave the sphere


def test_a_best_score_at_the_end_of_the_range_is_no_peak(monkeypatch, tiny_pipeline, tiny_image):
    """Scores rising towards the last candidate are a trend, not a peak: the fallback, with the reason."""
    import zero123.threed.elevation as E
    from zero123.nvs import SamplingSettings

    settings = ElevationSettings(sampling=SamplingSettings(steps=2), azimuths=(180.0,), elevations=(0.0,), min_spread=0.01)
    monkeypatch.setattr(E, "candidate_score", lambda rgb, mask, images, e, s: 0.5 + e / 100)
    est = E.estimate_elevation(tiny_pipeline, tiny_image, settings)
    assert est.method == "fallback" and est.extra["reason"].startswith("best at an end") and est.extra["best_candidate"] == 50.0
    monkeypatch.setattr(E, "candidate_score", lambda rgb, mask, images, e, s: 1.0 - abs(e - 22.0) / 100)
    est = E.estimate_elevation(tiny_pipeline, tiny_image, settings)
    assert est.method == "hull-consistency" and 20.0 <= est.elevation_deg <= 25.0
