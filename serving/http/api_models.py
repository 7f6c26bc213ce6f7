"""Request and response models of the gateway's HTTP API: what /openapi.json documents and the gateway validates."""
from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

Modality = Literal["image", "text"]

_COFFEE_MATCH: dict[str, Any] = {"id": "img-1f2e3d4c5b6a7980", "modality": "image", "score": 0.412, "relevance": 0.93,
                 "text": None, "image_url": "/images/img-1f2e3d4c5b6a7980",
                 "tags": {"pair_id": "demo/coffee.png", "dataset": "demo", "split": "all"},
                 "why": {"caption": "A cup of black coffee on a saucer.", "keywords": ["coffee"]}}
_CAT_CAPTION: dict[str, Any] = {"id": "txt-0a1b2c3d4e5f6789-0", "modality": "text", "score": 0.537, "relevance": 0.88,
                "text": "A close-up of a tabby cat's face with big green eyes.",
                "image_url": "/images/img-0a1b2c3d4e5f6789",
                "tags": {"pair_id": "demo/chelsea_cat.png", "dataset": "demo", "split": "all",
                         "image_id": "img-0a1b2c3d4e5f6789"}}


class ErrorDetail(BaseModel):
    status: int = Field(description="the HTTP status code, repeated")
    message: str = Field(description="what is wrong, in words a user can act on")


class ErrorResponse(BaseModel):
    """The one shape of every error answer of this server."""

    model_config = ConfigDict(json_schema_extra={
        "examples": [{"error": {"status": 400, "message": "'image' is not a usable image: not an image"}}]})
    error: ErrorDetail


SearchMode = Literal["semantic", "keyword", "hybrid"]
SortOrder = Literal["relevance", "taken"]
MAX_DEPTH = 1000  # the search depth: offset + limit at most this; `total` counts matches within it
_FILTER_DOCS = {
    "folder": "photos under this folder of the library (a path prefix on folder boundaries, subfolders included: "
              "\"2024\" holds \"2024/june/a.jpg\", not \"2024-old/b.jpg\")",
    "taken_after": "photos taken at or after this ISO date or local time (\"2024-07-01\", \"2024-07-01T18:00\"; a "
                   "date means from the start of its day; compared with the photo's own clock time, no zone)",
    "taken_before": "photos taken at or before this ISO date or local time (inclusive: a date means to the end of "
                    "its day)",
    "has_location": "true: photos with GPS coordinates; false: photos without",
    "camera": "photos whose camera (\"Make Model\") contains this text, case-insensitively",
    "place": "photos taken at this place: its words, in order, inside the city, region or country name of the "
             "photo's GPS place, case- and accent-insensitively (\"Lisbon\", \"portugal\", \"sao paulo\"); commas "
             "separate names that must all match (\"Paris, France\"). At most 200 characters, with a letter or digit",
    "sort": "`relevance` (default): best first. `taken`: the relevant matches (relevance >= 0.5 when the model is "
            "calibrated, else the first 100 by relevance), newest first; photos without a date last",
    "offset": f"skip this many matches (pages: the previous answer's `next_offset`); offset + limit is at most "
              f"{MAX_DEPTH}",
    "collapse_duplicates": "photo results: `true` (default) shows one photo per group of near-duplicates, the best "
                           "ranked, with `duplicates` counting the others (see `GET /duplicates`); `false` shows "
                           "every photo. Pages and `total` count what is shown",
}
MAX_PARTS = 8  # parts in `plus` and in `minus`, each


class QueryPart(BaseModel):
    """One part of a composed query: exactly one of `text`, `image` or `image_id`, with a weight."""

    model_config = ConfigDict(extra="forbid")
    text: Optional[str] = Field(None, description="a sentence")
    image: Optional[str] = Field(None, description="a photo as base64 or as a data URI")
    image_id: Optional[str] = Field(None, description="the id of an indexed photo")
    weight: float = Field(1.0, gt=0, le=10, description="how much this part counts beside the main query (1)")


class PhotoResultOptions(BaseModel):
    """The filters, order, page and near-duplicate folding of photo results: the same fields in JSON and in a
    multipart upload."""

    folder: Optional[str] = Field(None, description=_FILTER_DOCS["folder"])
    taken_after: Optional[str] = Field(None, description=_FILTER_DOCS["taken_after"])
    taken_before: Optional[str] = Field(None, description=_FILTER_DOCS["taken_before"])
    has_location: Optional[bool] = Field(None, description=_FILTER_DOCS["has_location"])
    camera: Optional[str] = Field(None, description=_FILTER_DOCS["camera"])
    place: Optional[str] = Field(None, description=_FILTER_DOCS["place"])
    sort: SortOrder = Field("relevance", description=_FILTER_DOCS["sort"])
    offset: int = Field(0, ge=0, description=_FILTER_DOCS["offset"])
    collapse_duplicates: bool = Field(True, description=_FILTER_DOCS["collapse_duplicates"])


