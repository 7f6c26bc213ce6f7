"""Cross-modal (image <-> caption) search core library, independent of Jina."""
