"""The HTTP gateway of the query flow (port 45678): the search page, the JSON API, jinabox's routes and photos by id.

Requests are validated here (serving/queries.py), before anything reaches the executors, so bad input costs a 4xx
with a message and nothing else. Every error has one shape, `{"error": {"status", "message"}}`.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
from docarray import DocList
from fastapi import FastAPI, HTTPException, Request
from fastapi import Query as QueryParam
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from jina.serve.runtimes.gateway.http.fastapi import FastAPIBaseGateway
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from crossmodal.index import (
    StoreError,
    read_record,
    read_records,
    records_with_pair_id,
    sample_records,
    store_summary,
)
from crossmodal.index.ids import DOC_ID_PATTERN, caption_id_prefix
from crossmodal.index.tags import ERROR_STATUS_TAG, ERROR_TAG, MODEL_TAG, TARGET_TAG, tags_of_record
from crossmodal.index.workspace import index_folder
from crossmodal.media.decoding import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, ImageDecodeError
from crossmodal.media.text import first_invalid_string
from crossmodal.modality import IMAGE, MODALITIES, TEXT, other_modality
from crossmodal.search.composition import compose
from serving.http import api_models as models
from serving.http import jinabox
from serving.http.answers import AnswerBuilder, FlowResult, candidate_counts, search_depth
from serving.http.api_docs import mount_api_docs
from serving.http.plans import NO_CAPTIONS_NOTE, SearchPlan, page_options
from serving.http.queries import MAX_TEXT_CHARS, Query, QueryBuilder
from serving.http.thumbnails import THUMBNAIL_SIZES, ThumbnailCache, thumbnail_size
from serving.runtime import prepare_child_process
from serving.runtime.collector import freeze_long_lived
from serving.runtime.processes import name_this_process
from serving.wire import CrossModalDoc, MatchDoc

prepare_child_process()  # before this process builds its gRPC clients

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
MAX_QUERIES = 32  # strings in one jinabox request
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": models.ErrorResponse} for status in (400, 404, 409, 413, 422, 500, 501, 503)}
logger = logging.getLogger(__name__)


class BodyTooLarge(Exception):
    """A request body without Content-Length grew past the limit while it was read."""


class CrossModalGateway(FastAPIBaseGateway):
    """Custom gateway: the page at `/`, `POST /search`, `POST /api/search`, photos, documents, stats and health.

    `GET /` is also Jina's health check of a custom gateway: it answers the page from memory, so it stays fast.
    """

    def __init__(self, workspace: str = "workspace", max_limit: int = 100, max_body_bytes: int = 2 * DEFAULT_MAX_BYTES,
                 max_image_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS,
                 cors_origins: str | None = "*", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        name_this_process("gateway")
        self.folders = {modality: index_folder(workspace, modality) for modality in MODALITIES}
        self.image_index_folder = self.folders[IMAGE]
        self.max_limit = int(max_limit)
        self.max_body_bytes = int(max_body_bytes)
        self.max_image_bytes = int(max_image_bytes)
        self.cors_origins = parse_origins(cors_origins)
        self.queries = QueryBuilder(self.image_index_folder, self.max_image_bytes, int(max_pixels))
        self.thumbnails = ThumbnailCache(max_pixels=int(max_pixels), max_file_bytes=self.max_image_bytes)
        self.index_html = (WEB_DIR / "index.html").read_bytes()
        self.answer_builder = AnswerBuilder(self.folders, Path(workspace))
        # The near-duplicate groups are needed by the first photo search: worked out now, off the requests' way (a
        # minute for the first 100,000 photos on 2 cores; later syncs only compare the photos they changed).
        threading.Thread(target=self._warm_up_duplicates, name="duplicates", daemon=True).start()

    # --- the app ------------------------------------------------------------------------------------------------

    @property
    def app(self) -> FastAPI:
        app = FastAPI(title="Cross-modal search", version="1.0", docs_url=None, redoc_url=None,
                      description="Text finds photos, photos find captions. Every error answers "
                                  '`{"error": {"status": <code>, "message": "..."}}`.')
        _install_error_handlers(app)
        mount_api_docs(app)
        app.add_middleware(BodyLimitMiddleware, max_bytes=self.max_body_bytes)
        if self.cors_origins:
            app.add_middleware(CORSMiddleware, allow_origins=self.cors_origins, allow_methods=["GET", "POST"],
                               allow_headers=["*"], max_age=600)

        @app.get("/", include_in_schema=False)
        async def page() -> HTMLResponse:
            return HTMLResponse(self.index_html, headers={"Cache-Control": "no-cache"})

        app.mount("/static", NoCacheStaticFiles(directory=WEB_DIR, html=False), name="static")

        @app.get("/health", response_model=models.HealthResponse, tags=["service"])
        async def health() -> dict:
            """The gateway answers (the executors are started before it)."""
            return {"status": "ok"}

        @app.get("/sample", response_model=models.SampleResponse, responses=ERROR_RESPONSES, tags=["documents"])
        async def sample(limit: int = QueryParam(8, ge=1, le=48, description="how many photos"),
                         ) -> models.SampleResponse:
            """A few indexed photos drawn at random, with their first captions: what the collection holds."""
            return await run_in_threadpool(self._sample, limit)

        @app.get("/stats", response_model=models.StatsResponse, responses=ERROR_RESPONSES, tags=["service"])
        async def stats() -> models.StatsResponse:
            """How many photos and captions are indexed, with which model and dimension; the server's limits."""
            return await run_in_threadpool(self._stats)

        @app.post("/search", response_model=models.SearchResponse | models.JinaboxResponse,
                  responses=ERROR_RESPONSES, tags=["search"], openapi_extra=_SEARCH_BODY_DOC)
        async def search(request: Request) -> JSONResponse:
            """Search with a text, a photo or an indexed photo's id; returns matches with their scores.

            Bodies: JSON (`SearchRequest`), a `multipart/form-data` upload (`SearchUpload`), or the jinabox widget's
            `{"data": [...], "parameters": {"top_k": N}}` (`WidgetSearchRequest`, answered like `/api/search`).
            """
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
                return await self._search_form(request)
            body = await _json_body(request)
            if isinstance(body, dict) and "data" in body:
                request.state.widget = True  # errors then carry what the widget shows (jinabox_error_extras)
                widget = _validate(models.WidgetSearchRequest, body)
                top_k = min(widget.parameters.top_k or widget.parameters.limit or 10, self.max_limit)
                docs = await self._jinabox_docs(widget.data, top_k, str(request.base_url))
                return JSONResponse(jinabox.widget_response(docs, top_k))
            return await self._search_json(_validate(models.SearchRequest, body))

        @app.post("/search/batch", response_model=models.BatchSearchResponse, responses=ERROR_RESPONSES,
                  tags=["search"])
        async def search_batch(request: Request) -> JSONResponse:
            """Up to 32 searches in one request (`SearchRequest` each), answered in order: one flow request for all
            of them, which is how `-t evaluate` runs thousands of queries."""
            return await self._search_batch(_validate(models.BatchSearchRequest, await _json_body(request)))

        @app.post("/api/search", response_model=models.JinaboxResponse, responses=ERROR_RESPONSES,
                  tags=["jinabox"])
        async def jinabox_search(request: Request) -> JSONResponse:
            """The jinabox.js widget (Jina 0.5): one result document per string of `data`, in order.

            Error bodies here also carry `search.docs` (empty) and `status` (`code: ERROR`, `description`), which the
            widget reads to show the message.
            """
            request.state.widget = True
            body = _validate(models.JinaboxRequest, await _json_body(request))
            if body.mode != "search":
                raise HTTPException(400, f"mode {body.mode!r} is not served here; only 'search'")
            top_k = min(body.matches_per_query(), self.max_limit)
            docs = await self._jinabox_docs(body.data, top_k, str(request.base_url))
            return JSONResponse(jinabox.widget_response(docs, top_k))

        @app.get("/images/{doc_id}", responses={**ERROR_RESPONSES, 200: {"content": {"image/*": {}}}},
                 tags=["documents"], response_class=Response)
        async def image(request: Request, doc_id: str,
                        size: int | None = QueryParam(None, ge=16, le=4096, description=(
                            "longest side of a JPEG thumbnail, rounded up to one of "
                            f"{', '.join(map(str, THUMBNAIL_SIZES))}; without it, the original file"))) -> Response:
            """An indexed photo by id (never by path), or its thumbnail."""
            photo = self.queries.indexed_photo(doc_id)
            if photo is None:
                raise HTTPException(404, f"no indexed image with id {doc_id!r}")
            if size is None:
                return FileResponse(photo, headers={"Cache-Control": "public, max-age=3600"})
            bucket = thumbnail_size(size)
            try:
                etag = '"' + hashlib.sha1(repr(self.thumbnails.key(photo, bucket)).encode()).hexdigest()[:20] + '"'
                headers = {"Cache-Control": "public, max-age=3600", "ETag": etag}
                if request.headers.get("if-none-match") == etag:
                    return Response(status_code=304, headers=headers)
                data = await run_in_threadpool(self.thumbnails.get, photo, bucket)
            except (OSError, ImageDecodeError) as error:
                raise HTTPException(500, f"the photo {doc_id!r} cannot be read: {error}") from None
            return Response(data, media_type="image/jpeg", headers=headers)

        @app.get("/duplicates", response_model=models.DuplicatesResponse, responses=ERROR_RESPONSES,
                 tags=["documents"])
        async def duplicates(limit: int = QueryParam(20, description=f"groups per page, 1 to {self.max_limit}"),
                             offset: int = QueryParam(0, description="skip this many groups (the previous page's "
                                                                     "`next_offset`)")) -> models.DuplicatesResponse:
            """Groups of near-duplicate photos, largest first: resized, re-encoded, slightly cropped or brightened
            copies, by the cosine similarity of their embeddings. Worked out when the index changes, then cached."""
            if not 1 <= limit <= self.max_limit:
                raise HTTPException(400, f"'limit' must be between 1 and {self.max_limit}, got {limit}")
            if offset < 0:
                raise HTTPException(400, f"'offset' must be 0 or more, got {offset}")
            return await run_in_threadpool(self._duplicates, limit, offset)

        @app.get("/documents/{doc_id}", response_model=models.DocumentResponse, responses=ERROR_RESPONSES,
                 tags=["documents"])
        async def document(doc_id: str) -> models.DocumentResponse:
            """An indexed photo with its captions, or a caption with its photo."""
            return await run_in_threadpool(self._document, doc_id)

        app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]  # FastAPI's documented way
        freeze_long_lived()  # Jina builds the app once, when the gateway starts: what it keeps is built now
        return app

    # --- search -------------------------------------------------------------------------------------------------

    async def _search_json(self, request: models.SearchRequest) -> JSONResponse:
        plan = await self._plan(request)
        answer = (await self._answers([plan]))[0]
        return JSONResponse(answer.model_dump())

    async def _plan(self, request: models.SearchRequest, where: str = "") -> SearchPlan:
        """The search of one request; `where` prefixes field names in errors (`queries[3].`)."""
        given = [name for name in ("text", "image", "image_id") if getattr(request, name) is not None]
        if len(given) > 1 or (not given and not request.plus):
            raise HTTPException(400, f"send exactly one of '{where}text', '{where}image' or '{where}image_id'"
                                     f" (or only '{where}plus' parts)")
        self._check_limit(request.limit)
        first = request if given else request.plus[0]
        query_modality = IMAGE if first.text is None else TEXT
        target, note = await self._target(query_modality, request.modality)
        parts: list[tuple[Query, float]] = []
        if given:
            parts.append((await self._part(request, target, where), 1.0))
        for sign, name in ((1.0, "plus"), (-1.0, "minus")):
            for position, part in enumerate(getattr(request, name)):
                query = await self._part(part, target, f"{where}{name}[{position}].")
                parts.append((query, sign * part.weight))
        return SearchPlan(parts=parts, query_modality=query_modality, target=target, limit=request.limit,
                          mode=request.mode, note=note, **page_options(request, target, where))

    async def _target(self, query_modality: str, requested: str | None) -> tuple[str, str | None]:
        """What a search returns, and why when it is not what was asked or implied. The default is the other
        modality (the cross-modal search), except that a photo query on a collection without captions (a photo
        folder) returns the photos like it: the natural answer there, instead of an empty list."""
        if requested is not None:
            return requested, None
        target = other_modality(query_modality)
        if target == TEXT and await run_in_threadpool(self._caption_count) == 0:
            return IMAGE, NO_CAPTIONS_NOTE
        return target, None

    def _caption_count(self) -> int:
        summary = store_summary(self.folders[TEXT])
        return summary.count if summary else 0

    async def _part(self, part: models.SearchRequest | models.QueryPart, target: str, where: str) -> Query:
        """One query for one encoder. Decoding a photo to validate it takes a while: off the event loop."""
        given = [name for name in ("text", "image", "image_id") if getattr(part, name) is not None]
        if len(given) != 1:
            raise HTTPException(400, f"send exactly one of '{where}text', '{where}image' or '{where}image_id'")
        if part.text is not None:
            return self.queries.text(part.text, target, f"{where}text")
        if part.image is not None:
            return await run_in_threadpool(self.queries.image_base64, part.image, target, f"{where}image")
        return await run_in_threadpool(self.queries.image_id, str(part.image_id), target, f"{where}image_id")

    async def _search_batch(self, request: models.BatchSearchRequest) -> JSONResponse:
        """Every query through the flow in one request; each answered with its own limit and mode, in order."""
        if not 1 <= len(request.queries) <= MAX_QUERIES:
            raise HTTPException(400, f"'queries' holds {len(request.queries)} queries; send 1 to {MAX_QUERIES}")
        plans = [await self._plan(item, f"queries[{position}].") for position, item in enumerate(request.queries)]
        answers = await self._answers(plans)
        return JSONResponse(models.BatchSearchResponse(results=answers).model_dump())

    async def _search_form(self, request: Request) -> JSONResponse:
        try:
            form = await request.form(max_files=1, max_fields=16)
        except BodyTooLarge:
            raise
        except Exception as error:  # malformed multipart, too many parts
            raise HTTPException(400, f"invalid form upload: {getattr(error, 'detail', None) or error}") from None
        upload = form.get("image")
        fields = {key: value for key, value in form.multi_items() if not isinstance(value, UploadFile)}
        problem = first_invalid_string(fields, "form")
        if problem:
            raise HTTPException(400, problem)
        request_model = _validate(models.SearchRequest, fields)
        if isinstance(upload, UploadFile):
            if request_model.text is not None or request_model.image_id is not None:
                raise HTTPException(400, "send exactly one of 'text', 'image' or 'image_id'")
            self._check_limit(request_model.limit)
            data = await upload.read(self.max_image_bytes + 1)
            name = f"image ({upload.filename})" if upload.filename else "image"
            target, note = await self._target(IMAGE, request_model.modality)
            query = await run_in_threadpool(self.queries.image_bytes, data, target, name)
            plan = SearchPlan(parts=[(query, 1.0)], query_modality=IMAGE, target=target, limit=request_model.limit,
                              mode=request_model.mode, note=note, **page_options(request_model, target))
            return JSONResponse((await self._answers([plan]))[0].model_dump())
        return await self._search_json(request_model)

    def _check_limit(self, limit: int) -> None:
        if not 1 <= limit <= self.max_limit:
            raise HTTPException(400, f"limit must be between 1 and {self.max_limit}")

    async def _answers(self, plans: list[SearchPlan]) -> list[models.SearchResponse]:
        """The public answers of `plans`: through the flow, then ranked, calibrated and explained (SQLite reads:
        off the event loop). The keyword searches need no vector: they run while the flow works."""
        builder = self.answer_builder
        await run_in_threadpool(builder.prepare, plans)
        keywords = asyncio.ensure_future(run_in_threadpool(lambda: [builder.keywords(plan) for plan in plans]))
        try:
            found = await self._run(plans)
        except BaseException:
            await asyncio.gather(keywords, return_exceptions=True)  # not left running; the flow's error is the answer
            raise
        rankings = await keywords
        answers = await run_in_threadpool(lambda: [builder.answer(plan, result, keyword)
                                                   for plan, result, keyword in zip(plans, found, rankings)])
        for plan, answer in zip(plans, answers):
            answer.note = plan.note
        return answers

    def _sample(self, limit: int) -> models.SampleResponse:
        records = sample_records(self.folders[IMAGE], limit)
        captions = self.answer_builder.first_captions([record.pair_id for record in records if record.pair_id])
        photos = [models.SamplePhoto(id=record.id, image_url=f"/images/{record.id}",
                                     name=Path(record.uri or record.id).name,
                                     caption=captions.get(record.pair_id) if record.pair_id else None)
                  for record in records]
        return models.SampleResponse(photos=photos)

    async def _jinabox_docs(self, data: list[str], top_k: int, base_url: str) -> list[dict]:
        """The widget's queries, searched by meaning (the widgets show scores, not relevance or modes)."""
        if not data:
            raise HTTPException(400, "'data' holds no query")
        if len(data) > MAX_QUERIES:
            raise HTTPException(400, f"'data' holds {len(data)} queries; at most {MAX_QUERIES} per request")
        queries = await run_in_threadpool(
            lambda: [self.queries.jinabox_item(item, position) for position, item in enumerate(data)])
        for query in queries:
            query.target, _ = await self._target(query.modality, None)
        limit = min(top_k, self.max_limit)
        plans = [SearchPlan(parts=[(query, 1.0)], query_modality=query.modality, target=query.target, limit=limit,
                            mode="semantic") for query in queries]
        found = await self._run(plans)
        base = base_url.rstrip("/")
        return [jinabox.doc_json(query, result.matches, base) for query, result in zip(queries, found)]

    async def _run(self, plans: list[SearchPlan]) -> list[FlowResult]:
        """Each plan through the flow: composed ones have their parts embedded first (`/encode`) and combined;
        then one `/search` request for all of them. Per plan, its matches best first and the query's vector."""
        vectors: dict[str, tuple[np.ndarray, str]] = {}
        composed = [plan for plan in plans if plan.composed]
        if composed:
            parts = [query for plan in composed for query, _ in plan.parts]
            encoded = await self._flow("/encode", [query.to_doc() for query in parts], limit=1)
            for plan in composed:
                vectors[plan.id] = _combined(plan, encoded)
        docs = [plan.search_doc(*vectors.get(plan.id, (None, None))) for plan in plans]
        found = await self._flow("/search", docs, limit=max(search_depth(plan) for plan in plans))
        results = []
        for plan in plans:
            result = found.get(plan.search_id)
            if result is None:
                raise HTTPException(500, "the query flow returned no result for a query (was it routed?)")
            matches = _best(result.matches, search_depth(plan))
            if any(match.modality != plan.target for match in matches):
                raise HTTPException(501, f"this query flow cannot search {_plural(plan.target)} with a "
                                         f"{plan.query_modality} query: flows/query.yml must route queries by "
                                         f"tags.{TARGET_TAG} (the modality of the results)")
            results.append(FlowResult(matches, result.vector, result.model, result.candidates))
        return results

    async def _flow(self, endpoint: str, docs: list[CrossModalDoc], limit: int) -> dict[str, FlowResult]:
        """One request through the flow; by document id, what came back (shards' matches merged, not sorted)."""
        found: dict[str, FlowResult] = {}
        try:
            async for response in self.streamer.stream_docs(
                    docs=DocList[CrossModalDoc](docs), exec_endpoint=endpoint, parameters={"limit": limit},
                    request_size=len(docs), return_type=DocList[CrossModalDoc], return_results=True):
                _raise_for_status(response)
                for result in response.docs:
                    if ERROR_TAG in result.tags:
                        raise HTTPException(_error_status(result.tags), result.tags[ERROR_TAG])
                    previous = found.get(result.id)
                    matches = [*(previous.matches if previous else []), *(result.matches or [])]
                    vector = None if result.embedding is None else np.asarray(result.embedding, dtype=np.float32)
                    found[result.id] = FlowResult(matches, vector if vector is not None else
                                                  (previous.vector if previous else None),
                                                  result.tags.get(MODEL_TAG) or (previous.model if previous else None),
                                                  {**(previous.candidates if previous else {}),
                                                   **candidate_counts(result.tags)})
        except HTTPException:
            raise
        except Exception as error:  # an executor unreachable or the flow shutting down
            logger.exception("search failed")
            raise HTTPException(503, f"the search service is not ready: {type(error).__name__}: {error}") from None
        return found

    # --- documents and stats ------------------------------------------------------------------------------------

    def _document(self, doc_id: str) -> models.DocumentResponse:
        record = None
        if DOC_ID_PATTERN.match(doc_id):
            record = read_record(self.folders[IMAGE], doc_id) or read_record(self.folders[TEXT], doc_id)
        if record is None:
            raise HTTPException(404, f"no indexed document with id {doc_id!r}")
        tags = tags_of_record(record)
        if record.modality == IMAGE:
            captions = []
            if record.pair_id:
                prefix = caption_id_prefix(record.pair_id)
                captions = [models.Caption(id=caption.id, text=caption.text)
                            for caption in records_with_pair_id(self.folders[TEXT], record.pair_id, prefix)]
            return models.DocumentResponse(id=record.id, modality=IMAGE, image_id=record.id,
                                           image_url=f"/images/{record.id}", tags=tags, captions=captions,
                                           metadata=models.public_metadata(record.metadata))
        image_id = tags.get("image_id")
        return models.DocumentResponse(id=record.id, modality=TEXT, text=record.text, image_id=image_id,
                                       image_url=f"/images/{image_id}" if image_id else None, tags=tags)

    def _warm_up_duplicates(self) -> None:
        try:
            self.answer_builder.duplicates.groups()
        except Exception:  # an unreadable index: the requests that need it answer why
            logger.exception("near-duplicate groups could not be worked out")

    def _duplicates(self, limit: int, offset: int) -> models.DuplicatesResponse:
        try:
            found = self.answer_builder.duplicates.groups()
        except StoreError as error:
            raise HTTPException(503, f"the image index cannot be read: {error}") from None
        page = found.groups[offset:offset + limit]
        records = read_records(self.folders[IMAGE], [member.id for group in page for member in group.members])
        groups = [models.DuplicateGroup(id=group.id, size=group.size, members=[
            models.DuplicateMember(id=member.id, uri=f"/images/{member.id}", similarity=round(member.similarity, 6),
                                   metadata=models.public_metadata(records[member.id].metadata
                                                                   if member.id in records else None))
            for member in group.members]) for group in page]
        end = offset + len(page)
        return models.DuplicatesResponse(groups=groups, total=len(found.groups), offset=offset,
                                         next_offset=end if end < len(found.groups) else None,
                                         threshold=found.threshold)

    def _stats(self) -> models.StatsResponse:
        indexes = {}
        for modality in MODALITIES:
            try:
                summary = store_summary(self.folders[modality])
            except StoreError as error:
                raise HTTPException(503, f"the {modality} index cannot be read: {error}") from None
            indexes[modality] = models.IndexStats(count=summary.count if summary else 0,
                                                  model=summary.model_name if summary else None,
                                                  dim=summary.dim if summary else None)
        built = [index for index in indexes.values() if index.model]
        limits = models.Limits(max_limit=self.max_limit, max_image_bytes=self.max_image_bytes,
                               max_body_bytes=self.max_body_bytes, max_text_chars=MAX_TEXT_CHARS,
                               max_queries=MAX_QUERIES, thumbnail_sizes=list(THUMBNAIL_SIZES))
        return models.StatsResponse(images=indexes[IMAGE].count, captions=indexes[TEXT].count,
                                    model=built[0].model if built else None, dim=built[0].dim if built else None,
                                    indexes=indexes, limits=limits)


