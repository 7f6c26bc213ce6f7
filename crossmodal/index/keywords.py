"""Keyword queries: free text a user typed, turned into a safe SQLite FTS5 MATCH expression.

A user's text is never handed to FTS5 as query syntax. It is split into words the way the index's tokenizer
(``unicode61``) splits documents: runs of letters and digits, everything else (punctuation, quotes, ``*``, ``:``,
``-``, ``(``, emoji) separates words. English stop words, words that describe every photo ("photo", "image") and
image file extensions (every file name has one) are dropped, so "a photo of the beach" searches for "beach" alone.
Each remaining word becomes a quoted FTS5 string, and the strings are OR-ed: a document matching more of the words
ranks higher through bm25, and a word FTS5 would read as an operator (``AND``, ``NEAR``, ``col:x``) is plain text
inside its quotes. No prefix matching: a short last word ("a c") would otherwise match half the collection.
"""
from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

# A document or query holds at most this many distinct searched words; the rest of a long text is ignored, so one
# request costs a bounded number of FTS5 lookups (each word is looked up again to report which words matched).
MAX_TERMS = 32

# Letters and digits, as unicode61 sees token characters (Unicode categories L* and N*); Python's \w also has "_".
_WORD = re.compile(r"[^\W_]+")

ENGLISH_STOP_WORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being below between
both but by can could did do does doing down during each few for from further had has have having he her here
hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off
on once only or other our ours ourselves out over own same she should so some such than that the their theirs
them themselves then there these they this those through to too under until up very was we were what when where
which while who whom why will with would you your yours yourself yourselves s t d ll m re ve y o isn aren wasn
weren don doesn didn can cannot couldn won wouldn shouldn
""".split())
# Words that describe every document of a photo collection, so they match everything and rank nothing.
COLLECTION_STOP_WORDS = frozenset("""
photo photos photograph photographs picture pictures pic pics image images showing shows show
jpg jpeg png gif webp bmp tif tiff heic heif
""".split())
STOP_WORDS = ENGLISH_STOP_WORDS | COLLECTION_STOP_WORDS
# Words that cameras, phones and editors write into file names, whatever the photo shows: the counters' prefixes
# (IMG_1234, DSC_0042, PXL_20230612_..., MVIMG_...), and the words of copies and resized or edited versions. A
# query's "a small bird" must not find every `*_small.jpg`: these are never searched in file and folder names (a
# caption, or text in the photo, is still searched for them). A word holding a digit (counters, dates, times, `v2`)
# is searched there only when the query has no other word for names: "2024" or "IMG_1234" asks for a name.
NAME_STOP_WORDS = frozenset("""
img imag image dsc dscn dscf dcim pxl mvimg vid pano burst wp dji gopr gp sam pict pic p mg
small large medium big mini tiny thumb thumbnail thumbnails preview resized resize scaled web hd
copy copies edit edited edits final orig original new version ver crop cropped export exported output
""".split())
_DIGIT = re.compile(r"\d")

NAME = "name"  # the field of a photo's file and folder names (and camera)
CAPTION = "caption"  # the field of a caption's text
FIELDS = (NAME, CAPTION)


class KeywordQuery(NamedTuple):
    """An FTS5 MATCH expression and the words it searches for (lower-cased, as typed, in order)."""

    expression: str
    terms: tuple[str, ...]


def query_terms(text: str) -> tuple[str, ...]:
    """The words of ``text`` that a keyword search looks for: lower-cased, stop words dropped, each once."""
    words = _WORD.findall(unicodedata.normalize("NFC", text).lower())
    kept = dict.fromkeys(word for word in words if word not in STOP_WORDS)
    return tuple(kept)[:MAX_TERMS]


def name_terms(text: str) -> tuple[str, ...]:
    """The words of ``text`` that a search of file and folder names looks for: `query_terms` without
    NAME_STOP_WORDS, and without the words that hold a digit unless nothing else is left (see NAME_STOP_WORDS)."""
    named = [term for term in query_terms(text) if term not in NAME_STOP_WORDS]
    words = tuple(term for term in named if not _DIGIT.search(term))
    return words or tuple(named)


def term_expression(term: str) -> str:
    """One word as an FTS5 string: quoted, so FTS5 never reads it as syntax (a quote inside is doubled)."""
    return '"' + term.replace('"', '""') + '"'


def build_query(text: str, field: str = CAPTION) -> KeywordQuery | None:
    """The MATCH expression for a user's free text, searched in `field` (NAME: `name_terms`, else `query_terms`);
    None when nothing is left to search for (stop words only, punctuation, emoji, empty)."""
    if not isinstance(text, str):
        raise TypeError(f"keyword query must be a string, got {type(text).__name__}")
    if field not in FIELDS:
        raise ValueError(f"field must be one of {FIELDS}, got {field!r}")
    terms = name_terms(text) if field == NAME else query_terms(text)
    if not terms:
        return None
    return KeywordQuery(" OR ".join(map(term_expression, terms)), terms)
