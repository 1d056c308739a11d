"""How every image enters the library: :func:`load_image` turns whatever it is handed (a path,
bytes, a PIL image, a numpy array or a torch tensor) into an RGB or RGBA PIL image, and
:func:`composite_on_white` is the one place transparency meets the white background. The pipeline
(``Zero123Pipeline.image_to_tensor``), preprocessing, the dataset reader and evaluation all go
through these two, so a 16-bit PNG or a float array means the same thing everywhere
(``docs/conventions.md``, "Images").

What :func:`load_image` guarantees:

* Every failure is a ``ValueError`` / ``TypeError`` / ``FileNotFoundError`` that names the
  argument, the rule and the value: not an image, truncated or corrupt file, an image smaller than
  :data:`MIN_IMAGE_SIZE` pixels on a side, an unsupported array shape or dtype.
* Every pixel format ends up 8-bit RGB or RGBA: grayscale, 16-bit, palette (with its
  transparency), CMYK, YCbCr, float arrays. ONE value rule: 16-bit data is divided by 257
  (65535 -> 255); floats must lie in [0, 1] and out-of-range floats are an error, never clipped.
  EXIF orientation is applied, so a phone photo is upright.
* A huge image (more than ``max_pixels``) is downscaled with a :class:`LargeImageWarning` and is
  never decoded at full size when that can be avoided: JPEG uses the decoder's DCT scaling
  (``Image.draft``), non-interlaced 8-bit (and 16-bit grayscale) PNG is decoded in horizontal
  bands of a few hundred rows, each box-reduced before the next is read, so memory stays bounded
  by the output size. Other formats are decoded in full only up to
  :data:`MAX_FULL_DECODE_PIXELS`; beyond that a ``ValueError`` asks the user to downscale first.
  PIL's own decompression-bomb warning or error never reaches the user.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import struct
import sys
import threading
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

#: Smallest accepted side length in pixels. Zero123 works at 256x256; anything under 8 px carries
#: no usable object (a 1x1 "image" is almost always a placeholder or a broken export).
MIN_IMAGE_SIZE = 8
#: Default limit on the number of pixels of a loaded image; larger images are downscaled to fit,
#: with a warning. 8192x8192 keeps 50 MP phone photos intact and is far more than the model needs.
DEFAULT_MAX_PIXELS = 8192 * 8192
#: Formats that cannot be decoded in bands or at reduced scale are decoded in full only up to this
#: many pixels (about 540 MB as RGBA); beyond it loading is refused.
MAX_FULL_DECODE_PIXELS = 2**27

_PIL_BOMB_LOCK = threading.Lock()
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# EXIF orientation tag (0x0112) -> the transpose that makes the image upright (EXIF 2.3 spec).
_EXIF_ORIENTATION = 0x0112
_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class LargeImageWarning(UserWarning):
    """An input image was larger than ``max_pixels`` and has been downscaled."""


def load_image(
    source: Any,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_size: int = MIN_IMAGE_SIZE,
    name: str = "image",
) -> Image.Image:
    """Load ``source`` as an 8-bit RGB or RGBA PIL image (RGBA only when it has transparency).

    Args:
        source: a file path (``str`` / ``os.PathLike``), encoded file ``bytes`` or a binary file
            object, a PIL image, a numpy array ``(H, W)``, ``(H, W, 1|3|4)`` (uint8, uint16, or
            float in [0, 1]), or a torch tensor ``(C, H, W)`` / ``(1, C, H, W)`` with C in 1, 3, 4
            (float in [0, 1] or uint8).
        max_pixels: images with more pixels are downscaled (keeping aspect) to at most this many,
            with a :class:`LargeImageWarning`; huge files are never decoded at full size when the
            format allows it (see the module docstring).
        min_size: smallest accepted width and height in pixels.
        name: the argument name used in error messages.

    Returns:
        ``PIL.Image.Image`` in mode ``"RGB"`` or ``"RGBA"``, EXIF orientation applied.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: not an image, truncated/corrupt, too small, too large to decode safely,
            NaN or out-of-range values in an array.
        TypeError: an unsupported ``source`` type.

    >>> load_image(np.zeros((16, 32), dtype=np.uint8)).size
    (32, 16)
    """
    if not isinstance(max_pixels, int) or isinstance(max_pixels, bool) or max_pixels < min_size * min_size:
        raise ValueError(f"max_pixels must be an integer >= {min_size * min_size}, got {max_pixels!r}")
    if isinstance(source, Image.Image):
        label = f"{name} (PIL image)"
        if isinstance(source, ImageFile.ImageFile) and source.tile and getattr(source, "fp", None) is not None:  # not decoded yet
            image = _decode_opened(source, label, max_pixels, min_size)
        else:
            image = _finish(source, label, max_pixels, min_size)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"{name}: no such file: {str(path)!r}")
        if path.is_dir():
            raise ValueError(f"{name} must be an image file, got a folder: {str(path)!r}")
        with open(path, "rb") as f:
            image = _decode_file(f, f"{name} {str(path)!r}", max_pixels, min_size, path=path)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        image = _decode_file(io.BytesIO(bytes(source)), f"{name} (bytes)", max_pixels, min_size)
    elif hasattr(source, "read") and hasattr(source, "seek"):
        image = _decode_file(source, f"{name} (file object)", max_pixels, min_size)
    elif isinstance(source, np.ndarray):
        image = _finish(_image_from_array(source, name, channels_first=False), name, max_pixels, min_size)
    elif _is_torch_tensor(source):
        array = source.detach().cpu()
        if array.ndim == 4:
            if array.shape[0] != 1:
                raise ValueError(f"{name} must be one image; got a batch tensor of shape {tuple(array.shape)}")
            array = array[0]
        image = _finish(_image_from_array(array.numpy(), name, channels_first=True), name, max_pixels, min_size)
    else:
        raise TypeError(
            f"{name} must be a file path, bytes, a PIL image, a numpy array or a torch tensor, "
            f"got {type(source).__name__}"
        )
    return image


def composite_on_white(image: Image.Image, *, blend: bool = True) -> Image.Image:
    """RGB image with any transparency over a white background; other modes are normalised first
    with :func:`load_image`'s rules.

    Args:
        image: a PIL image of any mode.
        blend: ``True`` alpha-blends (``a * rgb + (1 - a) * 255``: the pipeline's input, preprocessing,
            evaluation). ``False`` is the original training loader's rule: pixels with alpha == 0
            become white and every other pixel keeps its colour, partial alpha is not blended.

    >>> half = Image.new("RGBA", (8, 8), (0, 0, 0, 128))
    >>> composite_on_white(half).getpixel((0, 0)), composite_on_white(half, blend=False).getpixel((0, 0))
    ((127, 127, 127), (0, 0, 0))
    """
    image = _to_rgb_or_rgba(image)
    if image.mode == "RGB":
        return image
    if blend:
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, image).convert("RGB")
    rgba = np.array(image)
    rgb = rgba[..., :3].copy()
    rgb[rgba[..., 3] == 0] = 255
    return Image.fromarray(rgb, mode="RGB")


def pad_to_square(image: Image.Image) -> Image.Image:
    """``image`` centred on a square canvas of its longest side, keeping its aspect: transparent
    padding for RGBA (so it composites to white), white padding for RGB. Square images are returned
    as they are.

    >>> pad_to_square(Image.new("RGB", (40, 20), (0, 0, 0))).size
    (40, 40)
    """
    image = _to_rgb_or_rgba(image)
    side = max(image.size)
    if image.width == image.height:
        return image
    fill = (255, 255, 255, 0) if image.mode == "RGBA" else (255, 255, 255)
    canvas = Image.new(image.mode, (side, side), fill)
    canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return canvas


# ---------------------------------------------------------------------- decoding files
@contextlib.contextmanager
def _pil_bomb_check_disabled() -> Iterator[None]:
    """We do our own size policy; silence PIL's decompression-bomb warning/error meanwhile."""
    with _PIL_BOMB_LOCK:
        old = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                yield
        finally:
            Image.MAX_IMAGE_PIXELS = old


