"""Turns what a client sent (a text, image bytes, base64, a data URI, an indexed photo's id) into validated queries.

Everything that needs no pixels is checked here, in the gateway (sizes, format, dimensions, a decompression bomb
from the header), so the executors only ever see a non-empty text or a photo of a usable size; the image encoder
decodes a photo once, and one whose pixel data is corrupt comes back refused with status 400. Bad input costs a 4xx
with a message and nothing else.
"""
from __future__ import annotations

import base64
import binascii
import mimetypes
import re
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from fastapi import HTTPException

from crossmodal.index import read_record, read_vectors, stored_settings
from crossmodal.index.ids import DOC_ID_PATTERN
from crossmodal.index.tags import MODEL_TAG, TARGET_TAG
from crossmodal.media.decoding import ImageDecodeError, ImageTooLargeError, check_image_bytes, image_bytes_from_base64
from crossmodal.media.text import invalid_unicode
from crossmodal.modality import IMAGE, MODALITIES, TEXT, other_modality
from serving.wire import CrossModalDoc

MAX_TEXT_CHARS = 1000
_IMAGES_PATH = re.compile(r"/images/([A-Za-z0-9_.:-]{1,200})/?$")
_DATA_URI_HEADER = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?((?:;[\w.+-]+=[\w.+-]+)*)(;base64)?$", re.IGNORECASE)


@dataclass
class Query:
    """One validated query: its modality, the modality of the results wanted, and its payload."""

    modality: str
    target: str
    text: str | None = None
    image_b64: str | None = None
    mime_type: str = "text/plain"
    uri: str | None = None  # echoed back to jinabox (the data URI or URL it sent)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # An indexed photo's stored vector and the model that made it: searched as it is, with no file read, decode or
    # encoder call (the encoders pass an embedded document on).
    embedding: np.ndarray | None = None
    model: str | None = None

    def to_doc(self) -> CrossModalDoc:
        if self.embedding is not None:
            return CrossModalDoc(id=self.id, modality=self.modality, embedding=self.embedding,
                                 tags={TARGET_TAG: self.target, MODEL_TAG: self.model or ""})
        return CrossModalDoc(id=self.id, modality=self.modality, text=self.text, image_b64=self.image_b64,
                             tags={TARGET_TAG: self.target})


def bad_request(message: str, status: int = 400) -> HTTPException:
    return HTTPException(status, message)


