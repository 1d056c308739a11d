"""Batch manifests: rows, per-row validation (a bad row is a row with an error), folders, shards."""

from __future__ import annotations

import json

import pytest
from batch_fixtures import BAD_ROWS, GOOD_IDS, GOOD_ROWS, make_job, write_images, write_manifest

from zero123.batch import BatchRow, RowDefaults, load_rows, read_manifest, rows_from_folder, select_shard


def test_good_and_bad_rows(tmp_path):
    rows = read_manifest(make_job(tmp_path))
    good = rows[: len(GOOD_ROWS)]
    assert [r.id for r in good] == GOOD_IDS
    assert all(r.error is None for r in good)
    assert [r.index for r in rows] == list(range(len(rows)))
    # cameras get their defaults written out, paths resolve against the manifest's folder
    assert good[0].cameras[1] == {"azimuth": 180.0, "elevation": 0.0, "radius": 1.0}
    assert good[1].cameras[0]["radius"] == 1.2
    assert good[0].image == "img/a.png" and good[0].image_path == str(tmp_path / "img" / "a.png")
    assert good[2].meta == {"source": "test"} and good[2].seed == 7
    bad = rows[len(GOOD_ROWS):]
    for row, (_, needle) in zip(bad, BAD_ROWS):
        if needle in ("no such file", "not an image"):  # found when the image is read (the CPU stage)
            assert row.error is None
        else:
            assert row.error is not None and needle in row.error, row.error
    # the duplicate keeps a unique id of its own, the non-JSON line too
    assert bad[len(BAD_ROWS) - 1].id == f"#row{len(rows) - 2}"
    assert rows[-1].id == f"#row{len(rows) - 1}" and "not valid JSON" in rows[-1].error
    assert len({r.id for r in rows}) == len(rows)


@pytest.mark.parametrize("row,needle", [
    ({"id": "../x", "image": "a.png", "cameras": [{"azimuth": 1}]}, "'id' must be"),
    ({"id": "results.jsonl", "image": "a.png", "cameras": [{"azimuth": 1}]}, "'id' must be"),
    ({"id": "x", "image": 3, "cameras": [{"azimuth": 1}]}, "'image' must be"),
    ({"id": "x", "image": "a.png", "cameras": {"azimuth": 1}}, "non-empty list"),
    ({"id": "x", "image": "a.png", "cameras": []}, "non-empty list"),
    ({"id": "x", "image": "a.png", "cameras": [{"azimuth": 1, "radius": 1.0, "delta_radius": 0.1}]}, "not both"),
    ({"id": "x", "image": "a.png", "cameras": [{"azimuth": 1}], "seed": -1}, "'seed' must be"),
    ({"id": "x", "image": "a.png", "cameras": [{"azimuth": 1}], "seed": 1.5}, "'seed' must be"),
    ({"id": "x", "image": "a.png", "cameras": [{"azimuth": 1}], "colour": "red"}, "unknown field"),
    ({"id": "x", "image": "a.png"}, "no cameras"),
    ({"id": "x", "image": "a.png", "cameras": [{"azimuth": 1}], "cond_elevation": "up"}, "cond_elevation"),
])
def test_bad_row_messages(tmp_path, row, needle):
    rows = read_manifest(write_manifest(tmp_path / "m.jsonl", [row, {"id": "ok", "image": "a.png", "cameras": [{"azimuth": 1}]}]))
    assert rows[0].error is not None and needle in rows[0].error, rows[0].error
    assert "line 1" in rows[0].error
    assert rows[1].error is None  # the next row is unaffected


def test_delta_radius_is_kept_as_given(tmp_path):
    rows = read_manifest(write_manifest(tmp_path / "m.jsonl", [{"id": "x", "image": "a.png", "cameras": [{"azimuth": 5, "delta_radius": 0.2}]}]))
    assert rows[0].cameras == ({"azimuth": 5.0, "elevation": 0.0, "delta_radius": 0.2},)


def test_defaults_fill_rows_without_cameras_or_seed(tmp_path):
    path = write_manifest(tmp_path / "m.jsonl", [{"image": "my photo.png"}, {"image": "b.png", "seed": 3}])
    rows = read_manifest(path, RowDefaults(cameras=({"azimuth": 90},), seed=42))
    assert rows[0].id == "my_photo"  # default id: the file stem, made a valid folder name
    assert rows[0].cameras == ({"azimuth": 90.0, "elevation": 0.0, "radius": 1.0},) and rows[0].seed == 42
    assert rows[1].seed == 3


def test_manifest_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_manifest(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(ValueError, match="no rows"):
        read_manifest(tmp_path / "empty.jsonl")
    (tmp_path / "bin.jsonl").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ValueError, match="UTF-8"):
        read_manifest(tmp_path / "bin.jsonl")


def test_folder_of_images(tmp_path):
    write_images(tmp_path)
    (tmp_path / "a.jpg").write_bytes((tmp_path / "a.png").read_bytes())  # same stem as a.png
    with pytest.raises(ValueError, match="--azimuth"):
        rows_from_folder(tmp_path, RowDefaults())
    rows = load_rows(tmp_path, RowDefaults(cameras=({"azimuth": 0}, {"azimuth": 90}), seed=9))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert [r.image for r in rows] == [str(tmp_path / n) for n in names]
    by_name = {r.image.rsplit("/", 1)[1]: r for r in rows}
    assert by_name["a.jpg"].error is None and by_name["a.jpg"].id == "a"
    assert "duplicate id 'a'" in by_name["a.png"].error
    assert all(len(r.cameras) == 2 and r.seed == 9 for r in rows if r.error is None)


def test_shards_partition_the_rows():
    rows = [BatchRow(str(i), i) for i in range(10)]
    shards = [select_shard(rows, k, 3) for k in range(3)]
    assert sorted(r.index for s in shards for r in s) == list(range(10))
    assert [r.index for r in shards[1]] == [1, 4, 7]
    with pytest.raises(ValueError, match="shard_index"):
        select_shard(rows, 3, 3)
    with pytest.raises(ValueError, match="num_shards"):
        select_shard(rows, 0, 0)


def test_row_json_round_trip():
    row = BatchRow("x", 2, "a.png", "/d/a.png", ({"azimuth": 1.0, "elevation": 0.0, "radius": 1.0},), 4, 10.0, {"k": 1})
    assert BatchRow.from_json(json.loads(json.dumps(row.to_json()))) == row