# --- helpers ------------------------------------------------------------------------------------------------------


def parse_origins(value: str | None) -> list[str]:
    """`*` (any origin), a comma-separated list of origins, or empty / `none` (no CORS headers at all)."""
    if value is None:
        return ["*"]
    origins = [origin.strip().rstrip("/") for origin in str(value).split(",") if origin.strip()]
    if not origins or origins == ["none"]:
        return []
    return ["*"] if "*" in origins else origins


def _best(matches: list[MatchDoc], limit: int) -> list[MatchDoc]:
    """Shards return their matches merged but unsorted, and may each hold some of the best ones."""
    best: dict[str, MatchDoc] = {}
    for match in matches:
        if match.id not in best or match.score > best[match.id].score:
            best[match.id] = match
    return sorted(best.values(), key=lambda match: match.score, reverse=True)[:limit]


def _raise_for_status(response) -> None:
    status = getattr(getattr(response, "header", None), "status", None)
    if status is not None and status.code != 0:  # jina_pb2.StatusProto.SUCCESS
        exception = status.exception
        detail = f"{exception.name}: {' '.join(exception.args)}" if exception.name else status.description
        raise HTTPException(500, f"the search flow failed: {detail or 'unknown error'}")


def _combined(plan: SearchPlan, encoded: dict[str, FlowResult]) -> tuple[np.ndarray, str]:
    """The composed query's vector from its parts' vectors, and the model that made them."""
    vectors, models_used = [], set()
    for query, weight in plan.parts:
        part = encoded.get(query.id)
        if part is None or part.vector is None:
            raise HTTPException(500, "the query flow returned no embedding for a part of the query")
        vectors.append((part.vector, weight))
        models_used.add(part.model)
    if len(models_used) != 1 or None in models_used:
        raise HTTPException(409, "the parts of the query were embedded by different models: "
                                 f"{sorted(map(str, models_used))}")
    try:
        return compose(vectors), str(models_used.pop())
    except ValueError as error:
        raise HTTPException(400, str(error)) from None