class QueryBuilder:
    """Builds queries under the server's limits; every refusal is an HTTPException with a readable message."""

    def __init__(self, image_index: Path, max_image_bytes: int, max_pixels: int) -> None:
        self.image_index = Path(image_index)
        self.max_image_bytes = int(max_image_bytes)
        self.max_pixels = int(max_pixels)

    def text(self, text: str, target: str | None = None, field_name: str = "text") -> Query:
        text = text.strip()
        if not text:
            raise bad_request(f"'{field_name}' is empty")
        reason = invalid_unicode(text)
        if reason:
            raise bad_request(f"'{field_name}' is {reason}")
        if len(text) > MAX_TEXT_CHARS:
            raise bad_request(f"'{field_name}' is longer than {MAX_TEXT_CHARS} characters")
        return Query(modality=TEXT, target=_target(TEXT, target), text=text)

    def image_bytes(self, data: bytes, target: str | None = None, field_name: str = "image",
                    uri: str | None = None) -> Query:
        if not data:
            raise bad_request(f"'{field_name}' is empty")
        if len(data) > self.max_image_bytes:
            raise self._too_large(field_name, len(data))
        try:  # the header only: the image encoder decodes the pixels once (corrupt ones: 400 from the flow)
            check_image_bytes(data, max_pixels=self.max_pixels, max_bytes=self.max_image_bytes)
        except ImageDecodeError as error:
            raise _unusable(field_name, error) from None
        return Query(modality=IMAGE, target=_target(IMAGE, target), image_b64=base64.b64encode(data).decode("ascii"),
                     mime_type=_sniff_mime(data), uri=uri)

    def image_base64(self, value: str, target: str | None = None, field_name: str = "image") -> Query:
        mime = _data_uri_mime(value)
        if mime is not None and not mime.startswith("image/"):
            raise bad_request(f"'{field_name}' is a {mime} data URI; only photos (image/*) can be searched", 415)
        try:
            # checks the size before decoding, so a huge string never doubles in memory
            data = image_bytes_from_base64(value, max_bytes=self.max_image_bytes)
        except ImageDecodeError as error:
            raise _unusable(field_name, error) from None
        return self.image_bytes(data, target, field_name)

    def image_id(self, image_id: str, target: str | None = None, field_name: str = "image_id",
                 uri: str | None = None) -> Query:
        """An indexed photo as a query: its stored vector (the photo file is neither read nor encoded again)."""
        known = isinstance(image_id, str) and DOC_ID_PATTERN.match(image_id)
        record = read_record(self.image_index, image_id) if known else None
        vector = read_vectors(self.image_index, [image_id]).get(image_id) if record is not None else None
        settings = stored_settings(self.image_index) if vector is not None else None
        if record is None or record.modality != IMAGE or vector is None or settings is None:
            raise bad_request(f"'{field_name}': no indexed photo with id {image_id!r}", 404)
        mime_type = mimetypes.guess_type(record.uri or "")[0] or "image/jpeg"
        return Query(modality=IMAGE, target=_target(IMAGE, target), mime_type=mime_type, uri=uri, embedding=vector,
                     model=settings.model_name)

    def _too_large(self, field_name: str, size: int) -> HTTPException:
        return bad_request(f"'{field_name}' is too large: {size:,} bytes, the limit is {self.max_image_bytes:,} bytes "
                           f"({self.max_image_bytes / 2**20:.0f} MiB)", 413)

    def indexed_photo(self, image_id: str) -> Path | None:
        """The file of an indexed photo that exists, looked up by id (never a path from the request)."""
        if not isinstance(image_id, str) or not DOC_ID_PATTERN.match(image_id):
            return None
        record = read_record(self.image_index, image_id)
        if record is None or record.modality != IMAGE or not record.uri or not Path(record.uri).is_file():
            return None
        return Path(record.uri)

    def jinabox_item(self, item: str, position: int) -> Query:
        """One string of jinabox's `data`: a data URI is a photo (or a text), a URL of /images/{id} that photo."""
        name = f"data[{position}]"
        if not isinstance(item, str):
            raise bad_request(f"'{name}' must be a string")
        value = item.strip()
        mime = _data_uri_mime(value)
        if mime is not None:
            if mime.startswith("text/"):
                return self.text(_data_uri_text(value, name), field_name=name)
            if not mime.startswith("image/"):
                raise bad_request(f"'{name}' is a {mime} data URI; only photos and texts can be searched", 415)
            query = self.image_base64(value, field_name=name)
            query.uri = value
            return query
        if re.match(r"^(https?|file):", value, re.IGNORECASE):
            found = _IMAGES_PATH.search(urllib.parse.urlsplit(value).path)
            if found is None:
                raise bad_request(f"'{name}' is a URL; URLs are not downloaded (send the photo as a data URI), "
                                  "except this server's own /images/{id} URLs")
            return self.image_id(found.group(1), field_name=name, uri=value)
        return self.text(value, field_name=name)


def _unusable(field_name: str, error: ImageDecodeError) -> HTTPException:
    """400 for what is not an image; 413 for an image over the byte or pixel limits."""
    return bad_request(f"'{field_name}' is not a usable image: {error}", 413 if isinstance(error, ImageTooLargeError)
                       else 400)


def _target(modality: str, target: str | None) -> str:
    if target is None:
        return other_modality(modality)
    if target not in MODALITIES:
        raise bad_request(f"'modality' must be one of {list(MODALITIES)}, got {target!r}", 422)
    return target


def _data_uri_mime(value: str) -> str | None:
    """The media type a data URI declares (RFC 2397's default, text/plain, when it names none); None for a non-URI."""
    if not isinstance(value, str) or value.lstrip()[:5].lower() != "data:":
        return None
    parsed = _DATA_URI_HEADER.match(value.lstrip().partition(",")[0])
    return ((parsed.group(1) if parsed else None) or "text/plain").lower()


def _data_uri_text(value: str, name: str) -> str:
    header, _, payload = value.partition(",")
    try:
        if header.lower().endswith(";base64"):
            raw = base64.b64decode(payload + "=" * (-len(payload) % 4), validate=False)
        else:
            raw = urllib.parse.unquote_to_bytes(payload)
        return raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise bad_request(f"'{name}' is a text data URI that does not decode as UTF-8: {error}") from None


_SIGNATURES = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"GIF8", "image/gif"),
               (b"BM", "image/bmp"), (b"II*\x00", "image/tiff"), (b"MM\x00*", "image/tiff"))


def _sniff_mime(data: bytes) -> str:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((mime for magic, mime in _SIGNATURES if data.startswith(magic)), "image/jpeg")


def mime_from_path(path: str | None) -> str:
    guessed = mimetypes.guess_type(path or "")[0]
    return guessed if guessed and guessed.startswith("image/") else "image/jpeg"
