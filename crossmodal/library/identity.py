"""Photo identity (the rule the indexing job, the store and the gateway share)
--------------------------------------------------------------------------
A photo of a plain-folder library is its *content*: `photo_pair_id(library, sha256)` is
"folder/<library>/sha256:<hex>" and the image document id is `photo_id(library, sha256)` =
`crossmodal.index.ids.image_doc_id(photo_pair_id(...))`, so caption ids follow from the same pair id
(`ids.caption_doc_id`). Paths are metadata: `metadata.path` is the photo's first path in sorted order and
`metadata.paths` all of them. Hence:
- a move or rename keeps the id, so the vector stays and only the metadata changes (no encoder call);
- exact copies (same bytes) are one photo with several paths, also no encoder call;
- a modified file is new content: a new id is embedded, and the old id is removed once no path holds it;
- links (`/?image=<id>`) survive renames; the same photo in two libraries is two photos (the library name is in
  the id), so each library can be synced and removed on its own.
- captions from captions.csv / captions.json are keyed by path: a photo's captions are those of all its paths
  (in path order, then file order), so they follow whichever path the file has now.
The library name is the caller's (the default: the root folder's name, as `dataset.FolderReader` uses); renaming
it re-embeds everything. Existing folder indexes built with path-derived ids (`folder/<name>/<path>`) are not
recognised: the integrator removes them (or re-indexes) when a folder first becomes a synced library.

"""
from __future__ import annotations

from crossmodal.index.ids import image_doc_id


def photo_pair_id(library: str, sha256: str) -> str:
    """The pair id of a library photo: its content, within its library (see the module docstring)."""
    return f"folder/{library}/sha256:{sha256}"


def photo_id(library: str, sha256: str) -> str:
    """The image document id of a library photo; caption ids derive from `photo_pair_id` the usual way."""
    return image_doc_id(photo_pair_id(library, sha256))
