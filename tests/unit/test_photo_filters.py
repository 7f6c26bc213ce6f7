"""Filters, sort and pages (issue 11, item 4) against a brute-force reference over the same vectors and metadata.

A real store of 3,000 random photos (and 40 without metadata, as demo or Flickr photos are) with generated metadata:
every combination of the filters gives what numpy finds over the photos that `PhotoFilter.matches` allows, flat and
HNSW (through the graph with the selector, and exactly over the allowed vectors); pages of the gateway's answer
concatenate to the unpaged answer, with `total` and `next_offset` right; `sort: taken` orders the relevant matches
newest first; keyword hits outside the filter are dropped; the metadata index follows upserts and deletes and is
built for a store written before it existed.
"""
from __future__ import annotations

import itertools
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import crossmodal.index.vector_store as store_module
from crossmodal.index import Record, VectorStore
from crossmodal.index.photo_filter import FilterError, PhotoFilter, parse_photo_filter
from crossmodal.index.shards import DB_NAME
from crossmodal.index.tags import record_from_document, wire_tags_of_record
from crossmodal.modality import IMAGE, TEXT
from crossmodal.search.ranking import keyword_rankings
from serving.http.answers import AnswerBuilder, FlowResult, newest_first
from serving.http.plans import SearchPlan
from serving.http.queries import Query
from serving.wire import MatchDoc

DIM = 16
PHOTOS = 3000
BARE = 40  # photos without metadata
FOLDERS = ["", "2023", "2023/june", "2024", "2024/summer", "2024/summer/beach", "2024-old", "trips/2024"]
CAMERAS = ["Canon EOS R5", "NIKON D750", "Apple iPhone 12", "FUJIFILM X-T4", None]
FILTER_VALUES = {
    "folder": [None, "2024", "2023/june", "/2024/summer/"],
    "taken_after": [None, "2023-06-15", "2024-02-01T12:30"],
    "taken_before": [None, "2024-03-01", "2023-12-31T23:00:15"],
    "has_location": [None, True, False],
    "camera": [None, "canon", "d7"],
}