def _decode_file(fp, label: str, max_pixels: int, min_size: int, path: Path | None = None) -> Image.Image:
    try:
        with _pil_bomb_check_disabled():
            opened = Image.open(fp)
    except UnidentifiedImageError as e:
        raise ValueError(f"{label} is not an image file PIL can read ({e})") from None
    except (OSError, SyntaxError, ValueError, struct.error) as e:
        raise ValueError(f"{label} is not a readable image: {type(e).__name__}: {e}") from None
    return _decode_opened(opened, label, max_pixels, min_size)


def _decode_opened(opened: ImageFile.ImageFile, label: str, max_pixels: int, min_size: int) -> Image.Image:
    width, height = opened.size
    _check_min_size(width, height, label, min_size)
    try:
        if width * height <= max_pixels:
            with _pil_bomb_check_disabled():
                opened.load()
            orientation = _exif_orientation(opened)
            image: Image.Image = opened
        else:
            orientation = _exif_orientation(opened, allow_load=False)
            image = _decode_reduced(opened, label, max_pixels)
    except (OSError, SyntaxError, ValueError, struct.error, zlib.error, EOFError) as e:
        raise ValueError(f"{label} is truncated or corrupt and cannot be decoded: {type(e).__name__}: {e}") from None
    image = _to_rgb_or_rgba(image)
    if orientation in _ORIENTATION_TRANSPOSE:
        image = image.transpose(_ORIENTATION_TRANSPOSE[orientation])
    return _finish(image, label, max_pixels, min_size, warn=width * height <= max_pixels)


