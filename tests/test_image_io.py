"""Image loading: bad inputs give clear errors, every pixel format becomes 8-bit RGB/RGBA, huge
images are downscaled without being decoded at full size (issue 2, item 7; docs/conventions.md, Images)."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import textwrap
import warnings
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from zero123.image_io import MIN_IMAGE_SIZE, LargeImageWarning, _decode_png_reduced, _to_rgb_or_rgba, load_image


# ---------------------------------------------------------------------- helpers
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def encode_png(rows: np.ndarray, color_type: int, bit_depth: int = 8, extra: bytes = b"") -> bytes:
    """A PNG written by hand, cycling through all five filter types row by row (PNG spec 9.2), so
    the band decoder is tested on every filter, not just the ones PIL's encoder picks."""
    h, w = rows.shape[:2]
    raw = (rows.astype(">u2").view(np.uint8) if bit_depth == 16 else rows).reshape(h, -1).astype(np.int64)
    bpp = raw.shape[1] // w
    out, prev = bytearray(), np.zeros(raw.shape[1], np.int64)
    for y in range(h):
        x = raw[y]
        left = np.concatenate([np.zeros(bpp, np.int64), x[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int64), prev[:-bpp]])
        kind = y % 5
        pred = [0 * x, left, prev, (left + prev) // 2, _paeth(left, prev, upleft)][kind]
        out += bytes([kind]) + ((x - pred) % 256).astype(np.uint8).tobytes()
        prev = x
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + extra + _chunk(b"IDAT", zlib.compress(bytes(out))) + _chunk(b"IEND", b"")


def save(image: Image.Image, path, **kw):
    image.save(path, **kw)
    return path


# ---------------------------------------------------------------------- bad files
def test_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is a text file, not a PNG\n")
    with pytest.raises(ValueError, match="not an image"):
        load_image(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ValueError, match="folder"):
        load_image(tmp_path)


def test_truncated_png(tmp_path):
    data = save(Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)), io.BytesIO(), format="PNG").getvalue()
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_image(path)


@pytest.mark.parametrize("size", [(0, 0), (1, 1), (7, 100), (100, 3)])
def test_too_small(tmp_path, size):
    with pytest.raises(ValueError, match=f"{size[0]}x{size[1]} pixels; images must be at least {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE}"):
        load_image(Image.new("RGB", size))
    if 0 not in size:
        path = save(Image.new("RGB", size), tmp_path / "small.png")
        with pytest.raises(ValueError, match="at least 8x8"):
            load_image(path)


def test_zero_size_png_file(tmp_path):
    """A PNG whose header says 0x0 (PIL cannot write one): rejected with a ValueError."""
    path = tmp_path / "zero.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 0, 8, 2, 0, 0, 0)) + _chunk(b"IEND", b""))
    with pytest.raises(ValueError):
        load_image(path)


def test_wrong_source_type():
    with pytest.raises(TypeError, match="image must be a file path"):
        load_image(123)


# ---------------------------------------------------------------------- pixel formats
def test_grayscale(tmp_path):
    path = save(Image.fromarray(np.full((16, 24), 77, np.uint8), mode="L"), tmp_path / "g.png")
    im = load_image(path)
    assert im.mode == "RGB" and im.size == (24, 16) and im.getpixel((3, 3)) == (77, 77, 77)


def test_16_bit_png(tmp_path):
    arr = np.zeros((16, 16), np.uint16)
    arr[:, 8:] = 65535
    arr[:8, :8] = 257 * 100
    path = tmp_path / "deep.png"
    path.write_bytes(encode_png(arr, color_type=0, bit_depth=16))
    im = load_image(path)
    assert im.mode == "RGB"
    assert im.getpixel((12, 0)) == (255, 255, 255) and im.getpixel((0, 0)) == (100, 100, 100) and im.getpixel((0, 12)) == (0, 0, 0)


def test_palette_with_transparency(tmp_path):
    pal = Image.new("P", (16, 16), 1)
    pal.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    pal.paste(0, (0, 0, 8, 16))
    path = save(pal, tmp_path / "p.png", transparency=0)
    im = load_image(path)
    assert im.mode == "RGBA"
    assert im.getpixel((2, 2))[3] == 0 and im.getpixel((12, 2)) == (0, 255, 0, 255)
    opaque = save(pal, tmp_path / "p2.png")
    assert load_image(opaque).mode == "RGB"


def test_cmyk_jpeg(tmp_path):
    path = save(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), tmp_path / "c.jpg", quality=100)
    im = load_image(path)
    assert im.mode == "RGB"
    r, g, b = im.getpixel((8, 8))
    assert r > 200 and g < 60 and b < 60  # cyan 0, magenta+yellow full = red


def test_exif_rotated_jpeg(tmp_path):
    """Orientation 6 = 'rotate 90 clockwise to display': a 40x20 image whose LEFT half is red
    must come back 20x40 with red on TOP."""
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = save(Image.fromarray(arr), tmp_path / "phone.jpg", exif=exif, quality=95)
    im = load_image(path)
    assert im.size == (20, 40)
    assert im.getpixel((10, 5))[0] > 200 and im.getpixel((10, 35))[0] < 50
    # the same through an already-opened PIL image
    assert load_image(Image.open(path)).size == (20, 40)


