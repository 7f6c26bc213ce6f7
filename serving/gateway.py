"""The HTTP gateway of the query flow (port 45678): a small JSON search API and images served by id.

Requests are validated here, before anything reaches the executors, so bad input costs a 4xx and nothing else.
"""
from __future__ import annotations

import base64
import re
import uuid
from pathlib import Path
from typing import Any, Optional

from docarray import DocList
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from jina.serve.runtimes.gateway.http.fastapi import FastAPIBaseGateway
from pydantic import BaseModel, ConfigDict, Field

from crossmodal.imaging import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, ImageDecodeError, decode_image_bytes, image_bytes_from_base64
from crossmodal.store import read_record
from serving.schema import IMAGE, TEXT, CrossModalDoc, MatchDoc

MAX_TEXT_CHARS = 1000
DOC_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")


class SearchRequest(BaseModel):
    """Exactly one of `text` or `image` (base64 or a data URI)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"text": "a cup of coffee", "limit": 5}]})
    text: Optional[str] = Field(None, description="a sentence; searches the image index")
    image: Optional[str] = Field(None, description="base64 or data URI of a photo; searches the caption index")
    limit: int = Field(10, ge=1, description="how many matches to return")


class Match(BaseModel):
    id: str
    modality: str
    score: float = Field(description="cosine similarity, higher is better")
    text: Optional[str] = None
    image_url: Optional[str] = None
    tags: dict[str, str] = {}


class SearchResponse(BaseModel):
    matches: list[Match]


class CrossModalGateway(FastAPIBaseGateway):
    """Custom gateway: `POST /search`, `GET /images/{id}`, `GET /health`; `GET /` stays Jina's fast health check."""

    def __init__(self, workspace: str = "workspace", max_limit: int = 100, max_body_bytes: int = 2 * DEFAULT_MAX_BYTES,
                 max_pixels: int = DEFAULT_MAX_PIXELS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.image_index_folder = Path(workspace) / "image_index"
        self.max_limit = int(max_limit)
        self.max_body_bytes = int(max_body_bytes)
        self.max_pixels = int(max_pixels)

    @property
    def app(self) -> FastAPI:
        app = FastAPI(title="Cross-modal search", description="Text finds photos, photos find captions.")
        _install_error_handlers(app, self.max_body_bytes)

        @app.get("/health")
        async def health() -> dict:
            return {"status": "ok"}

        @app.post("/search", response_model=SearchResponse, responses={400: {}, 413: {}, 422: {}})
        async def search(request: SearchRequest) -> SearchResponse:
            doc = self._query_doc(request)
            limit = request.limit
            if limit > self.max_limit:
                raise HTTPException(400, f"limit must be between 1 and {self.max_limit}")
            result = await self._search(doc, limit)
            return SearchResponse(matches=[_public_match(match) for match in result])

        @app.get("/images/{doc_id}", responses={404: {}})
        async def image(doc_id: str) -> FileResponse:
            record = read_record(self.image_index_folder, doc_id) if DOC_ID_PATTERN.match(doc_id) else None
            if record is None or record.modality != IMAGE or not record.uri or not Path(record.uri).is_file():
                raise HTTPException(404, f"no indexed image with id {doc_id!r}")
            return FileResponse(record.uri)

        return app

    def _query_doc(self, request: SearchRequest) -> CrossModalDoc:
        """Validate the query fully here: the executors only ever see a non-empty text or decodable image."""
        if (request.text is None) == (request.image is None):
            raise HTTPException(400, "send exactly one of 'text' or 'image'")
        query_id = uuid.uuid4().hex
        if request.text is not None:
            text = request.text.strip()
            if not text:
                raise HTTPException(400, "'text' is empty")
            if len(text) > MAX_TEXT_CHARS:
                raise HTTPException(400, f"'text' is longer than {MAX_TEXT_CHARS} characters")
            return CrossModalDoc(id=query_id, modality=TEXT, text=text)
        try:
            data = image_bytes_from_base64(request.image)
            decode_image_bytes(data, max_pixels=self.max_pixels)
        except ImageDecodeError as error:
            raise HTTPException(400, f"'image' is not a usable image: {error}") from None
        return CrossModalDoc(id=query_id, modality=IMAGE, image_b64=base64.b64encode(data).decode("ascii"))

    async def _search(self, doc: CrossModalDoc, limit: int) -> list[MatchDoc]:
        matches: list[MatchDoc] = []
        async for docs in self.streamer.stream_docs(docs=DocList[CrossModalDoc]([doc]), exec_endpoint="/search",
                                                    parameters={"limit": limit}, return_type=DocList[CrossModalDoc]):
            for result in docs:
                if result.id != doc.id:
                    continue
                if "error" in result.tags:
                    raise HTTPException(409, result.tags["error"])
                matches.extend(result.matches or [])
        # Shards return their matches merged but unsorted, and may each hold some of the best ones.
        best: dict[str, MatchDoc] = {}
        for match in matches:
            if match.id not in best or match.score > best[match.id].score:
                best[match.id] = match
        return sorted(best.values(), key=lambda match: match.score, reverse=True)[:limit]


def _public_match(match: MatchDoc) -> Match:
    image_id = match.id if match.modality == IMAGE else match.tags.get("image_id")
    public_tags = {key: value for key, value in match.tags.items() if key != "error"}
    return Match(id=match.id, modality=match.modality, score=match.score, text=match.text,
                 image_url=f"/images/{image_id}" if image_id else None, tags=public_tags)


def _install_error_handlers(app: FastAPI, max_body_bytes: int) -> None:
    """Every error has one shape, {"error": {"status", "message"}}; oversized bodies are refused before reading."""

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse(status_code=status, content={"error": {"status": status, "message": message}})

    @app.middleware("http")
    async def limit_body_size(request: Request, call_next):
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_body_bytes):
            return error(413, f"request body larger than {max_body_bytes} bytes")
        return await call_next(request)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc'] if part != 'body') or 'body'}: {item['msg']}"
            for item in exc.errors()
        )
        return error(422, f"invalid request: {problems}")
