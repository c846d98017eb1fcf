"""The digest's trend pictures: valid PNG bytes, the line where the values say, text form."""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.sparkline import (
    Band,
    encode_png,
    render_sparkline,
    sparkline_alt,
    text_sparkline,
)


def decode(png: bytes) -> tuple[int, int, list[tuple[int, int, int]], list[bytes]]:
    """A minimal reader for what encode_png writes (checks every CRC on the way)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    idat = b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8]
        data = png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + data) & 0xFFFFFFFF, kind
        if kind == b"IDAT":
            idat += data
        chunks[kind] = data
        pos += 12 + length
    assert list(chunks)[-1] == b"IEND"
    width, height, depth, ctype, *_ = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, ctype) == (8, 3)
    plte = chunks[b"PLTE"]
    palette = [tuple(plte[i : i + 3]) for i in range(0, len(plte), 3)]
    raw = zlib.decompress(idat)
    rows = []
    for y in range(height):
        start = y * (width + 1)
        assert raw[start] == 0  # filter byte
        rows.append(raw[start + 1 : start + 1 + width])
    return width, height, palette, rows  # type: ignore[return-value]


def test_encode_png_round_trips_pixels_and_palette() -> None:
    rows = [bytes([0, 1, 2]), bytes([2, 1, 0])]
    palette = [(255, 255, 255), (0, 0, 0), (200, 10, 10)]
    width, height, got_palette, got_rows = decode(encode_png(rows, palette))
    assert (width, height) == (3, 2)
    assert got_palette == palette
    assert got_rows == rows


@pytest.mark.parametrize(
    ("rows", "palette"),
    [
        ([], [(0, 0, 0)]),
        ([b"\x00\x00", b"\x00"], [(0, 0, 0)]),
        ([b"\x00\x01"], [(0, 0, 0)]),
        ([b"\x00"], []),
    ],
)
def test_encode_png_refuses_malformed_images(rows: list[bytes], palette: list[tuple]) -> None:
    with pytest.raises(ValueError):
        encode_png(rows, palette)


def _line_rows(rows: list[bytes], column: int) -> list[int]:
    return [y for y, row in enumerate(rows) if row[column] == 1]


def test_falling_scores_draw_a_line_from_high_left_to_low_right() -> None:
    spark = render_sparkline([90, 80, 70, 60, 50, 40, 30, 20], width=100, height=30, scale=2)
    width, height, palette, rows = decode(spark.png)
    assert (width, height) == (200, 60)  # twice the display size
    assert (spark.width, spark.height) == (100, 30)
    assert palette[1] == (37, 99, 235)
    left = _line_rows(rows, 10)
    right = _line_rows(rows, 185)
    assert left and right
    assert max(left) < min(right)  # higher score is nearer the top
    assert len(spark.png) < 2000  # small enough to inline many


def test_fixed_axis_makes_a_steady_score_a_flat_line_at_its_level() -> None:
    _, _, _, rows = decode(render_sparkline([75] * 10, scale=1, width=100, height=40).png)
    ys = {tuple(_line_rows(rows, x)) for x in range(20, 80)}
    assert len(ys) == 1  # the same rows in every column
    (line,) = ys
    middle = sum(line) / len(line)
    assert 3 + 0.25 * 34 - 2 <= middle <= 3 + 0.25 * 34 + 2  # 75 sits a quarter down


def test_missing_weeks_leave_a_gap_and_bands_are_painted() -> None:
    spark = render_sparkline(
        [80, 80, None, None, None, 80, 80], width=70, height=20, scale=1,
        bands=[Band(0, 40, (254, 226, 226))],
    )
    _, _, palette, rows = decode(spark.png)
    assert palette[2] == (254, 226, 226)
    gap_column = 35  # the middle of the missing weeks
    assert _line_rows(rows, gap_column) == []
    assert rows[-2][gap_column] == 2  # low zone painted
    assert rows[1][gap_column] == 0  # top stays background


def test_all_missing_gives_an_empty_picture_not_an_error() -> None:
    _, _, _, rows = decode(render_sparkline([None, None, None]).png)
    assert all(1 not in row for row in rows)


def test_single_value_is_a_dot() -> None:
    _, _, _, rows = decode(render_sparkline([50]).png)
    assert any(1 in row for row in rows)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(-50, 150)), min_size=1, max_size=16))
def test_any_series_renders_a_valid_png(values: list[float | None]) -> None:
    width, height, _, rows = decode(render_sparkline(values, width=40, height=12).png)
    assert (width, height) == (80, 24)
    if any(v is not None for v in values):
        assert any(1 in row for row in rows)


def test_text_sparkline_uses_a_fixed_scale_and_marks_missing_weeks() -> None:
    assert text_sparkline([0, 50, 100, None]) == "▁▅█·"
    assert text_sparkline([-10, 130]) == "▁█"  # clamped to the axis


def test_alt_text_states_the_numbers() -> None:
    assert sparkline_alt([80, None, 60.4, 41]) == (
        "Score over 4 weeks: from 80 to 41 (lowest 41, highest 80)"
    )
    assert sparkline_alt([None, None]) == "Score: no data yet"
    assert sparkline_alt([55]) == "Score over 1 week: 55"