class SearchRequest(PhotoResultOptions):
    """One of `text`, `image` (base64 or a data URI) or `image_id` (a photo already indexed), and optionally
    `plus` and `minus` parts that steer it (at least one of the main query and `plus` is needed).

    Filters (`folder`, `taken_after`, `taken_before`, `has_location`, `camera`, `place`) apply to photo results and run
    inside the index: a filtered search returns `limit` matches whenever that many pass. Photos without metadata
    (the demo set, Flickr) pass no filter. Pages: `offset` and `limit`, the answer's `total` and `next_offset`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"text": "a cup of coffee", "limit": 5},
        {"image": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA...", "limit": 3},
        {"image_id": "img-0a1b2c3d4e5f6789", "modality": "image", "limit": 10},
        {"text": "an animal", "plus": [{"image_id": "img-0a1b2c3d4e5f6789", "weight": 0.5}],
         "minus": [{"text": "a cat"}], "limit": 5},
        {"text": "chelsea", "mode": "keyword"},
        {"text": "a tram", "place": "Lisbon"},
        {"text": "the beach", "folder": "2024/summer", "taken_after": "2024-07-01", "taken_before": "2024-08-31",
         "has_location": True, "sort": "taken", "offset": 20, "limit": 20},
    ]})
    text: Optional[str] = Field(None, description="a sentence, at most 1,000 characters")
    image: Optional[str] = Field(None, description="a photo as base64 or as a data URI")
    image_id: Optional[str] = Field(None, description="the id of an indexed photo (see `GET /images/{id}`)")
    plus: list[QueryPart] = Field([], max_length=MAX_PARTS, description=(
        "parts added to the query in the shared embedding space (\"more like this\"), each embedded by its own "
        "encoder and weighted"))
    minus: list[QueryPart] = Field([], max_length=MAX_PARTS, description=(
        "parts subtracted from the query (\"less like this\"); photos they describe drop out of the top results"))
    limit: int = Field(10, ge=1, description="how many matches to return, 1 to the server's maximum (100)")
    modality: Optional[Modality] = Field(
        None, description="what to return: `image` (photos) or `text` (captions); default: the other modality "
                          "than the query's, which is the cross-modal search, except that a photo query on a "
                          "collection without captions returns photos (the response's `note` says so)")
    mode: SearchMode = Field("hybrid", description=(
        "`semantic`: by meaning (the embeddings); `keyword`: the query's words in captions, file and folder "
        "names (SQLite FTS5, BM25); `hybrid` (default): both rankings fused by reciprocal rank fusion. A query "
        "without words (a photo) is searched by meaning whatever the mode"))


class SearchUpload(PhotoResultOptions):
    """`multipart/form-data` body of `POST /search`: a photo file, or a `text` field (composed queries: JSON)."""

    image: Optional[bytes] = Field(None, description="the photo file", json_schema_extra={"format": "binary"})
    text: Optional[str] = None
    limit: int = Field(10, ge=1)
    modality: Optional[Modality] = None
    mode: SearchMode = "hybrid"


class Why(BaseModel):
    """Why a match was found."""

    caption: Optional[str] = Field(None, description="photo matches of a text query: the photo's caption nearest "
                                                     "to the query")
    keywords: list[str] = Field([], description="the query's words found in the caption, file or folder names")
    fields: dict[str, list[str]] = Field({}, description="which field matched which of the query's words: "
                                         "`caption` (a caption's text) or `name` (file or folder names)")


class ScoreDistribution(BaseModel):
    """The query's cosine scores over a sample of the searched index: what relevance is calibrated against."""

    mean: float
    std: float
    count: int = Field(description="vectors in the sample")


class PhotoPlace(BaseModel):
    """Where a photo was taken, named offline from its GPS coordinates (GeoNames data, CC BY 4.0)."""

    model_config = ConfigDict(extra="ignore")
    city: Optional[str] = Field(None, description="the place within 25 km (null when only the country is known)")
    region: Optional[str] = Field(None, description="its region (GeoNames admin-1: state, prefecture, région)")
    country: Optional[str] = None
    country_code: Optional[str] = Field(None, description="ISO 3166-1 alpha-2")


