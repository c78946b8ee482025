"""The content type comes from the bytes only; a claim of an image over other bytes is a disguise."""

import pytest

from parley.attachments.sniff import OCTET_STREAM, claims_image, disguised, sniff

ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56
PE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 56


@pytest.mark.parametrize(("data", "kind"), [
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
    (b"GIF89a\x01\x00", "image/gif"),
    (b"GIF87a\x01\x00", "image/gif"),
    (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
    (b"%PDF-1.7\n", "application/pdf"),
    (b"\x00\x00\x00\x18ftypmp42\x00\x00", "video/mp4"),
    (b"\x00\x00\x00\x18ftypisom\x00\x00", "video/mp4"),
    (b"\x1aE\xdf\xa3\x01", "video/webm"),
    (b"hello, world\n", "text/plain"),
    ("grüße, 你好\r\n\ttab".encode(), "text/plain"),
    (ELF, OCTET_STREAM),
    (PE, OCTET_STREAM),
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", OCTET_STREAM),  # a RIFF that is not WebP
    (b"text with a \x00 nul", OCTET_STREAM),
    (b"\xff\xfe not utf-8", OCTET_STREAM),
    (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "text/plain"),  # never an image
])
def test_the_type_is_read_from_the_bytes(data, kind):
    assert sniff(data) == kind


def test_text_cut_inside_a_character_at_the_probe_is_still_text():
    data = b"a" * 8191 + "é".encode() + b"more"
    assert sniff(data) == "text/plain"
    assert sniff(b"a" * 100 + b"\xc3") == OCTET_STREAM  # the whole file ends mid-character: not text


@pytest.mark.parametrize(("content_type", "name", "claims"), [
    ("image/png", "x.bin", True),
    ("IMAGE/JPEG; charset=x", "x", True),
    ("application/octet-stream", "cat.PNG", True),
    (None, "holiday.jpeg", True),
    ("application/octet-stream", "setup.exe", False),
    (None, "notes.txt", False),
    ("text/plain", "png", False),
    ("image/svg+xml", "drawing.svg", False),  # SVG is not an image here: served as a download
])
def test_what_claims_to_be_an_image(content_type, name, claims):
    assert claims_image(content_type, name) is claims


def test_an_executable_named_png_is_a_disguise_and_a_real_png_is_not():
    assert disguised(ELF, sniff(ELF), "image/png", "cat.png")
    assert disguised(ELF, sniff(ELF), None, "cat.png")
    assert not disguised(ELF, sniff(ELF), "application/octet-stream", "tool")  # an honest download
    png = b"\x89PNG\r\n\x1a\n\x00\x00"
    assert not disguised(png, sniff(png), "image/jpeg", "cat.jpg")  # an image of another kind is still an image


@pytest.mark.parametrize("data", [b"\x00\x00\x00\x18ftypheic\x00\x00", b"\x00\x00\x00\x1cftypavif", b"BM6\x00\x00\x00",
                                  b"II*\x00\x08\x00", b"MM\x00*\x00\x08"])
def test_images_we_do_not_show_are_downloads_not_disguises(data):
    assert sniff(data) == OCTET_STREAM
    assert not disguised(data, sniff(data), "image/heic", "IMG_0001.HEIC")
