"""Images: decoded with a pixel limit, re-encoded without metadata, with a thumbnail and the dimensions.

What leaves here carries no EXIF, XMP, ICC comment or text chunk: the pixels are copied into a fresh image
and saved in the sniffed format, so a phone's GPS position never reaches the other members. The EXIF
orientation is applied to the pixels first (a portrait photo stays upright once its EXIF is gone). An
image past ``max_pixels`` is refused from its header, before its pixels are decoded (decompression
bombs); one Pillow cannot decode is refused too (``bad_image``). An animated GIF or WebP keeps only its
first frame. Blocking (CPU): the API runs it in a thread.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps

from parley.errors import BadRequest

FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WEBP"}
THUMB_TYPE = "image/jpeg"


@dataclass(frozen=True, slots=True)
class Processed:
    data: bytes  # the image re-encoded, metadata stripped
    width: int
    height: int
    thumb: bytes  # a JPEG whose longer side is at most the thumbnail size


def process(data: bytes, kind: str, *, max_pixels: int, thumb_px: int) -> Processed:
    """``data`` (sniffed as ``kind``, an image type) cleaned, measured and thumbnailed."""
    image = _open(data, max_pixels)
    try:
        image = ImageOps.exif_transpose(image)
        clean = _without_metadata(image, kind)
        out = io.BytesIO()
        clean.save(out, format=FORMATS[kind], **({"quality": 90} if kind == "image/jpeg" else {}))
        thumb = clean.convert("RGB")
        thumb.thumbnail((thumb_px, thumb_px))
        small = io.BytesIO()
        thumb.save(small, format="JPEG", quality=80)
    except (OSError, ValueError, SyntaxError) as err:  # a truncated or corrupt file shows only now
        raise BadRequest(f"the image could not be read: {err}", code="bad_image") from None
    return Processed(out.getvalue(), clean.width, clean.height, small.getvalue())


def _open(data: bytes, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():  # Pillow's own bomb warning: our limit below is the one that counts
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise BadRequest(f"the image has too many pixels; the limit is {max_pixels}", code="image_too_large",
                         limit=max_pixels) from None
    except (OSError, ValueError, SyntaxError) as err:
        raise BadRequest(f"the image could not be read: {err}", code="bad_image") from None
    width, height = image.size
    if width * height > max_pixels:
        raise BadRequest(f"the image has {width}x{height} pixels; the limit is {max_pixels}",
                         code="image_too_large", limit=max_pixels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image.load()
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
            raise BadRequest(f"the image could not be read: {err}", code="bad_image") from None
    return image


def _without_metadata(image: Image.Image, kind: str) -> Image.Image:
    """The pixels in a fresh image: nothing of the original's ``info`` (EXIF, XMP, comments) comes along."""
    mode = image.mode
    if kind == "image/jpeg" and mode not in ("RGB", "L", "CMYK"):
        mode = "RGB"
    elif mode not in ("1", "L", "LA", "P", "RGB", "RGBA"):
        mode = "RGBA"
    source = image.convert(mode) if mode != image.mode else image
    clean = Image.new(mode, source.size)
    clean.paste(source)
    if mode == "P" and source.getpalette() is not None:
        clean.putpalette(source.getpalette() or [])
        if "transparency" in source.info and isinstance(source.info["transparency"], int):
            clean.info["transparency"] = source.info["transparency"]
    return clean
