"""Keyword search over a store folder's FTS5 index (all its shards), with which query words each hit matched.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from crossmodal.index.keywords import CAPTION, build_query, term_expression

from .connections import each_shard
from .schema import FTS_TABLE
from .sql import check_limit, chunks, marks
from .types import KeywordHit


def keyword_search(folder: str | Path, text: str, limit: int, field: str = CAPTION) -> list[KeywordHit]:
    """The best ``limit`` documents of ``folder`` (all its shards) for the words of ``text``, best first.

    ``text`` is free text (crossmodal.index.keywords: never FTS5 syntax; stop words dropped, the other words OR-ed, so a
    document matching more of them ranks higher). Empty when nothing is left to search for, and for a store that
    has no keyword index yet (written before it existed, not re-opened for writing since). bm25 is computed within
    each shard, so scores of different shards are close to, not exactly, comparable. ``field`` says what the
    folder's documents are (crossmodal.index.keywords.NAME for a photo index, whose text is file and folder names:
    camera words and numbers are not searched there; CAPTION for a caption index).
    """
    check_limit(limit)
    query = build_query(text, field)
    if query is None:
        return []
    hits: list[KeywordHit] = []
    for conn in each_shard(folder, FTS_TABLE):
        conn.execute("BEGIN")  # the ranking and the matched terms see the same state
        rows = conn.execute(
            f"SELECT r.num, r.id, r.pair_id, -m.rank FROM (SELECT rowid, rank FROM {FTS_TABLE} "
            f"WHERE {FTS_TABLE} MATCH ? ORDER BY rank LIMIT ?) AS m JOIN records AS r ON r.num = m.rowid",
            (query.expression, int(limit))).fetchall()
        matched = _matched_terms(conn, query.terms, [row[0] for row in rows])
        hits += [KeywordHit(id_, pair_id, float(score), matched.get(num, ())) for num, id_, pair_id, score in rows]
    hits.sort(key=lambda hit: (-hit.score, hit.id))
    return hits[:limit]



def _matched_terms(conn: sqlite3.Connection, terms: tuple[str, ...], nums: list[int]) -> dict[int, tuple[str, ...]]:
    """Which of ``terms`` each of the rows ``nums`` matches: one FTS5 lookup per term and chunk of rows."""
    if len(terms) == 1:
        return dict.fromkeys(nums, terms)
    matched: dict[int, list[str]] = {}
    for term in terms:
        for chunk in chunks(nums):
            sql = f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH ? AND rowid IN ({marks(chunk)})"
            for (num,) in conn.execute(sql, (term_expression(term), *chunk)):
                matched.setdefault(num, []).append(term)
    return {num: tuple(found) for num, found in matched.items()}
