"""The content type of an upload, from its first bytes only: what the client says is never trusted.

An allow-list of types recognised by their magic numbers; anything else is ``application/octet-stream``
(served as a download). ``text/plain`` is valid UTF-8 without control characters other than whitespace,
judged on the first ``TEXT_PROBE`` bytes (a cut multi-byte character at the probe's end is allowed).
A client's claim is only used to refuse a disguise: claimed as an image (by its type or its name's
extension) while the bytes are no image at all (``disguised``). An image of a format we do not show (HEIC,
AVIF, BMP, TIFF, ICO) is no disguise: it is kept as a download. SVG is a script container, not an image
here: a claim of SVG claims nothing, and its bytes sniff as text.
"""

from __future__ import annotations

OCTET_STREAM = "application/octet-stream"
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif")
# images we keep as downloads (not re-encoded, not shown): their magic numbers, and ISO-BMFF brands
_OTHER_IMAGES = (b"BM", b"II*\x00", b"MM\x00*", b"\x00\x00\x01\x00")
_OTHER_IMAGE_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
TEXT_PROBE = 8192
# (offset, magic, type); the first match wins
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"OggS", "audio/ogg"),
    (0, b"ID3", "audio/mpeg"),
)
_MP4_BRANDS = {b"isom", b"iso2", b"mp41", b"mp42", b"avc1", b"M4V ", b"dash"}
_QUICKTIME_BRANDS = {b"qt  "}
_CONTROL = set(range(0x20)) - {0x09, 0x0A, 0x0C, 0x0D}


def sniff(data: bytes) -> str:
    """The type of ``data`` by its bytes: one of the allow-list, else ``application/octet-stream``."""
    for offset, magic, kind in _MAGIC:
        if data[offset:offset + len(magic)] == magic:
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in _MP4_BRANDS:
            return "video/mp4"
        if brand in _QUICKTIME_BRANDS:
            return "video/quicktime"
    if data[:4] == b"\x1aE\xdf\xa3":
        return "video/webm"
    if _is_text(data[:TEXT_PROBE], cut=len(data) > TEXT_PROBE):
        return "text/plain"
    return OCTET_STREAM


def _is_text(probe: bytes, *, cut: bool) -> bool:
    if not probe or any(b in _CONTROL for b in probe):
        return False
    try:
        probe.decode("utf-8")
    except UnicodeDecodeError as err:
        return cut and err.start >= len(probe) - 3 and err.reason == "unexpected end of data"
    return True


def is_image(kind: str) -> bool:
    return kind in IMAGE_TYPES


def any_image(data: bytes, kind: str) -> bool:
    """Whether the bytes are an image, of a type we show or of another (kept as a download)."""
    return is_image(kind) or data.startswith(_OTHER_IMAGES) or (
        data[4:8] == b"ftyp" and data[8:12] in _OTHER_IMAGE_BRANDS)


def claims_image(content_type: str | None, name: str) -> bool:
    """Whether the client presents the upload as an image: its Content-Type or its name's extension."""
    claimed = (content_type or "").split(";", 1)[0].strip().lower()
    return (claimed.startswith("image/") and claimed != "image/svg+xml") or name.lower().endswith(IMAGE_EXTENSIONS)


def disguised(data: bytes, kind: str, content_type: str | None, name: str) -> bool:
    """Claimed as an image while the bytes are no image at all (an executable named ``.png``): refused."""
    return claims_image(content_type, name) and not any_image(data, kind)