class PhotoMetadata(BaseModel):
    """A photo's file and EXIF metadata (photos of a plain-folder library; null for the demo set and Flickr)."""

    model_config = ConfigDict(extra="ignore")
    path: Optional[str] = Field(None, description="relative to the indexed folder (the first of `paths`)")
    folder: Optional[str] = Field(None, description="the folder of `path` (\"\" at the root)")
    size_bytes: Optional[int] = None
    width: Optional[int] = Field(None, description="as displayed (EXIF orientation applied)")
    height: Optional[int] = None
    taken: Optional[str] = Field(None, description="ISO 8601, from EXIF (with its offset when the camera wrote one) "
                                                   "or else the file's mtime (UTC)")
    taken_source: Optional[str] = Field(None, description="`exif` or `mtime`")
    camera: Optional[str] = Field(None, description="\"Make Model\"")
    lat: Optional[float] = None
    lon: Optional[float] = None
    place: Optional[PhotoPlace] = Field(None, description="the place of `lat`/`lon`; null without GPS or when none "
                                                          "can be told (mid-ocean)")
    paths: list[str] = Field([], description="every path of this content (exact copies), sorted")


def public_metadata(value: Any) -> Optional[PhotoMetadata]:
    """The `metadata` of a match or document from a stored metadata object (None: none)."""
    if not isinstance(value, dict):
        return None
    metadata = PhotoMetadata.model_validate(value)
    if not metadata.paths and metadata.path:
        metadata.paths = [metadata.path]
    return metadata


class Match(BaseModel):
    id: str
    modality: Modality
    score: float = Field(description="cosine similarity to the query, higher is better; not comparable across "
                                     "queries (see `relevance`)")
    relevance: Optional[float] = Field(None, description=(
        "the estimated probability, 0 to 1, that this is a true match for the query, calibrated per model and "
        "direction; null when the model has no calibration for this direction"))
    text: Optional[str] = Field(None, description="the caption (text matches)")
    caption: Optional[str] = Field(None, description="the photo's first caption, when it has one (photo matches)")
    image_url: Optional[str] = Field(None, description="the photo, or the caption's photo; add `?size=256` for a "
                                                       "thumbnail")
    tags: dict[str, str] = Field({}, description="pair_id, dataset, split; captions also image_id")
    metadata: Optional[PhotoMetadata] = Field(None, description="photos of a folder library: path, date, camera, "
                                                                "place; null otherwise")
    why: Why = Field(default_factory=Why, description="why it matched")
    duplicates: Optional[int] = Field(None, description=(
        "photo matches: how many near-duplicates of this photo the collection holds (its group in `GET /duplicates` "
        "less itself), which a search that collapses duplicates folds into it; 0 when it has none. Null for "
        "caption matches"))


class SearchResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"query_modality": "text", "modality": "image", "mode": "hybrid", "no_good_match": False,
         "matches": [_COFFEE_MATCH]},
        {"query_modality": "image", "modality": "text", "mode": "semantic", "no_good_match": False,
         "matches": [_CAT_CAPTION]},
    ]})
    query_modality: Modality = Field(description="the modality of the query (of its main part)")
    modality: Modality = Field(description="the modality of the matches")
    mode: SearchMode = Field("semantic", description="how the matches were ranked (a query without words is "
                                                     "always semantic)")
    no_good_match: Optional[bool] = Field(None, description=(
        "true when even the best match's relevance is below 0.5: the collection holds nothing that fits; null "
        "without a calibration"))
    score_distribution: Optional[ScoreDistribution] = None
    total: int = Field(0, description=f"matches that pass the filters within the search depth ({MAX_DEPTH}); with "
                                      "`sort: taken`, the relevant ones")
    offset: int = Field(0, description="where this page starts in the whole answer")
    next_offset: Optional[int] = Field(None, description="the `offset` of the next page; null at the end")
    matches: list[Match] = Field(description="best first (or newest first with `sort: taken`)")
    note: Optional[str] = Field(None, description=(
        "why `modality` is not what the request implied: a photo query on a collection without captions returns "
        "the photos like it; null otherwise"))


class DuplicateMember(BaseModel):
    id: str
    uri: str = Field(description="the photo (`/images/{id}`; add `?size=256` for a thumbnail)")
    metadata: Optional[PhotoMetadata] = Field(None, description="path, size, date... (folder libraries); null "
                                                                "otherwise")
    similarity: float = Field(description="cosine similarity to the group's representative (1.0 for itself)")


class DuplicateGroup(BaseModel):
    id: str = Field(description="the representative: the best photo of the group (most pixels, then most bytes)")
    size: int = Field(description="photos in the group, at least 2")
    members: list[DuplicateMember] = Field(description="the representative first, then by similarity")


