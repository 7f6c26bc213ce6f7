"""Metadata filters of a photo search (issue 11): which photos a search may return, decided inside the index.

A `PhotoFilter` is parsed from what a client sent (`parse_photo_filter`, every refusal a `FilterError` naming the
field), travels to the indexers as JSON in the query document's `filter` tag (`to_json` / `from_json`), and is
applied by the store in SQLite (`crossmodal.index`: the allowed record numbers, then a FAISS id selector).
`matches` is the same rule in Python, over one photo's `metadata` object: the reference the tests compare against.

The rules:
- `folder`: a path prefix on folder boundaries, recursive: "2024" holds "2024/a.jpg" and "2024/june/b.jpg", not
  "2024-old/c.jpg". Leading and trailing slashes are ignored; "" (or "/") is the whole library (no filter). A photo
  with several paths (exact copies) passes when any of them is inside.
- `taken_after` / `taken_before`: inclusive bounds, ISO dates or local times ("2024-07-14", "2024-07-14T16:20",
  "2024-07-14T16:20:05"; a space instead of the T is accepted). A bound covers its whole unit: a date its whole day,
  a time to the minute its whole minute. Photos are compared by the clock time they were taken at, as `taken` writes
  it without its zone: "2023-07-14T23:30:00+02:00" is July 14th, as the person who took it saw the clock (EXIF times
  without an offset cannot be placed in any zone; mtime-derived times are UTC clock times). A bound with a zone
  ("Z", "+02:00") is refused rather than silently converted.
- `has_location`: true keeps photos with a latitude and a longitude, false those without.
- `camera`: case-insensitive substring of the `camera` text ("canon" finds "Canon EOS R5"); case is folded for
  ASCII letters, as SQLite's lower() does in the store (EXIF camera names are ASCII).
- `place`: the photo's place (`crossmodal.library.places`) is named by the text: its words, in order, inside the
  city, the region or the country name, case- and accent-insensitively, as the store's FTS5 index of places
  (unicode61, diacritics removed) matches them: "Lisbon" finds city or region Lisbon, "portugal" the country,
  "sao paulo" "São Paulo". Commas separate names that must all match: "Paris, France". Not a substring: "Lis" is
  not "Lisbon". A place needs a letter or digit; "" is refused (an empty box is no field, not an empty place).
Photos without metadata (the demo set, Flickr) pass no filter; an empty filter (no field given) keeps everything.
"""
from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

FILTER_FIELDS = ("folder", "taken_after", "taken_before", "has_location", "camera", "place")
PLACE_NAME_KEYS = ("city", "region", "country")
MAX_CAMERA_CHARS = 200
MAX_PLACE_CHARS = 200
_WORD = re.compile(r"[^\W_]+")  # a token as FTS5's unicode61 sees one: a run of letters and digits
MAX_FOLDER_CHARS = 1000
_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?)?$")
_ZONE = re.compile(r"(Z|[+-]\d{2}:?\d{2})$", re.IGNORECASE)
TAKEN_CHARS = 19  # "YYYY-MM-DDTHH:MM:SS": what the store indexes of `taken`


class FilterError(ValueError):
    """A filter value that cannot be used; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"'{field}': {message}")
        self.field = field


@dataclass(frozen=True)
class PhotoFilter:
    """Normalised filter values: `folder` without slashes at its ends, the taken bounds as inclusive
    "YYYY-MM-DDTHH:MM:SS" clock times, `camera` as given (matched case-insensitively)."""

    folder: str | None = None
    taken_after: str | None = None
    taken_before: str | None = None
    has_location: bool | None = None
    camera: str | None = None
    place: str | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in FILTER_FIELDS)

    def to_json(self) -> str:
        return json.dumps({key: value for key, value in asdict(self).items() if value is not None}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> PhotoFilter | None:
        """The filter a query document carries; None for none (or an empty one). Raises ValueError on bad JSON."""
        if not text:
            return None
        data = json.loads(text)
        if not isinstance(data, dict) or not set(data) <= set(FILTER_FIELDS):
            raise ValueError(f"a photo filter is a JSON object with keys among {FILTER_FIELDS}, got {text[:200]!r}")
        photo_filter = cls(**data)
        return None if photo_filter.is_empty() else photo_filter

    def folder_range(self) -> tuple[str, str] | None:
        """Paths inside `folder` are those in [low, high): "2024/" <= path < "20240" ('0' follows '/')."""
        if self.folder is None:
            return None
        return f"{self.folder}/", f"{self.folder}0"

    def camera_matches(self, camera: str | None) -> bool:
        return self.camera is None or (camera is not None and ascii_lower(self.camera) in ascii_lower(camera))

    def matches(self, metadata: dict[str, Any] | None) -> bool:
        """The rule in Python, over one photo's `metadata` object (None: a photo without metadata)."""
        if self.is_empty():
            return True
        if not isinstance(metadata, dict):
            return False
        if self.folder is not None:
            paths = metadata.get("paths") or [metadata.get("path")]
            low, high = f"{self.folder}/", f"{self.folder}0"
            if not any(isinstance(path, str) and low <= path < high for path in paths):
                return False
        taken = metadata.get("taken")
        clock = taken[:TAKEN_CHARS] if isinstance(taken, str) else None
        if self.taken_after is not None and (clock is None or clock < self.taken_after):
            return False
        if self.taken_before is not None and (clock is None or clock > self.taken_before):
            return False
        if self.has_location is not None:
            located = _is_number(metadata.get("lat")) and _is_number(metadata.get("lon"))
            if located != self.has_location:
                return False
        if not self.camera_matches(metadata.get("camera")):
            return False
        return self.place is None or _place_matches(self.place, metadata.get("place"))

    def place_expression(self) -> str | None:
        """The FTS5 MATCH expression of `place` over the store's place index: one quoted phrase per comma-separated
        name, AND-ed (quoted, so no word is ever read as FTS5 syntax)."""
        if self.place is None:
            return None
        phrases = ['"' + " ".join(words) + '"' for words in place_names(self.place)]
        return " AND ".join(phrases)


