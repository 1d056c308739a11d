"""Contact sheets: a labelled grid of images, for people who would rather look than read."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont


def contact_sheet(
    rows: Sequence[Sequence[Image.Image | None]],
    *,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    cell_size: int | None = None,
    pad: int = 4,
    background: tuple[int, int, int] = (255, 255, 255),
) -> Image.Image:
    """Lay ``rows`` of images out in a grid with optional row and column labels.

    Args:
        rows: a list of rows, each a list of PIL images (``None`` leaves a cell empty).
        row_labels: one label per row, drawn on the left.
        col_labels: one label per column, drawn on top.
        cell_size: side of each square cell in pixels (default: the largest image side).
        pad: gap between cells in pixels.

    Returns:
        An RGB PIL image.
    """
    if not rows or not any(len(r) for r in rows):
        raise ValueError("contact_sheet needs at least one image")
    if row_labels is not None and len(row_labels) != len(rows):
        raise ValueError(f"row_labels has {len(row_labels)} entries for {len(rows)} rows")
    n_cols = max(len(r) for r in rows)
    if col_labels is not None and len(col_labels) != n_cols:
        raise ValueError(f"col_labels has {len(col_labels)} entries for {n_cols} columns")
    images = [im for r in rows for im in r if im is not None]
    cell = cell_size or max(max(im.size) for im in images)
    font = ImageFont.load_default()
    text_h = 14
    left = (max(len(s) for s in row_labels) * 7 + 2 * pad) if row_labels else 0
    top = (text_h + pad) if col_labels else 0
    width = left + n_cols * (cell + pad) + pad
    height = top + len(rows) * (cell + pad) + pad
    sheet = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(sheet)
    for c, label in enumerate(col_labels or []):
        draw.text((left + pad + c * (cell + pad), pad // 2), str(label), fill=(0, 0, 0), font=font)
    for r, row in enumerate(rows):
        y = top + pad + r * (cell + pad)
        if row_labels:
            draw.text((pad, y + cell // 2 - text_h // 2), str(row_labels[r]), fill=(0, 0, 0), font=font)
        for c, im in enumerate(row):
            if im is None:
                continue
            im = im.convert("RGBA")
            if im.size != (cell, cell):
                im.thumbnail((cell, cell), Image.Resampling.LANCZOS)
            tile = Image.new("RGB", (cell, cell), background)
            tile.paste(im, ((cell - im.width) // 2, (cell - im.height) // 2), im)
            sheet.paste(tile, (left + pad + c * (cell + pad), y))
    return sheet