class DuplicatesResponse(BaseModel):
    """Groups of near-duplicate photos (resized, re-encoded, slightly cropped or brightened copies): every member is
    a near-duplicate of its group's representative, by a cosine of at least `threshold` or, for photos of a photo
    folder, by a perceptual signature (`tags.phash`) within a few bits and a cosine that still says "the same
    subject" (crossmodal/library/duplicates.py). Exact copies are not listed: they are one photo with several
    `metadata.paths`."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "groups": [{"id": "img-1f2e3d4c5b6a7980", "size": 2, "members": [
            {"id": "img-1f2e3d4c5b6a7980", "uri": "/images/img-1f2e3d4c5b6a7980", "metadata": None,
             "similarity": 1.0},
            {"id": "img-0a1b2c3d4e5f6789", "uri": "/images/img-0a1b2c3d4e5f6789", "metadata": None,
             "similarity": 0.997}]}],
        "total": 1, "offset": 0, "next_offset": None, "threshold": 0.995}]})
    groups: list[DuplicateGroup] = Field(description="largest first, then by representative id")
    total: int = Field(description="groups in the collection")
    offset: int
    next_offset: Optional[int] = Field(None, description="the `offset` of the next page; null at the end")
    threshold: float = Field(description="the cosine similarity at which two photos are near-duplicates by their "
                                         "vectors alone (per model); photos with matching signatures may be less "
                                         "similar")


class Caption(BaseModel):
    id: str
    text: Optional[str]


class DocumentResponse(BaseModel):
    """An indexed photo with its captions, or an indexed caption with its photo."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "img-0a1b2c3d4e5f6789", "modality": "image", "text": None, "image_url": "/images/img-0a1b2c3d4e5f6789",
        "image_id": "img-0a1b2c3d4e5f6789", "tags": {"pair_id": "demo/chelsea_cat.png", "dataset": "demo",
                                                    "split": "all"},
        "captions": [{"id": "txt-0a1b2c3d4e5f6789-0", "text": "A close-up of a tabby cat's face with big green eyes."}],
    }]})
    id: str
    modality: Modality
    text: Optional[str] = Field(None, description="the caption (text documents)")
    image_id: Optional[str] = Field(None, description="the photo (itself, or the caption's photo)")
    image_url: Optional[str] = None
    tags: dict[str, str] = {}
    captions: Optional[list[Caption]] = Field(None, description="a photo's captions, in their order")
    metadata: Optional[PhotoMetadata] = Field(None, description="a photo's metadata (folder libraries); null "
                                                                "otherwise")


class IndexStats(BaseModel):
    count: int = Field(description="documents in this index")
    model: Optional[str] = Field(None, description="the model that embedded them")
    dim: Optional[int] = Field(None, description="embedding dimension")


class Limits(BaseModel):
    max_limit: int = Field(description="the largest `limit` / `top_k`")
    max_image_bytes: int = Field(description="the largest photo accepted, in bytes")
    max_body_bytes: int = Field(description="the largest request body accepted, in bytes")
    max_text_chars: int
    max_queries: int = Field(description="the most queries in one jinabox request")
    thumbnail_sizes: list[int] = Field(description="`?size=` is rounded up to one of these")


class SamplePhoto(BaseModel):
    id: str
    image_url: str
    name: str = Field(description="the photo's file name")
    caption: Optional[str] = Field(None, description="its first caption, when it has one")


class SampleResponse(BaseModel):
    """A few indexed photos, drawn at random: what the collection holds, for a first look."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"photos": [{
        "id": "img-1f2e3d4c5b6a7980", "image_url": "/images/img-1f2e3d4c5b6a7980", "name": "coffee.png",
        "caption": "A cup of black coffee on a saucer."}]}]})
    photos: list[SamplePhoto]


class StatsResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "images": 19, "captions": 57, "model": "offline", "dim": 384,
        "indexes": {"image": {"count": 19, "model": "offline", "dim": 384},
                    "text": {"count": 57, "model": "offline", "dim": 384}},
        "limits": {"max_limit": 100, "max_image_bytes": 20971520, "max_body_bytes": 41943040, "max_text_chars": 1000,
                   "max_queries": 32, "thumbnail_sizes": [64, 128, 256, 512, 1024]}}]})
    images: int = Field(description="photos indexed")
    captions: int = Field(description="captions indexed")
    model: Optional[str] = Field(None, description="the model of the indexes (null while nothing is indexed)")
    dim: Optional[int] = None
    indexes: dict[Modality, IndexStats]
    limits: Limits


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"


# --- jinabox ----------------------------------------------------------------------------------------------------

_JINABOX_DATA_DESCRIPTION = ("queries, one per string: a `data:` URI is a photo (a `data:text/plain` URI is a "
                             "text), a URL of this server's `/images/{id}` is that indexed photo, anything else "
                             "is a text; other URLs are not downloaded")


class WidgetParameters(BaseModel):
    model_config = ConfigDict(extra="ignore")
    top_k: Optional[int] = Field(None, ge=1)
    limit: Optional[int] = Field(None, ge=1, description="same as top_k")


class BatchSearchRequest(BaseModel):
    """Several searches at once (at most 32), each a `SearchRequest` with its own limit and modality."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"queries": [{"text": "a cup of coffee", "limit": 3}, {"image_id": "img-0a1b2c3d4e5f6789", "limit": 5}]}]})
    queries: list[SearchRequest]