def _error_status(tags: dict) -> int:
    """The status a stage gave the query it refused (crossmodal.index.tags.ERROR_STATUS_TAG); 409 when it gave none."""
    status = str(tags.get(ERROR_STATUS_TAG, ""))
    return int(status) if status in ("400", "409", "413", "500") else 409


def _plural(modality: str) -> str:
    return "photos" if modality == IMAGE else "captions"


async def _json_body(request: Request) -> Any:
    """The parsed JSON body; 422 when it is not JSON, 400 when a string in it is not valid Unicode text."""
    body = await request.body()
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, ValueError) as error:
        raise RequestValidationError(
            [{"loc": ("body",), "msg": f"not valid JSON ({error})", "type": "json_invalid"}]) from None
    problem = first_invalid_string(value)
    if problem:  # valid JSON (`"\ud800"`), but no index, protobuf message or response can carry it
        raise HTTPException(400, problem)
    return value


def _validate(model: type[BaseModel], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise RequestValidationError(error.errors()) from None


class NoCacheStaticFiles(StaticFiles):
    """The page's scripts and styles: revalidated on every load (ETag), so an upgrade is seen at once."""

    async def get_response(self, path: str, scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = "no-cache"
        return response


class BodyLimitMiddleware:
    """Refuses bodies over `max_bytes`: at once when Content-Length says so, else while they are read."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _error(413, f"request body larger than {self.max_bytes} bytes")(scope, receive, send)
            return
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(f"request body larger than {self.max_bytes} bytes")
            return message

        await self.app(scope, limited_receive, send)


def _error(status: int, message: str, request: Request | None = None) -> JSONResponse:
    """The one error shape; a jinabox request's error also carries what each widget build shows."""
    content: dict = {"error": {"status": status, "message": message}}
    if request is not None and (request.url.path == "/api/search" or getattr(request.state, "widget", False)):
        content.update(jinabox.jinabox_error_extras(message))
    return JSONResponse(status_code=status, content=content)


def _install_error_handlers(app: FastAPI) -> None:
    """Every error has one shape, {"error": {"status", "message"}}."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 304:
            return Response(status_code=304, headers=exc.headers)
        return _error(exc.status_code, str(exc.detail), request)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc'] if part != 'body') or 'body'}: {item['msg']}"
            for item in exc.errors()
        )
        return _error(422, f"invalid request: {problems}", request)

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return _error(413, str(exc), request)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s", request.url.path)
        return _error(500, f"internal error: {type(exc).__name__}", request)


_SEARCH_BODY_DOC = {"requestBody": {"required": True, "content": {
    "application/json": {
        "schema": {"anyOf": [{"$ref": "#/components/schemas/SearchRequest"},
                             {"$ref": "#/components/schemas/WidgetSearchRequest"}]},
        "examples": {
            "text": {"summary": "text → photos", "value": {"text": "a cup of coffee", "limit": 5}},
            "image": {"summary": "photo → captions",
                      "value": {"image": "data:image/png;base64,iVBORw0KGgo...", "limit": 3}},
            "same modality": {"summary": "indexed photo → similar photos",
                              "value": {"image_id": "img-0a1b2c3d4e5f6789", "modality": "image", "limit": 10}},
            "jinabox widget": {"summary": "jinabox (Jina 2.x) body, answered as data.docs",
                               "value": {"data": ["a cup of coffee"], "parameters": {"top_k": 16}}},
        }},
    "multipart/form-data": {"schema": {"$ref": "#/components/schemas/SearchUpload"}},
}}}


def _openapi(app: FastAPI) -> dict:
    """FastAPI's schema plus the request bodies that /search parses itself (JSON, multipart, jinabox)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (models.SearchRequest, models.SearchUpload, models.WidgetSearchRequest, models.JinaboxRequest,
                  models.BatchSearchRequest, models.ErrorResponse):
        extra = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(extra.pop("$defs", {}))
        components[model.__name__] = extra
    jinabox_op = schema["paths"]["/api/search"]["post"]
    jinabox_op["requestBody"] = {"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/JinaboxRequest"},
        "examples": {"text": {"value": {"data": ["a cup of coffee"], "top_k": 16, "mode": "search"}},
                     "text and photo": {"value": {"data": ["a cup of coffee", "data:image/png;base64,iVBORw0KGgo..."],
                                                  "top_k": 16, "mode": "search"}}}}}}
    schema["paths"]["/search/batch"]["post"]["requestBody"] = {"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/BatchSearchRequest"}}}}
    app.openapi_schema = schema
    return schema