def parse_photo_filter(values: dict[str, Any]) -> PhotoFilter | None:
    """The filter of a request's fields (missing or None: not filtered); None when no field is given."""
    folder = values.get("folder")
    if folder is not None:
        if not isinstance(folder, str):
            raise FilterError("folder", "must be a string (a path prefix such as \"2024/summer\")")
        if len(folder) > MAX_FOLDER_CHARS:
            raise FilterError("folder", f"is longer than {MAX_FOLDER_CHARS} characters")
        folder = folder.strip().strip("/")
        if folder and ("\\" in folder or any(part in ("", ".", "..") for part in folder.split("/"))):
            raise FilterError("folder", "must be a relative path with '/' between folders, without '.', '..' or "
                                        "empty parts")
        folder = folder or None
    after = _bound(values.get("taken_after"), "taken_after", end=False)
    before = _bound(values.get("taken_before"), "taken_before", end=True)
    if after is not None and before is not None and after > before:
        raise FilterError("taken_after", f"is after 'taken_before' ({values.get('taken_after')!r} > "
                                         f"{values.get('taken_before')!r}): nothing can match")
    has_location = values.get("has_location")
    if has_location is not None and not isinstance(has_location, bool):
        raise FilterError("has_location", "must be true or false")
    camera = values.get("camera")
    if camera is not None:
        if not isinstance(camera, str):
            raise FilterError("camera", "must be a string")
        camera = camera.strip()
        if len(camera) > MAX_CAMERA_CHARS:
            raise FilterError("camera", f"is longer than {MAX_CAMERA_CHARS} characters")
        camera = camera or None
    photo_filter = PhotoFilter(folder, after, before, has_location, camera, _place(values.get("place")))
    return None if photo_filter.is_empty() else photo_filter


def _place(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise FilterError("place", 'must be a string: a city, region or country such as "Lisbon" or "Portugal"')
    if len(value) > MAX_PLACE_CHARS:
        raise FilterError("place", f"is longer than {MAX_PLACE_CHARS} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise FilterError("place", f"is not valid Unicode text (a lone surrogate at position {error.start})") from None
    text = " ".join(value.split())
    if not text:
        raise FilterError("place", 'is empty: give a city, region or country such as "Lisbon", or leave it out')
    if not place_names(text):
        raise FilterError("place", f"{value!r} has no letter or digit: give a city, region or country name")
    return text


def place_names(text: str) -> list[tuple[str, ...]]:
    """The names a place filter asks for (comma-separated), each as its folded words; names without words dropped."""
    return [words for words in (fold_words(part) for part in text.split(",")) if words]


def fold_words(text: str) -> tuple[str, ...]:
    """The words of `text` lower-cased and without diacritics ("Kyōto" -> ("kyoto",)), as unicode61 tokenizes with
    remove_diacritics 2: the reference the store's place index is compared against."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(char for char in decomposed if not unicodedata.combining(char))
    return tuple(word.lower() for word in _WORD.findall(stripped))


def _place_matches(place_filter: str, place: Any) -> bool:
    if not isinstance(place, dict):
        return False
    names = [fold_words(name) for name in (place.get(key) for key in PLACE_NAME_KEYS) if isinstance(name, str)]
    return all(any(_contains(name, words) for name in names) for words in place_names(place_filter))


def _contains(name: tuple[str, ...], words: tuple[str, ...]) -> bool:
    return any(name[start:start + len(words)] == words for start in range(len(name) - len(words) + 1))


def _bound(value: Any, field: str, end: bool) -> str | None:
    """An inclusive bound as a "YYYY-MM-DDTHH:MM:SS" clock time: the first (`end` False) or last second it covers."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise FilterError(field, "must be an ISO date or time string such as \"2024-07-14\" or \"2024-07-14T16:20\"")
    text = value.strip()
    if len(text) > 10 and _ZONE.search(text):
        raise FilterError(field, f"{value!r} has a time zone; give the local clock time without one (photos are "
                                 "compared by the clock time they were taken at)")
    match = _TIME.match(text)
    if match is None:
        raise FilterError(field, f"{value!r} is not an ISO date or time (\"2024-07-14\", \"2024-07-14T16:20\", "
                                 "\"2024-07-14T16:20:05\")")
    date, hour, minute, second = match.groups()
    if hour is None:
        hour, minute, second = ("23", "59", "59") if end else ("00", "00", "00")
    elif second is None:
        second = "59" if end else "00"
    clock = f"{date}T{hour}:{minute}:{second}"
    try:
        datetime.fromisoformat(clock)
    except ValueError as error:
        raise FilterError(field, f"{value!r} is not a valid date or time: {error}") from None
    return clock


def ascii_lower(text: str) -> str:
    """Lower case for ASCII letters only, as SQLite's lower() (which the store's camera filter runs in): EXIF writes
    Make and Model as ASCII, so this is case-insensitive for every camera name a file can carry."""
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