def _decode_reduced(opened: ImageFile.ImageFile, label: str, max_pixels: int) -> Image.Image:
    """Decode an image with more than ``max_pixels`` pixels without holding it at full size."""
    width, height = opened.size
    factor = max(2, math.ceil(math.sqrt(width * height / max_pixels)))
    target = (max(1, width // factor), max(1, height // factor))
    warnings.warn(
        f"{label} is {width}x{height} ({width * height / 1e6:.0f} MP), more than max_pixels="
        f"{max_pixels} ({max_pixels / 1e6:.0f} MP); downscaling it about {factor}x while decoding",
        LargeImageWarning,
        stacklevel=4,
    )
    with _pil_bomb_check_disabled():
        if opened.format == "JPEG":
            opened.draft(opened.mode if opened.mode in ("RGB", "L") else None, target)  # DCT scaling
            opened.load()
            return opened
        if opened.format == "PNG" and _png_streamable(opened):
            opened.fp.seek(0)
            return _decode_png_reduced(opened.fp, factor)
        if width * height > MAX_FULL_DECODE_PIXELS:
            raise ValueError(
                f"{label} is {width}x{height} ({width * height / 1e6:.0f} MP) {opened.format} image; "
                f"only JPEG and non-interlaced PNG can be decoded at reduced size, and decoding this one "
                f"in full would exceed {MAX_FULL_DECODE_PIXELS / 1e6:.0f} MP. Downscale it first."
            )
        opened.load()
        return opened


def _png_streamable(opened: ImageFile.ImageFile) -> bool:
    if opened.info.get("interlace"):
        return False
    try:
        opened.fp.seek(0)
        header = opened.fp.read(33)
    except (OSError, AttributeError):
        return False
    if header[:8] != _PNG_SIGNATURE or header[12:16] != b"IHDR":
        return False
    bit_depth, color_type = header[24], header[25]
    return (bit_depth == 8 and color_type in _PNG_CHANNELS) or (bit_depth == 16 and color_type == 0)


def _png_chunks(fp) -> Iterator[tuple[bytes, bytes]]:
    if fp.read(8) != _PNG_SIGNATURE:
        raise ValueError("not a PNG file")
    while True:
        head = fp.read(8)
        if len(head) < 8:
            raise ValueError("PNG file is truncated (no IEND chunk)")
        length, kind = struct.unpack(">I4s", head)
        data = fp.read(length)
        if len(data) < length:
            raise ValueError(f"PNG file is truncated inside a {kind!r} chunk")
        fp.read(4)  # CRC; PIL verifies it when it decodes each band
        yield kind, data
        if kind == b"IEND":
            return


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _decode_png_reduced(fp, factor: int, band_rows: int | None = None) -> Image.Image:
    """Decode a non-interlaced PNG in bands of rows, box-reducing each band by ``factor``.

    PNG filters refer only to the previous row, so a band of filtered rows decodes correctly when
    preceded by the previous band's last row stored unfiltered: each band becomes a small,
    self-contained PNG (stored with zlib level 0) that PIL decodes at C speed. Peak memory is a
    few bands plus the reduced output.
    """
    ihdr, extra = None, []
    decompressor = zlib.decompressobj()
    pending = bytearray()
    bands: list[Image.Image] = []
    prev_row = None

    rows_done = 0

    def emit(rows_bytes: bytes, n_rows: int) -> None:
        nonlocal prev_row, rows_done
        rows_done += n_rows
        width, bit_depth, color_type = ihdr_fields
        header = struct.pack(">IIBBBBB", width, n_rows + 1, bit_depth, color_type, 0, 0, 0)
        raw = b"\x00" + prev_row + rows_bytes
        png = (
            _PNG_SIGNATURE + _png_chunk(b"IHDR", header) + b"".join(extra)
            + _png_chunk(b"IDAT", zlib.compress(raw, 0)) + _png_chunk(b"IEND", b"")
        )
        band = Image.open(io.BytesIO(png))
        band.load()
        rawmode = "I;16B" if bit_depth == 16 else band.mode
        prev_row = band.crop((0, n_rows, width, n_rows + 1)).tobytes("raw", rawmode)
        band = _to_rgb_or_rgba(band.crop((0, 1, width, n_rows + 1)))
        bands.append(band.reduce(factor))

    for kind, data in _png_chunks(fp):
        if kind == b"IHDR":
            ihdr = data
            width, height, bit_depth, color_type = struct.unpack(">IIBB", data[:10])
            ihdr_fields = (width, bit_depth, color_type)
            row_bytes = math.ceil(width * _PNG_CHANNELS[color_type] * bit_depth / 8)
            stride = row_bytes + 1
            prev_row = bytes(row_bytes)  # PNG: the row before the first one is all zeros
            rows_per_band = band_rows or max(factor, (4 << 20) // stride // factor * factor)
            rows_per_band = max(factor, rows_per_band // factor * factor)
        elif kind in (b"PLTE", b"tRNS"):
            extra.append(_png_chunk(kind, data))
        elif kind == b"IDAT":
            if ihdr is None:
                raise ValueError("PNG IDAT before IHDR")
            band_bytes = rows_per_band * stride
            while data:  # bounded inflate: a 1 MB chunk of zeros can expand to gigabytes
                pending += decompressor.decompress(data, band_bytes)
                data = decompressor.unconsumed_tail
                while len(pending) >= band_bytes:
                    emit(bytes(pending[:band_bytes]), rows_per_band)
                    del pending[:band_bytes]
    if ihdr is None:
        raise ValueError("PNG file has no IHDR chunk")
    pending += decompressor.flush()
    remaining = height - rows_done
    if len(pending) < remaining * stride:
        raise ValueError(f"PNG image data ends at row {rows_done + len(pending) // stride} of {height}")
    if remaining > 0:
        emit(bytes(pending[: remaining * stride]), remaining)
    out = Image.new(bands[0].mode, (bands[0].width, sum(b.height for b in bands)))
    y = 0
    for band in bands:
        out.paste(band, (0, y))
        y += band.height
    return out


def _exif_orientation(image: Image.Image, *, allow_load: bool = True) -> int:
    """EXIF orientation (1 = upright). With ``allow_load=False`` only EXIF data already parsed from
    the header is used (PNG's ``getexif()`` would decode the whole image to look for it)."""
    try:
        if allow_load or image.format in ("JPEG", "MPO", "TIFF"):
            exif = image.getexif()
        elif "exif" in image.info:
            exif = Image.Exif()
            exif.load(image.info["exif"])
        else:
            return 1
        return int(exif.get(_EXIF_ORIENTATION, 1))
    except Exception:  # a broken EXIF block must not stop loading the pixels
        return 1


# ---------------------------------------------------------------------- modes and arrays
def _to_rgb_or_rgba(image: Image.Image) -> Image.Image:
    """8-bit RGB, or RGBA when the image carries transparency (the rules in :func:`load_image`)."""
    mode = image.mode
    if mode in ("RGB", "RGBA"):
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        array = np.asarray(image)
        gray = Image.fromarray(_to_uint8(array, f"{mode} image", pil_integer_mode=True), mode="L")
        transparency = image.info.get("transparency")
        if isinstance(transparency, int):
            alpha = Image.fromarray(np.where(array == transparency, 0, 255).astype(np.uint8), mode="L")
            return Image.merge("RGBA", (gray, gray, gray, alpha))
        return gray.convert("RGB")
    has_alpha = mode in ("LA", "La", "PA", "RGBa") or "transparency" in image.info
    if mode == "P" and image.palette is not None and image.palette.mode == "RGBA":
        has_alpha = True
    return image.convert("RGBA" if has_alpha else "RGB")


def _to_uint8(array: np.ndarray, name: str, *, pil_integer_mode: bool = False) -> np.ndarray:
    """THE pixel-value rule, for files, arrays, tensors and PIL's integer/float modes alike: uint8 as
    is; bool -> 0/255; 16-bit data (uint16 arrays, PIL's ``I;16`` and 32-bit ``I`` modes) ->
    ``round(v / 257)`` so 65535 -> 255, clipped; floats must lie in [0, 1] (up to 1e-3 of rounding)
    and anything outside is an error, never a silent clip of real data."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if array.dtype == np.uint16 or (pil_integer_mode and np.issubdtype(array.dtype, np.integer)):
        return np.clip(np.rint(array.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} contains NaN or inf values")
        lo, hi = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise ValueError(
                f"{name}: float images must have values in [0, 1], got range [{lo:.3g}, {hi:.3g}] "
                "(for [-1, 1] data pass (x + 1) / 2; for 0-255 data pass uint8)"
            )
        return np.rint(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)
    raise ValueError(f"{name} has unsupported dtype {array.dtype}; use uint8, uint16 or float in [0, 1]")


def _image_from_array(array: np.ndarray, name: str, *, channels_first: bool) -> Image.Image:
    shape = tuple(array.shape)
    if array.ndim == 3 and channels_first:
        if shape[0] not in (1, 3, 4):
            raise ValueError(f"{name} tensor must be (C, H, W) with C in 1, 3, 4, got shape {shape}")
        array = np.moveaxis(array, 0, -1)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        layout = "(C, H, W)" if channels_first else "(H, W), (H, W, 1), (H, W, 3) or (H, W, 4)"
        raise ValueError(f"{name} array must have shape {layout}, got {shape}")
    array = _to_uint8(array, name)
    if array.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(array), mode="L")
    return Image.fromarray(np.ascontiguousarray(array), mode="RGB" if array.shape[-1] == 3 else "RGBA")


def _check_min_size(width: int, height: int, label: str, min_size: int) -> None:
    if width < min_size or height < min_size:
        raise ValueError(f"{label} is {width}x{height} pixels; images must be at least {min_size}x{min_size}")


def _finish(image: Image.Image, label: str, max_pixels: int, min_size: int, warn: bool = True) -> Image.Image:
    """Check size, normalise the mode, enforce ``max_pixels`` on an image already in memory."""
    _check_min_size(image.width, image.height, label, min_size)
    try:
        image = _to_rgb_or_rgba(image)
    except (OSError, ValueError) as e:
        raise ValueError(f"{label} cannot be decoded: {type(e).__name__}: {e}") from None
    if image.width * image.height > max_pixels:
        scale = math.sqrt(max_pixels / (image.width * image.height))
        size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
        if warn:  # (a reduced decode has warned already)
            warnings.warn(
                f"{label} is {image.width}x{image.height}, more than max_pixels={max_pixels}; "
                f"downscaled to {size[0]}x{size[1]}",
                LargeImageWarning,
                stacklevel=3,
            )
        image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    _check_min_size(image.width, image.height, label, min_size)
    return image


def _is_torch_tensor(obj) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.Tensor)
