"""Small trend pictures for the weekly digest: a PNG sparkline and a text one.

Why a PNG attached by Content-ID (multipart/related) rather than an HTML/CSS
chart or an SVG:

* Outlook for Windows renders HTML with Word: it ignores ``div`` heights,
  most CSS sizing and flexbox, so CSS bar charts collapse or misalign there.
* Gmail strips ``data:`` image URIs and inline SVG; SVG is also dropped by
  Outlook and most webmail.
* An image carried *inside* the message (``cid:``) is not a remote resource:
  clients that block remote images by default (Outlook, Apple Mail privacy,
  Gmail's proxy) still show it, and nothing is fetched from a server.

The PNG is drawn here with ``zlib`` and ``struct`` (an 8-bit palette image,
usually a few hundred bytes), at twice its display size so it stays crisp on
high-density screens. Every picture also gets an ``alt`` text with the
numbers, and the plain-text part uses :func:`text_sparkline`.

Pure: values in, bytes or strings out.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "Band",
    "Sparkline",
    "encode_png",
    "render_sparkline",
    "sparkline_alt",
    "text_sparkline",
]

RGB = tuple[int, int, int]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_BLOCKS = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class Band:
    """A horizontal zone of the value axis painted in a faint colour (e.g. 'unhealthy')."""

    low: float
    high: float
    color: RGB


@dataclass(frozen=True)
class Sparkline:
    """A rendered picture and how to show it: display size is half the pixel size."""

    png: bytes
    width: int  # display width in CSS pixels
    height: int
    alt: str


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def encode_png(rows: Sequence[bytes | bytearray], palette: Sequence[RGB]) -> bytes:
    """An 8-bit indexed-colour PNG from rows of palette indices (one byte per pixel)."""
    if not rows:
        raise ValueError("an image needs at least one row")
    width = len(rows[0])
    if width == 0 or any(len(r) != width for r in rows):
        raise ValueError("every row must have the same, non-zero width")
    if not 1 <= len(palette) <= 256:
        raise ValueError("a palette has 1 to 256 colours")
    if max(max(r) for r in rows) >= len(palette):
        raise ValueError("a pixel refers to a colour outside the palette")
    header = struct.pack(">IIBBBBB", width, len(rows), 8, 3, 0, 0, 0)
    plte = b"".join(bytes(c) for c in palette)
    raw = b"".join(b"\x00" + bytes(r) for r in rows)  # filter type 0 on every row
    return (
        _PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"PLTE", plte)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )


class _Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self.rows = [bytearray(width) for _ in range(height)]

    def fill_rows(self, top: int, bottom: int, color: int) -> None:
        for y in range(max(0, top), min(self.height, bottom)):
            self.rows[y][:] = bytes([color]) * self.width

    def disc(self, cx: float, cy: float, radius: float, color: int) -> None:
        r2 = radius * radius
        top = max(0, math.floor(cy - radius))
        for y in range(top, min(self.height, math.ceil(cy + radius) + 1)):
            dy = y + 0.5 - cy
            row = self.rows[y]
            for x in range(max(0, math.floor(cx - radius)),
                           min(self.width, math.ceil(cx + radius) + 1)):
                dx = x + 0.5 - cx
                if dx * dx + dy * dy <= r2:
                    row[x] = color

    def line(self, x0: float, y0: float, x1: float, y1: float, radius: float, color: int) -> None:
        steps = max(1, math.ceil(math.hypot(x1 - x0, y1 - y0) / max(0.5, radius / 2)))
        for i in range(steps + 1):
            t = i / steps
            self.disc(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t, radius, color)


def render_sparkline(
    values: Sequence[float | None],
    *,
    width: int = 132,
    height: int = 34,
    scale: int = 2,
    low: float = 0.0,
    high: float = 100.0,
    line: RGB = (37, 99, 235),
    background: RGB = (255, 255, 255),
    bands: Sequence[Band] = (),
    alt: str = "",
) -> Sparkline:
    """A line of `values` (None = no data that week) on a fixed axis from `low` to `high`.

    The axis is fixed, not fitted to the data, so pictures of different
    clients compare at a glance and a flat line means a steady score. The
    newest point gets a dot. `width` and `height` are the display size.
    """
    if width < 8 or height < 8 or scale < 1:
        raise ValueError("a sparkline needs at least 8x8 display pixels and scale >= 1")
    if high <= low:
        raise ValueError("high must be above low")
    palette: list[RGB] = [background, line]
    canvas = _Canvas(width * scale, height * scale)
    pad = 3.0 * scale  # keeps the line and the end dot inside the picture

    def y_of(value: float) -> float:
        clamped = min(high, max(low, value))
        usable = canvas.height - 2 * pad
        return pad + (high - clamped) / (high - low) * usable

    for band in bands:
        palette.append(band.color)
        upper, lower = max(band.low, band.high), min(band.low, band.high)
        # a band reaching an end of the axis also covers the padding beyond it
        top = 0 if upper >= high else round(y_of(upper))
        bottom = canvas.height if lower <= low else round(y_of(lower))
        canvas.fill_rows(top, bottom, len(palette) - 1)

    count = len(values)
    step = (canvas.width - 2 * pad) / max(1, count - 1)
    points = [
        (pad + i * step if count > 1 else canvas.width / 2, y_of(v)) if v is not None else None
        for i, v in enumerate(values)
    ]
    radius = 0.75 * scale
    previous: tuple[float, float] | None = None
    for point in points:
        if point is not None:
            if previous is not None:
                canvas.line(*previous, *point, radius=radius, color=1)
            else:
                canvas.disc(*point, radius=radius, color=1)
        previous = point
    last = next((p for p in reversed(points) if p is not None), None)
    if last is not None:
        canvas.disc(*last, radius=2.2 * scale, color=1)
    return Sparkline(encode_png(canvas.rows, palette), width, height, alt)


def text_sparkline(
    values: Sequence[float | None], *, low: float = 0.0, high: float = 100.0
) -> str:
    """The same trend as block characters (▁…█) for the plain-text part; '·' = no data."""
    out = []
    for value in values:
        if value is None:
            out.append("·")
            continue
        share = (min(high, max(low, value)) - low) / (high - low)
        out.append(_BLOCKS[min(len(_BLOCKS) - 1, int(share * len(_BLOCKS)))])
    return "".join(out)


def sparkline_alt(values: Sequence[float | None], *, what: str = "Score") -> str:
    """Words for the picture, for screen readers and clients that hide images."""
    known = [round(v) for v in values if v is not None]
    if not known:
        return f"{what}: no data yet"
    weeks = len(values)
    span = "1 week" if weeks == 1 else f"{weeks} weeks"
    if len(known) == 1:
        return f"{what} over {span}: {known[0]}"
    return (
        f"{what} over {span}: from {known[0]} to {known[-1]} "
        f"(lowest {min(known)}, highest {max(known)})"
    )
