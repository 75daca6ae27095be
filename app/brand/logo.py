"""Logo uploads: PNG or JPEG only, size-limited, decoded to prove they are images, and stored
as a PNG leadkit encoded itself.

Re-encoding is the point: what is stored and served is pixels we wrote, never the uploaded
bytes — no SVG script, no polyglot file, no EXIF (a phone photo's GPS position), no oversized
frame. SVG is refused rather than sanitised: a sanitiser is one more parser to trust, and a
PNG of a logo is small.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps

from app.core.errors import InvalidInput
from app.core.i18n import N_

MAX_LOGO_BYTES = 512 * 1024
# Bounds checked from the header, before any pixel is decoded (a small file can claim to be a
# 50,000 x 50,000 image: a decompression bomb).
MAX_SIDE = 4096
MIN_SIDE = 16
# Shown at most 40 px high in a header; three times that is sharp on any phone screen.
STORED_BOX = (720, 240)
FORMATS = ("PNG", "JPEG")


class InvalidLogo(
    InvalidInput, code="invalid_logo", message=N_("The logo must be a PNG or JPEG image.")
):
    """The uploaded logo is too large, not a PNG or JPEG, or of the wrong size."""


def prepare_logo(data: bytes) -> bytes:
    """The uploaded ``data`` as the PNG to store, or InvalidLogo saying what is wrong."""
    if len(data) > MAX_LOGO_BYTES:
        raise InvalidLogo(N_("The logo is larger than 512 KB."), fields={"logo": "too_large"})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # A PNG's chunks and checksums, all of them: a file cut short is refused even where
            # WeasyPrint, imported in the same process, told Pillow to load truncated images.
            with Image.open(io.BytesIO(data), formats=FORMATS) as probe:
                probe.verify()
            with Image.open(io.BytesIO(data), formats=FORMATS) as image:
                width, height = image.size
                if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
                    raise InvalidLogo(
                        N_("The logo must be between 16 and 4096 pixels wide and high."),
                        fields={"logo": "size"},
                    )
                image.load()
                upright = ImageOps.exif_transpose(image)
                pixels = upright.convert("RGBA")
    except InvalidLogo:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Warning) as exc:
        # Not a PNG or JPEG (an SVG, a GIF, a renamed file), or one that does not decode.
        raise InvalidLogo(fields={"logo": "format"}) from exc
    pixels.thumbnail(STORED_BOX)
    out = io.BytesIO()
    pixels.save(out, format="PNG", optimize=True)
    return out.getvalue()
