"""The index of one modality in a folder: FAISS over vectors that SQLite keeps with their records, a keyword index
(FTS5) and a photo metadata index beside them, read by shards as one.

- `vector_store`: `VectorStore`, the writer and searcher (SQLite the source of truth, FAISS derived from it);
- `snapshot`: the FAISS file and when it is current;  `schema`: the SQLite layout, its triggers and migration;
- `reads`, `keyword_search`, `filtering`: reads of a folder (all shards) without loading FAISS, for the gateway,
  the jobs and the CLI;  `connections`: the pooled read-only connections they use;
- `types`: records, hits and errors;  `sql`: small SQLite helpers;
- what the stores share with their writers and readers: `ids` (document ids from pair ids), `tags` (record tags),
  `keywords` (free text to FTS5 queries), `photo_filter` (the metadata filters), `shards` and `workspace` (where
  each index lives).
It imports only `crossmodal.modality` of the core (and numpy, FAISS, SQLite), never the models, `serving/` or Jina.
"""
from .filtering import filter_ids
from .keyword_search import keyword_search
from .reads import (
    caption_vectors_of_pairs,
    pairs_with_captions,
    read_record,
    read_records,
    read_vectors,
    records_with_pair_id,
    sample_records,
    store_generations,
    store_summary,
    stored_ids,
    stored_settings,
    vector_sample,
)
from .schema import FTS_TABLE, METADATA_TABLE, PATHS_TABLE, SCHEMA_VERSION, check_schema_version
from .snapshot import SNAPSHOT_NAME
from .types import (
    CaptionVector,
    Hit,
    KeywordHit,
    ModelMismatchError,
    Record,
    StoredSettings,
    StoreError,
    StoreSummary,
    StoreVersionError,
)
from .vector_store import EXACT_FILTER_MAX, EXACT_FILTER_SHARE, INDEX_TYPES, VectorStore, faiss_threads_for

__all__ = [
    "EXACT_FILTER_MAX", "EXACT_FILTER_SHARE", "FTS_TABLE", "INDEX_TYPES", "METADATA_TABLE", "PATHS_TABLE",
    "SCHEMA_VERSION", "SNAPSHOT_NAME", "CaptionVector", "Hit", "KeywordHit", "ModelMismatchError", "Record",
    "StoreError", "StoreSummary", "StoreVersionError", "StoredSettings", "VectorStore", "caption_vectors_of_pairs",
    "check_schema_version", "faiss_threads_for", "filter_ids", "keyword_search", "pairs_with_captions",
    "read_record", "read_records", "read_vectors", "records_with_pair_id", "sample_records", "store_generations",
    "store_summary", "stored_ids", "stored_settings", "vector_sample",
]
