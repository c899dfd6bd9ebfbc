"""Images in chat messages: ``data:`` URLs decoded, ``http(s)`` URLs fetched through the
outbound-URL guard, both held to a size limit and to the image types every vision provider takes
(PNG, JPEG, GIF, WebP), recognised by their bytes, not by what the client says they are."""

from __future__ import annotations

import base64
import binascii
import re

import httpx

from chatplatform.api.exceptions import AppError
from chatplatform.api.outbound import check_outbound_url
from providers.adapters.base import Image

MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_IMAGES_PER_REQUEST = 16
FETCH_TIMEOUT_SECONDS = 10.0
_DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w-]+=[^;,]*)*)(?P<b64>;base64)?,(?P<data>.*)$",
                       re.DOTALL)
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF87a", "image/gif"),
               (b"GIF89a", "image/gif"))


def sniff(data: bytes) -> str | None:
    """The image type of ``data`` by its first bytes, or None."""
    for signature, media_type in _SIGNATURES:
        if data.startswith(signature):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _refuse(message: str, field: str) -> AppError:
    return AppError(message, status_code=422, details={field: [message]})


def _checked(data: bytes, field: str) -> Image:
    if len(data) > MAX_IMAGE_BYTES:
        raise _refuse(f"An image may have at most {MAX_IMAGE_BYTES // (1024 * 1024)} MB.", field)
    media_type = sniff(data)
    if media_type is None:
        raise _refuse("Not a PNG, JPEG, GIF or WebP image.", field)
    return Image(media_type=media_type, data=data)


def image_from_url(url: str, *, field: str = "image_url") -> Image:
    """The image a ``data:`` or ``http(s)`` URL holds (422 naming ``field`` when it is not one we
    take). Blocking for remote URLs: call it off the event loop."""
    match = _DATA_URL.match(url)
    if match is not None:
        if not match.group("b64"):
            raise _refuse("Image data URLs must be base64 (data:image/png;base64,...).", field)
        try:
            data = base64.b64decode(match.group("data"), validate=True)
        except (binascii.Error, ValueError):
            raise _refuse("The image data URL is not valid base64.", field) from None
        return _checked(data, field)
    check_outbound_url(url, field=field)
    try:
        with httpx.Client(timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=False) as client, \
                client.stream("GET", url, headers={"Accept": "image/*"}) as response:
            if response.status_code != 200:
                raise _refuse(f"Fetching the image answered HTTP {response.status_code}.", field)
            data = b""
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > MAX_IMAGE_BYTES:
                    raise _refuse(f"An image may have at most {MAX_IMAGE_BYTES // (1024 * 1024)} MB.", field)
    except httpx.HTTPError:
        raise _refuse("The image could not be fetched.", field) from None
    return _checked(data, field)


def resolved(images: tuple[Image, ...], *, field: str = "messages") -> tuple[Image, ...]:
    """``images`` with every remote one (``url`` set, no bytes yet) fetched (refusals name
    ``field``: the messages they came in). Blocking."""
    return tuple(image_from_url(i.url, field=field) if i.url and not i.data else i for i in images)
