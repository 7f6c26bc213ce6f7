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


class KeywordQuery(NamedTuple):
    """An FTS5 MATCH expression and the words it searches for (lower-cased, as typed, in order)."""

    expression: str
    terms: tuple[str, ...]


def query_terms(text: str) -> tuple[str, ...]:
    """The words of ``text`` that a keyword search looks for: lower-cased, stop words dropped, each once."""
    words = _WORD.findall(unicodedata.normalize("NFC", text).lower())
    kept = dict.fromkeys(word for word in words if word not in STOP_WORDS)
    return tuple(kept)[:MAX_TERMS]


def term_expression(term: str) -> str:
    """One word as an FTS5 string: quoted, so FTS5 never reads it as syntax (a quote inside is doubled)."""
    return '"' + term.replace('"', '""') + '"'


def build_query(text: str) -> KeywordQuery | None:
    """The MATCH expression for a user's free text; None when nothing is left to search for (stop words only,
    punctuation, emoji, empty)."""
    if not isinstance(text, str):
        raise TypeError(f"keyword query must be a string, got {type(text).__name__}")
    terms = query_terms(text)
    if not terms:
        return None
    return KeywordQuery(" OR ".join(map(term_expression, terms)), terms)
