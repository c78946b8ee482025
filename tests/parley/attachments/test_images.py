"""Images are re-encoded without metadata (EXIF GPS above all), measured, thumbnailed, and refused past the
pixel limit before their pixels are decoded."""

import io

import pytest
from PIL import Image

from parley.attachments.images import process
from parley.errors import BadRequest


def jpeg_with_gps(width: int = 640, height: int = 480, orientation: int | None = None) -> bytes:
    image = Image.new("RGB", (width, height), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (48.0, 51.0, 29.0), "E", (2.0, 17.0, 40.0)
    if orientation is not None:
        exif[0x0112] = orientation
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


def test_the_fixture_has_gps():
    assert Image.open(io.BytesIO(jpeg_with_gps())).getexif().get_ifd(0x8825)


def test_exif_and_its_gps_are_gone_and_the_size_is_measured():
    done = process(jpeg_with_gps(), "image/jpeg", max_pixels=10**7, thumb_px=100)
    image = Image.open(io.BytesIO(done.data))
    assert image.format == "JPEG" and (done.width, done.height) == (640, 480) == image.size
    assert not image.getexif() and "exif" not in image.info
    assert b"PhoneMaker" not in done.data and b"GPS" not in done.data
    thumb = Image.open(io.BytesIO(done.thumb))
    assert thumb.format == "JPEG" and max(thumb.size) == 100 and thumb.size == (100, 75)
    assert not thumb.getexif()


def test_the_orientation_is_applied_before_the_exif_goes():
    done = process(jpeg_with_gps(640, 480, orientation=6), "image/jpeg", max_pixels=10**7, thumb_px=100)
    assert (done.width, done.height) == (480, 640)  # rotated upright


def test_png_text_chunks_are_dropped_and_transparency_kept():
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret location")
    out = io.BytesIO()
    Image.new("RGBA", (40, 20), (0, 0, 255, 128)).save(out, format="PNG", pnginfo=info)
    done = process(out.getvalue(), "image/png", max_pixels=10**7, thumb_px=320)
    image = Image.open(io.BytesIO(done.data))
    assert image.mode == "RGBA" and image.getpixel((0, 0)) == (0, 0, 255, 128)
    assert b"secret location" not in done.data and not image.text
    assert Image.open(io.BytesIO(done.thumb)).size == (40, 20)  # never enlarged


def test_a_palette_gif_stays_a_gif():
    out = io.BytesIO()
    Image.new("P", (16, 16), 3).save(out, format="GIF")
    done = process(out.getvalue(), "image/gif", max_pixels=10**7, thumb_px=8)
    assert Image.open(io.BytesIO(done.data)).format == "GIF" and (done.width, done.height) == (16, 16)


def test_past_the_pixel_limit_is_refused_from_the_header():
    with pytest.raises(BadRequest) as info:
        process(jpeg_with_gps(640, 480), "image/jpeg", max_pixels=640 * 480 - 1, thumb_px=100)
    assert info.value.code == "image_too_large"


def test_a_bomb_header_is_refused_without_decoding():
    """A PNG header claiming 100000 x 100000 pixels (10^10): refused, and fast, whatever Pillow's own limit."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0))
    bomb = b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b"")
    with pytest.raises(BadRequest) as info:
        process(bomb, "image/png", max_pixels=50_000_000, thumb_px=100)
    assert info.value.code == "image_too_large"


def test_a_truncated_image_is_bad_image():
    data = jpeg_with_gps()
    with pytest.raises(BadRequest) as info:
        process(data[: len(data) // 3], "image/jpeg", max_pixels=10**7, thumb_px=100)
    assert info.value.code == "bad_image"
