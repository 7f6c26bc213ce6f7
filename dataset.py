"""Dataset readers, as the design card names them: the thin entry over `crossmodal.datasets`, where the demo,
Flickr8k, Flickr30k and folder readers live (`open_dataset` picks one by name)."""
from crossmodal.datasets import (
    DATASETS,
    DEMO_MANIFEST,
    F8K_LAYOUT,
    F30K_LAYOUT,
    FOLDER_LAYOUT,
    IMAGE_SUFFIXES,
    NO_SPLIT,
    SPLITS,
    DatasetReader,
    DemoReader,
    Flickr8kReader,
    Flickr30kReader,
    FolderReader,
    ImageCaptions,
    Skipped,
    demo_target,
    open_dataset,
    parse_f8k_line,
)

__all__ = [
    "DATASETS", "DEMO_MANIFEST", "F8K_LAYOUT", "F30K_LAYOUT", "FOLDER_LAYOUT", "IMAGE_SUFFIXES", "NO_SPLIT", "SPLITS",
    "DatasetReader", "DemoReader", "Flickr8kReader", "Flickr30kReader", "FolderReader", "ImageCaptions", "Skipped",
    "demo_target", "open_dataset", "parse_f8k_line",
]