class BatchSearchResponse(BaseModel):
    results: list[SearchResponse] = Field(description="one answer per query, in the order of `queries`")


class JinaboxRequest(BaseModel):
    """Body the jinabox.js widget (Jina 0.5 era) posts to `POST /api/search`."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [
        {"data": ["a cup of coffee"], "top_k": 16, "mode": "search"},
        {"data": ["data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA..."], "top_k": 16, "mode": "search"},
    ]})
    data: list[str] = Field(description=_JINABOX_DATA_DESCRIPTION)
    top_k: Optional[int] = Field(None, ge=1, description="matches per query (default 16); above the server's maximum "
                                                        "it is capped")
    parameters: WidgetParameters = Field(default_factory=WidgetParameters,
                                         description="the npm builds send `parameters.top_k` instead of `top_k`")
    mode: str = Field("search", description="only `search` is served")

    def matches_per_query(self) -> int:
        return self.top_k or self.parameters.top_k or self.parameters.limit or 16


class WidgetSearchRequest(BaseModel):
    """Body the newer jinabox widget (Jina 2.x era) posts to `POST /search`."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [
        {"data": ["a cup of coffee", "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA..."],
         "parameters": {"top_k": 16}, "mode": "search"}]})
    data: list[str] = Field(description=_JINABOX_DATA_DESCRIPTION)
    parameters: WidgetParameters = Field(default_factory=WidgetParameters)
    mode: str = "search"


class JinaScore(BaseModel):
    value: float = Field(description="cosine similarity, higher is better")
    op_name: str = "cosine"


class JinaMatch(BaseModel):
    id: str
    score: JinaScore
    scores: dict[str, JinaScore] = Field(description="the same score, keyed by name (Jina 2.x)")
    mimeType: str
    mime_type: str = Field(description="the same as `mimeType` (jinabox 0.1.50 reads this one)")
    modality: Modality
    uri: Optional[str] = Field(None, description="photos: an absolute URL of `/images/{id}`")
    text: Optional[str] = Field(None, description="captions")
    tags: dict[str, str] = {}


class JinaTopkResult(BaseModel):
    matchDoc: JinaMatch
    score: JinaScore


class JinaDoc(BaseModel):
    id: str
    mimeType: str
    mime_type: str = Field(description="the same as `mimeType` (jinabox 0.1.50 reads this one)")
    modality: Modality
    text: Optional[str] = None
    uri: Optional[str] = Field(None, description="the query photo, as it was sent")
    matches: list[JinaMatch]
    topkResults: Optional[list[JinaTopkResult]] = Field(
        None, description="the same matches in the shape of the oldest jinabox versions (`/api/search` only)")


class JinaDocs(BaseModel):
    docs: list[JinaDoc]


_JINABOX_EXAMPLE_DOCS: dict[str, Any] = {"docs": [{
    "id": "q0", "mimeType": "text/plain", "mime_type": "text/plain", "modality": "text", "text": "a cup of coffee",
    "matches": [{"id": "img-1f2e3d4c5b6a7980", "score": {"value": 0.412, "op_name": "cosine"},
                 "scores": {"cosine": {"value": 0.412, "op_name": "cosine"}}, "mimeType": "image/png",
                 "mime_type": "image/png", "modality": "image",
                 "uri": "http://127.0.0.1:45678/images/img-1f2e3d4c5b6a7980", "tags": {"pair_id": "demo/coffee.png"}}],
}]}


class JinaboxResponse(BaseModel):
    """What both `/api/search` and a widget body on `/search` answer: every published jinabox build reads one of
    `search.docs` (the 2020 widget, npm 0.1.49) and `data.docs` (npm 0.1.50), so both carry the same documents."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"search": _JINABOX_EXAMPLE_DOCS, "data": _JINABOX_EXAMPLE_DOCS, "parameters": {"top_k": 16}}]})
    search: JinaDocs
    data: JinaDocs
    parameters: dict = {}
