"""The Jina side of the product; the core (`crossmodal`) never imports it.

- `serving.wire`: the document schema on the wire, shared by every executor and the gateway.
- `serving.runtime`: flow loading and every Jina workaround, behind `prepare_parent_process` /
  `prepare_child_process` and the executors' base class.
- `serving.http`: the HTTP gateway (REST API, web page, jinabox routes, thumbnails).
- `serving.jobs`: what the CLI runs against a flow: indexing, evaluation, the HTTP search client.
"""
