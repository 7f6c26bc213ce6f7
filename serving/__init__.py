"""Jina adapters: the document schema, the HTTP gateway and flow launching. The core (`crossmodal`) never imports this."""