def _metadata(rng: np.random.Generator, n: int) -> dict:
    folder = FOLDERS[rng.integers(len(FOLDERS))]
    name = f"IMG_{n:05d}.jpg"
    paths = [f"{folder}/{name}" if folder else name]
    if rng.random() < 0.1:  # an exact copy elsewhere
        other = FOLDERS[rng.integers(len(FOLDERS))]
        paths.append(f"{other}/copy_{name}" if other else f"copy_{name}")
    paths.sort()
    day = int(rng.integers(0, 900))
    moment = np.datetime64("2022-09-01T00:00:00") + np.timedelta64(day * 86400 + int(rng.integers(86400)), "s")
    taken = str(moment)
    source = "exif"
    if rng.random() < 0.3:
        taken += ["+02:00", "-05:00", "+00:00"][int(rng.integers(3))]
        source = "mtime" if taken.endswith("+00:00") else "exif"
    located = rng.random() < 0.4
    return {"path": paths[0], "folder": paths[0].rpartition("/")[0], "size_bytes": int(rng.integers(1000, 10**7)),
            "width": 4000, "height": 3000, "taken": taken, "taken_source": source,
            "camera": CAMERAS[int(rng.integers(len(CAMERAS)))], "lat": 48.1 if located else None,
            "lon": 11.5 if located else None, "paths": paths}


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """Vectors, metadata by id, and one flat and one HNSW store holding them (records built as the indexer does,
    from the wire tags)."""
    rng = np.random.default_rng(11)
    vectors = rng.normal(size=(PHOTOS + BARE, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"img-{n:016x}" for n in range(PHOTOS + BARE)]
    metadata: dict[str, dict | None] = {}
    records = []
    for n, doc_id in enumerate(ids):
        meta = _metadata(rng, n) if n < PHOTOS else None
        metadata[doc_id] = meta
        tags = {"pair_id": f"folder/lib/{meta['path'] if meta else f'bare_{n}.jpg'}", "dataset": "folder"}
        if meta is not None:
            tags["metadata"] = json.dumps(meta)
        records.append(record_from_document(doc_id, IMAGE, None, f"/lib/{n}.jpg", tags))
    root = tmp_path_factory.mktemp("filters")
    stores = {}
    for kind in ("flat", "hnsw"):
        stores[kind] = VectorStore(root / kind / "image_index", IMAGE, "m", DIM, index_type=kind)
        for start in range(0, len(records), 1000):
            stores[kind].add(records[start:start + 1000], vectors[start:start + 1000])
    yield {"ids": np.array(ids), "vectors": vectors, "metadata": metadata, "stores": stores, "root": root}
    for store in stores.values():
        store.close()


def _combinations():
    names = list(FILTER_VALUES)
    for values in itertools.product(*FILTER_VALUES.values()):
        fields = dict(zip(names, values))
        if fields["taken_after"] and fields["taken_before"] and fields["taken_after"] > fields["taken_before"]:
            continue
        yield parse_photo_filter(fields)


TIE = 1e-5  # scores closer than this may come in either order: FAISS's kernels and numpy's round differently


def _allowed_scores(collection, query: np.ndarray, photo_filter: PhotoFilter | None) -> dict[str, float]:
    """The float64 score of every photo the filter allows."""
    allowed = np.array([photo_filter is None or photo_filter.matches(collection["metadata"][doc_id])
                        for doc_id in collection["ids"]])
    scores = collection["vectors"][allowed].astype(np.float64) @ np.asarray(query, dtype=np.float64)
    return dict(zip(collection["ids"][allowed].tolist(), scores.tolist()))


def _assert_top(found: list[str], collection, query: np.ndarray, photo_filter: PhotoFilter | None, limit: int,
                ordered: bool = True) -> None:
    """`found` is the brute-force answer (the best `limit` allowed photos, best first), exactly but for the order of
    near-ties (TIE) among them and at the cut: comparing ids with numpy's argsort would test one CPU's rounding."""
    scores = _allowed_scores(collection, query, photo_filter)
    assert len(found) == len(set(found)) == min(limit, len(scores)) and set(found) <= scores.keys()
    if ordered:
        assert all(scores[a] >= scores[b] - TIE for a, b in zip(found, found[1:])), "not best first"
    if found:
        worst_kept = min(scores[doc_id] for doc_id in found)
        left_out = [doc_id for doc_id in scores if doc_id not in set(found) and scores[doc_id] > worst_kept + TIE]
        assert not left_out, f"better photos left out: {left_out[:5]}"


@pytest.mark.slow
def test_every_filter_combination_equals_brute_force_flat_and_hnsw(collection):
    queries = np.random.default_rng(5).normal(size=(3, DIM)).astype(np.float32)
    combinations = list(_combinations())
    assert len(combinations) > 200
    sizes = set()
    for photo_filter in combinations:
        allowed_count = sum(photo_filter is None or photo_filter.matches(meta)
                            for meta in collection["metadata"].values())
        sizes.add(allowed_count)
        for kind in ("flat", "hnsw"):  # HNSW: these allowed sets are small, searched exactly
            found, candidates = collection["stores"][kind].search_counted(queries, 20, photo_filter)
            assert candidates == allowed_count, (kind, photo_filter)
            assert len(found) == len(queries)
            for query, hits in zip(queries, found):
                _assert_top([hit.record.id for hit in hits], collection, query, photo_filter, 20)
    assert 0 in sizes and len(sizes) > 50  # empty, tiny and large allowed sets were all checked
    assert PHOTOS + BARE in sizes  # no filter


def test_hnsw_graph_search_with_the_selector_never_returns_fewer_than_limit(collection, monkeypatch):
    monkeypatch.setattr(store_module, "EXACT_FILTER_MAX", 0)
    monkeypatch.setattr(store_module, "EXACT_FILTER_SHARE", 10**9)
    store = collection["stores"]["hnsw"]
    queries = np.random.default_rng(6).normal(size=(4, DIM)).astype(np.float32)
    for photo_filter in list(_combinations())[::7]:
        allowed = {doc_id for doc_id, meta in collection["metadata"].items()
                   if photo_filter is None or photo_filter.matches(meta)}
        for limit in (1, 10, 100):
            found, _ = store.search_counted(queries, limit, photo_filter)
            for hits in found:
                assert len(hits) == min(limit, len(allowed))
                assert {hit.record.id for hit in hits} <= allowed
                scores = [hit.score for hit in hits]
                assert scores == sorted(scores, reverse=True)


def test_filter_values_are_normalised_and_refused_with_the_field_named():
    parsed = parse_photo_filter({"folder": "/2024/summer/", "taken_after": "2024-07-01", "taken_before": "2024-07-31",
                                 "camera": " Canon ", "has_location": False})
    assert parsed == PhotoFilter("2024/summer", "2024-07-01T00:00:00", "2024-07-31T23:59:59", False, "Canon")
    assert parse_photo_filter({"taken_before": "2024-07-01T10:05"}).taken_before == "2024-07-01T10:05:59"
    assert parse_photo_filter({"folder": "/", "camera": "  "}) is None
    assert PhotoFilter.from_json(parsed.to_json()) == parsed
    for fields, field in (({"taken_after": "yesterday"}, "taken_after"),
                          ({"taken_before": "2024-02-30"}, "taken_before"),
                          ({"taken_after": "2024-07-01T10:00Z"}, "taken_after"),
                          ({"taken_after": "2024-08-01", "taken_before": "2024-07-01"}, "taken_after"),
                          ({"folder": "a/../b"}, "folder"), ({"has_location": "yes"}, "has_location"),
                          ({"camera": 5}, "camera")):
        with pytest.raises(FilterError) as error:
            parse_photo_filter(fields)
        assert error.value.field == field


def test_folder_is_a_prefix_on_folder_boundaries_and_a_date_its_whole_day():
    meta = {"path": "2024-old/a.jpg", "paths": ["2024-old/a.jpg", "2024/june/a.jpg"],
            "taken": "2024-07-14T23:30:00+02:00"}
    assert parse_photo_filter({"folder": "2024"}).matches(meta)  # through its copy in 2024/june
    assert not parse_photo_filter({"folder": "2024"}).matches({**meta, "paths": ["2024-old/a.jpg"]})
    assert parse_photo_filter({"taken_after": "2024-07-14", "taken_before": "2024-07-14"}).matches(meta)
    assert not parse_photo_filter({"taken_after": "2024-07-15"}).matches(meta)
    assert not parse_photo_filter({"camera": "x"}).matches(None)


def _answer_builder(collection, tmp_path: Path) -> tuple[AnswerBuilder, dict]:
    folders = {IMAGE: collection["stores"]["flat"]._folder, TEXT: tmp_path / "text_index"}
    return AnswerBuilder(folders, tmp_path), folders


def _flow_result(collection, query: np.ndarray, plan: SearchPlan, depth: int) -> FlowResult:
    """What the indexer sends back for `plan` (pods/indexer.py does the same with the same store calls)."""
    found, candidates = collection["stores"]["flat"].search_counted(query, depth, plan.photo_filter)
    matches = [MatchDoc(id=hit.record.id, modality=IMAGE, score=hit.score, uri=hit.record.uri,
                        tags=wire_tags_of_record(hit.record)) for hit in found[0]]
    return FlowResult(matches, query, "m", {"candidates:0": candidates})


def _plan(limit: int, offset: int, photo_filter: PhotoFilter | None, sort: str = "relevance") -> SearchPlan:
    query = Query(modality=TEXT, target=IMAGE, text="anything")
    return SearchPlan(parts=[(query, 1.0)], query_modality=TEXT, target=IMAGE, limit=limit, mode="semantic",
                      photo_filter=photo_filter, sort=sort, offset=offset)


@pytest.mark.parametrize("fields", [{}, {"folder": "2024", "has_location": True}, {"camera": "nikon"},
                                    {"folder": "2023/june", "taken_after": "2023-06-01"}])
def test_pages_concatenate_to_the_unpaged_answer_with_total_and_next_offset(collection, tmp_path, fields):
    from serving.http.answers import search_depth

    builder, _ = _answer_builder(collection, tmp_path)
    photo_filter = parse_photo_filter(fields)
    query = np.random.default_rng(7).normal(size=DIM).astype(np.float32)
    allowed = sum(photo_filter is None or photo_filter.matches(m) for m in collection["metadata"].values())
    whole_plan = _plan(min(allowed, 100) or 1, 0, photo_filter)
    whole = builder.answer(whole_plan, _flow_result(collection, query, whole_plan, search_depth(whole_plan)))
    _assert_top([m.id for m in whole.matches], collection, query, photo_filter, 100)
    assert whole.total == min(allowed, 1000)
    pages, offset = [], 0
    while offset is not None and offset < 100:
        plan = _plan(7, offset, photo_filter)
        answer = builder.answer(plan, _flow_result(collection, query, plan, search_depth(plan)))
        assert answer.total == min(allowed, 1000) and answer.offset == offset
        expected_next = offset + 7 if offset + 7 < answer.total else None
        assert answer.next_offset == expected_next
        pages += answer.matches
        offset = answer.next_offset
    assert [m.id for m in pages[:100]] == [m.id for m in whole.matches]
    for match in pages:
        stored = collection["metadata"][match.id]
        assert (match.metadata is None) == (stored is None)  # photos without metadata: null
        assert match.metadata is None or match.metadata.paths == stored["paths"]
        assert photo_filter is None or photo_filter.matches(stored)
        assert "metadata" not in match.tags


def test_sort_taken_orders_the_relevant_matches_newest_first_and_pages_them(collection, tmp_path):
    from serving.http.answers import TAKEN_TOP, search_depth

    builder, _ = _answer_builder(collection, tmp_path)  # no calibration: the first TAKEN_TOP are the relevant ones
    photo_filter = parse_photo_filter({"folder": "2024"})
    query = np.random.default_rng(8).normal(size=DIM).astype(np.float32)
    taken = lambda doc_id: collection["metadata"][doc_id]["taken"][:19]  # noqa: E731
    pages, offset = [], 0
    while offset is not None:
        plan = _plan(30, offset, photo_filter, sort="taken")
        assert search_depth(plan) == 1000
        answer = builder.answer(plan, _flow_result(collection, query, plan, search_depth(plan)))
        assert answer.total == TAKEN_TOP
        pages += [match.id for match in answer.matches]
        offset = answer.next_offset
    _assert_top(pages, collection, query, photo_filter, TAKEN_TOP, ordered=False)  # the relevant ones ...
    scores = _allowed_scores(collection, query, photo_filter)
    by_relevance = sorted(pages, key=lambda doc_id: -scores[doc_id])
    assert pages == sorted(by_relevance, key=taken, reverse=True)  # ... newest first (equal times: best first)
    assert newest_first(["a", "b", "c"], {"a": None, "b": {"taken": "2020-01-01T00:00:00"},
                                          "c": {"taken": "2021-01-01"}}) == ["c", "b", "a"]


def test_keyword_hits_outside_the_filter_are_dropped(collection):
    folders = {IMAGE: collection["stores"]["flat"]._folder, TEXT: collection["root"] / "no-text-index"}
    unfiltered = keyword_rankings(folders, IMAGE, "beach", depth=1000)
    found = {doc_id for ranking in unfiltered.rankings for doc_id in ranking}
    assert found
    photo_filter = parse_photo_filter({"camera": "canon", "has_location": True})
    filtered = keyword_rankings(folders, IMAGE, "beach", depth=1000, photo_filter=photo_filter)
    kept = {doc_id for ranking in filtered.rankings for doc_id in ranking}
    assert kept == {doc_id for doc_id in found if photo_filter.matches(collection["metadata"][doc_id])}
    assert kept and kept < found


def test_the_metadata_index_follows_upserts_and_deletes_and_is_built_for_an_older_store(tmp_path):
    folder = tmp_path / "image_index"
    meta = {"path": "a/x.jpg", "paths": ["a/x.jpg", "b/x.jpg"], "taken": "2024-01-01T10:00:00", "camera": "Canon",
            "lat": 1.0, "lon": 2.0}
    vector = np.ones((1, 4), dtype=np.float32)
    in_a, in_b = parse_photo_filter({"folder": "a"}), parse_photo_filter({"folder": "b"})
    with VectorStore(folder, IMAGE, "m", 4) as store:
        store.add([Record("img-1", IMAGE, pair_id="p1", tags={"metadata": meta})], vector)
        store.add([Record("txt-1", IMAGE, pair_id="p1")], vector)  # same pair, no metadata
        assert store.search_counted(vector, 5, in_b)[1] == 1
        store.add([Record("img-1", IMAGE, pair_id="p1", tags={"metadata": {**meta, "paths": ["a/x.jpg"]}})], vector)
        assert store.search_counted(vector, 5, in_b)[1] == 0 and store.search_counted(vector, 5, in_a)[1] == 1
        assert store.delete([], ["p1"]) == 2 and store.count() == 0
        store.add([Record("img-2", IMAGE, tags={"metadata": meta})], vector)
    with sqlite3.connect(folder / DB_NAME) as conn:  # as a store written before the metadata index existed
        for name in ("photo_metadata_insert", "photo_metadata_delete", "photo_metadata_update"):
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("DROP TABLE photo_metadata")
        conn.execute("DROP TABLE photo_paths")
    with VectorStore(folder, IMAGE, "m", 4, read_only=True) as store:
        assert store.search_counted(vector, 5, in_a) == ([[]], 0)  # not migrated: no photo passes a filter
    with VectorStore(folder, IMAGE, "m", 4) as store:
        hits, count = store.search_counted(vector, 5, in_b)
        assert count == 1 and hits[0][0].record.metadata == meta
        assert store.search_counted(vector, 5, parse_photo_filter({"camera": "CANON", "has_location": True}))[1] == 1
