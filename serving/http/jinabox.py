"""The jinabox.js widget's contract: its request bodies in, Jina 0.5 / 2.x shaped documents out.

The published builds differ in what they read (shared/reference/rest-contracts.md): the 2020 widget and npm 0.1.49
read `search.docs` and `mimeType`, npm 0.1.50 reads `data.docs` and `mime_type`, and a user points any of them at
`/api/search` or `/search`. So both routes answer one shape that carries both: `search.docs` and `data.docs` (the
same documents), `mimeType` and `mime_type` on every document and match. Documents: one per query, in order, with
`matches` sorted by `score.value`, a similarity. Photos are `uri` URLs of `/images/{id}`, captions are `text`.
"""
from __future__ import annotations

from collections.abc import Iterable

from crossmodal.modality import IMAGE
from serving.http.queries import Query, mime_from_path
from serving.wire import MatchDoc

SCORE_NAME = "cosine"


def match_json(match: MatchDoc, base_url: str) -> dict:
    score = {"value": float(match.score), "op_name": SCORE_NAME}
    tags = {key: value for key, value in match.tags.items() if key != "error"}
    result = {"id": match.id, "score": score, "scores": {SCORE_NAME: score}, "modality": match.modality}
    if match.modality == IMAGE:
        result["mimeType"] = result["mime_type"] = mime_from_path(match.uri)
        result["uri"] = f"{base_url}/images/{match.id}"
    else:
        result["mimeType"] = result["mime_type"] = "text/plain"
        result["text"] = match.text or ""
        if tags.get("image_id"):
            tags["image_url"] = f"{base_url}/images/{tags['image_id']}"
    result["tags"] = tags
    return result


def doc_json(query: Query, matches: Iterable[MatchDoc], base_url: str) -> dict:
    """One query and its matches, also as `topkResults` (the match list of the 2020 widget, which a user may point
    at either route)."""
    doc: dict = {"id": query.id, "mimeType": query.mime_type, "mime_type": query.mime_type, "modality": query.modality}
    if query.text is not None:
        doc["text"] = query.text
    if query.uri:
        doc["uri"] = query.uri
    doc["matches"] = [match_json(match, base_url) for match in matches]
    doc["topkResults"] = [{"matchDoc": match, "score": match["score"]} for match in doc["matches"]]
    return doc


def widget_response(docs: list[dict], top_k: int) -> dict:
    """The answer to a jinabox request on either route, readable by every published build."""
    return {"search": {"docs": docs}, "data": {"docs": docs}, "parameters": {"top_k": top_k}}


def jinabox_error_extras(message: str) -> dict:
    """Added to the error body of a jinabox request: each build reads its docs list, then shows `status.description`."""
    return {"search": {"docs": []}, "data": {"docs": []}, "status": {"code": "ERROR", "description": message}}