def test_rgba_la_kept(tmp_path):
    im = load_image(save(Image.new("LA", (16, 16), (10, 128)), tmp_path / "la.png"))
    assert im.mode == "RGBA" and im.getpixel((0, 0)) == (10, 10, 10, 128)
    im = load_image(Image.new("RGBA", (16, 16), (1, 2, 3, 4)))
    assert im.getpixel((0, 0)) == (1, 2, 3, 4)


def test_bytes_and_file_object(tmp_path):
    data = save(Image.new("RGB", (16, 16), (9, 8, 7)), io.BytesIO(), format="PNG").getvalue()
    assert load_image(data).getpixel((0, 0)) == (9, 8, 7)
    assert load_image(io.BytesIO(data)).getpixel((0, 0)) == (9, 8, 7)


def test_arrays_and_tensors():
    assert load_image(np.full((8, 8, 3), 0.5, np.float32)).getpixel((0, 0)) == (128, 128, 128)
    assert load_image(np.full((8, 8, 4), 1000, np.uint16)).mode == "RGBA"
    t = torch.zeros(3, 10, 12)
    t[0] = 1.0
    assert load_image(t).size == (12, 10) and load_image(t).getpixel((0, 0)) == (255, 0, 0)
    assert load_image(t[None]).size == (12, 10)
    with pytest.raises(ValueError, match="NaN"):
        load_image(np.full((8, 8, 3), np.nan, np.float32))
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        load_image(np.full((8, 8, 3), -0.5, np.float32))
    with pytest.raises(ValueError, match="shape"):
        load_image(np.zeros((8, 8, 5), np.uint8))
    with pytest.raises(ValueError, match="dtype"):
        load_image(np.zeros((8, 8), np.int64))
    with pytest.raises(ValueError, match="batch"):
        load_image(torch.zeros(2, 3, 8, 8))


# ---------------------------------------------------------------------- large images
@pytest.mark.parametrize(
    "color_type,shape,bit_depth",
    [(2, (37, 29, 3), 8), (6, (37, 29, 4), 8), (0, (37, 29), 8), (4, (37, 29, 2), 8), (0, (37, 29), 16), (3, (37, 29), 8)],
)
def test_band_decoder_matches_full_decode(color_type, shape, bit_depth):
    """Decoding in bands of 6 rows, then box-reducing by 3, equals the full decode reduced by 3,
    for every colour type and all five PNG filters."""
    rng = np.random.default_rng(color_type)
    if color_type == 3:
        arr = rng.integers(0, 4, shape).astype(np.uint8)
        extra = _chunk(b"PLTE", bytes(rng.integers(0, 256, 12, dtype=np.uint8))) + _chunk(b"tRNS", bytes([0, 255, 128]))
    else:
        arr = rng.integers(0, 256 if bit_depth == 8 else 65536, shape).astype(np.uint8 if bit_depth == 8 else np.uint16)
        extra = b""
    png = encode_png(arr, color_type, bit_depth, extra)
    full = Image.open(io.BytesIO(png))
    full.load()
    if color_type != 3:
        np.testing.assert_array_equal(np.asarray(full), arr)  # our encoder is a valid PNG writer
    expected = _to_rgb_or_rgba(full).reduce(3)
    got = _decode_png_reduced(io.BytesIO(png), 3, band_rows=6)
    assert got.mode == expected.mode and got.size == expected.size
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))


def test_large_jpeg_uses_draft(tmp_path):
    path = save(Image.new("RGB", (4000, 3000), (0, 0, 255)), tmp_path / "big.jpg")
    with pytest.warns(LargeImageWarning, match="4000x3000"):
        im = load_image(path, max_pixels=500_000)
    assert im.width * im.height <= 500_000 and im.width / im.height == pytest.approx(4 / 3, rel=0.01)
    assert im.getpixel((10, 10))[2] > 200


def test_large_in_memory_image_downscaled():
    with pytest.warns(LargeImageWarning, match="downscaled to"):
        im = load_image(Image.new("RGB", (3000, 1000)), max_pixels=300_000)
    assert im.width * im.height <= 300_000 and im.width == 3 * im.height


