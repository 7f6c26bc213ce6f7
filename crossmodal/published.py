"""Published 1K-test retrieval numbers (Karpathy test split, 1,000 images x 5 captions), printed beside measured ones.

Source: the table in shared/reference/vsepp.md (the VSE++ paper, the maintainer's re-run in vsepp issue 41, and
open_clip's benchmark table). Only numbers found there are listed; a dataset or model without a row returns
nothing rather than a guess. No Flickr8k numbers are recorded there, so Flickr8k returns none for every model.
"""
from __future__ import annotations

from dataclasses import dataclass

DATASETS = ("f30k", "f8k")


@dataclass(frozen=True)
class PublishedResult:
    """Recall@1/5/10 in percent, image->text and text->image, for one model on one dataset."""

    model: str
    dataset: str
    image_to_text: tuple[float, float, float]
    text_to_image: tuple[float, float, float]
    source: str

    @property
    def rsum(self) -> float:
        return round(sum(self.image_to_text) + sum(self.text_to_image), 1)

    def as_dict(self) -> dict:
        i2t, t2i = self.image_to_text, self.text_to_image
        return {
            "model": self.model, "dataset": self.dataset, "source": self.source, "rsum": self.rsum,
            "image_to_text": {"R@1": i2t[0], "R@5": i2t[1], "R@10": i2t[2]},
            "text_to_image": {"R@1": t2i[0], "R@5": t2i[1], "R@10": t2i[2]},
        }

    def line(self) -> str:
        i2t, t2i = self.image_to_text, self.text_to_image
        return (f"published {self.model}: image->text R@1 {i2t[0]:.1f} R@5 {i2t[1]:.1f} R@10 {i2t[2]:.1f}; "
                f"text->image R@1 {t2i[0]:.1f} R@5 {t2i[1]:.1f} R@10 {t2i[2]:.1f}; rsum {self.rsum:.1f} "
                f"({self.source})")


# family -> rows; a family is "vsepp" or "clip:<architecture without -quickgelu>:<pretrained tag>".
PUBLISHED: dict[str, tuple[PublishedResult, ...]] = {
    "vsepp": (
        PublishedResult("VSE++ ResNet152, fine-tuned", "f30k", (52.9, 80.5, 87.2), (39.6, 70.1, 79.5),
                        "VSE++ paper"),
        PublishedResult("VSE++ ResNet152, not fine-tuned", "f30k", (43.8, 72.4, 81.8), (31.6, 59.6, 69.7),
                        "maintainer re-run, vsepp issue 41"),
    ),
    "clip:ViT-B-32:openai": (
        PublishedResult("CLIP ViT-B/32 (OpenAI), zero-shot", "f30k", (78.9, 94.9, 98.2), (58.8, 83.6, 90.0),
                        "open_clip benchmark table"),
    ),
    "clip:ViT-L-14:openai": (
        PublishedResult("CLIP ViT-L/14 (OpenAI), zero-shot", "f30k", (85.2, 97.4, 99.2), (65.0, 87.2, 92.0),
                        "open_clip benchmark table"),
    ),
    "clip:ViT-SO400M-14-SigLIP-384:webli": (
        PublishedResult("SigLIP ViT-SO400M/14-384, zero-shot", "f30k", (94.3, 99.7, 99.8), (83.0, 96.1, 98.0),
                        "open_clip benchmark table"),
    ),
}


def model_family(backend_name: str) -> str | None:
    """The PUBLISHED key of a backend name (`vsepp:...`, `clip:ARCH:TAG`), or None when nothing applies.

    A CLIP model loaded from a file is named by the file's hash, which says nothing about which weights it holds,
    so it gets no published row.
    """
    parts = backend_name.split(":")
    if parts[0] == "vsepp":
        return "vsepp"
    if parts[0] == "clip" and len(parts) == 3:
        arch = parts[1].removesuffix("-quickgelu")
        return f"clip:{arch}:{parts[2]}"
    return None


def published_results(backend_name: str, dataset: str = "f30k") -> list[PublishedResult]:
    """Published rows for the model family of `backend_name` on `dataset` (possibly none).

    For VSE++ these are the ResNet152 rows: the table has no row for the VGG19 checkpoint of the original example
    (f30k_vse++_vggfull), so callers should print them as the family's reference, not as that checkpoint's score.
    """
    family = model_family(backend_name)
    return [row for row in PUBLISHED.get(family or "", ()) if row.dataset == dataset]