HUGE_SCRIPT = textwrap.dedent(
    """
    import struct, sys, warnings, zlib
    import numpy as np
    from PIL import Image
    path, size = sys.argv[1], 20000
    # write a 20000x20000 grayscale PNG without ever holding it: white, a black square in the middle,
    # rows after the first stored with the 'Up' filter (all zeros where a row repeats)
    chunk = lambda k, d: struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d))
    white = np.full(size, 255, np.uint8); square = white.copy(); square[8000:12000] = 0
    comp, prev = zlib.compressobj(1), None
    with open(path, "wb") as f:
        f.write(b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)))
        zero = bytes(size)
        for y in range(size):
            row = square if 8000 <= y < 12000 else white
            data = b"\\x02" + zero if row is prev else b"\\x00" + row.tobytes()
            prev = row
            out = comp.compress(data)
            if out:
                f.write(chunk(b"IDAT", out))
        f.write(chunk(b"IDAT", comp.flush()) + chunk(b"IEND", b""))
    from zero123.image_io import LargeImageWarning, load_image
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        im = load_image(path, max_pixels=1024 * 1024)
    kinds = sorted({type(w.message).__name__ for w in caught})
    # VmHWM: this process's own peak RSS (ru_maxrss would include the parent's RSS at fork)
    peak = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])
    print(im.size[0], im.size[1], im.mode, im.getpixel((im.width // 2, im.height // 2))[0],
          im.getpixel((5, 5))[0], peak // 1024, ",".join(kinds))
    """
)


@pytest.mark.slow
def test_huge_png_downscaled_with_bounded_memory(tmp_path):
    """20000x20000 (400 MP, 400 MB decoded as L, 1.2 GB as RGB): downscaled with our own
    LargeImageWarning (not PIL's DecompressionBomb warning/error), peak RSS well under one full
    decode. Run in a fresh process so its peak RSS is its own."""
    out = subprocess.run(
        [sys.executable, "-c", HUGE_SCRIPT, str(tmp_path / "huge.png")], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    w, h, mode, centre, corner, peak_mb, kinds = out.stdout.split()
    assert (int(w), int(h), mode) == (1000, 1000, "RGB")
    assert int(centre) < 10 and int(corner) == 255
    assert kinds == "LargeImageWarning"
    assert int(peak_mb) < 200, f"peak RSS {peak_mb} MB: the image was decoded at full size"


# ---------------------------------------------------------------------- one ingestion path (issue 10 item 3)
def test_one_rule_for_16_bit_pngs_everywhere(tmp_path, tiny_pipeline):
    """A 16-bit PNG means the same 8-bit values in the pipeline, preprocessing's compositing, the
    training reader and the evaluation reader. Before, compositing scaled by 65535 and truncated
    (25700 -> 99) while the loader rounded v / 257 (-> 100)."""
    from zero123.camera import world_to_cam_from_spherical
    from zero123.data.views_release import ViewsReleaseDataset
    from zero123.eval.views import ViewsFolder
    from zero123.image_io import composite_on_white

    arr = np.full((64, 64), 257 * 100, np.uint16)
    arr[:, 32:] = 65535
    obj = tmp_path / "data" / "obj"
    obj.mkdir(parents=True)
    for v in range(2):
        (obj / f"{v:03d}.png").write_bytes(encode_png(arr, color_type=0, bit_depth=16))
        np.save(obj / f"{v:03d}.npy", world_to_cam_from_spherical(1.0, v * 0.5, 2.0))
    path = obj / "000.png"
    expected = np.where(np.arange(64) < 32, 100, 255)[None, :].repeat(64, 0)
    assert (np.asarray(load_image(path))[..., 0] == expected).all()
    with Image.open(path) as raw:  # what a caller handing us a PIL 16-bit image gets
        assert raw.mode.startswith("I") and (np.asarray(composite_on_white(raw))[..., 0] == expected).all()
    t = tiny_pipeline.image_to_tensor(path)[0, 0].numpy()
    np.testing.assert_allclose((t + 1) * 127.5, expected, atol=1e-4)
    d = ViewsReleaseDataset(tmp_path / "data", split="all", image_size=64).load_image("obj", 0)[0].numpy()
    np.testing.assert_allclose((d + 1) * 127.5, expected, atol=1e-4)
    e = np.asarray(ViewsFolder(tmp_path / "data", split="all").load_rgb("obj", 0))[..., 0]
    assert (e == expected).all()


def test_out_of_range_floats_are_an_error_everywhere(tiny_pipeline):
    """Before: the pipeline clipped floats outside [0, 1] silently while load_image refused them."""
    bad = np.full((16, 16, 3), 1.5, np.float32)
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        load_image(bad)
    with pytest.raises(ValueError, match=r"input_image: float images must have values in \[0, 1\]"):
        tiny_pipeline.image_to_tensor(bad)
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        _to_rgb_or_rgba(Image.fromarray(np.full((8, 8), 3.0, np.float32), mode="F"))


def test_partial_alpha_blend_or_the_training_loaders_rule():
    from zero123.image_io import composite_on_white

    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :4, 3] = 128  # half transparent
    rgba[:, 4:, 3] = 0  # fully transparent
    im = Image.fromarray(rgba, "RGBA")
    blended, hard = np.asarray(composite_on_white(im)), np.asarray(composite_on_white(im, blend=False))
    assert tuple(blended[0, 0]) == (227, 127, 127) and tuple(blended[0, 7]) == (255, 255, 255)
    assert tuple(hard[0, 0]) == (200, 0, 0) and tuple(hard[0, 7]) == (255, 255, 255)
