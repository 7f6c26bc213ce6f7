"""Published 1K-test retrieval numbers (Karpathy test split, 1,000 images x 5 captions), printed beside measured ones.

The rows are declared by the backends' specs (`BackendSpec.published`); `crossmodal.backends.published_results`
finds a loaded model's rows. This module is data only: the specs import it, so it imports no backend.
Source: the table in shared/reference/vsepp.md (the VSE++ paper, the maintainer's re-run in vsepp issue 41, and
open_clip's benchmark table). Only numbers found there are listed; a dataset or model without a row returns nothing
rather than a guess. No Flickr8k numbers are recorded there, so Flickr8k returns none for every model.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PublishedResult:
    """Recall@1/5/10 in percent, image->text and text->image, for one model on one dataset."""

    model: str
    dataset: str
    image_to_text: tuple[float, float, float]
    text_to_image: tuple[float, float, float]
    source: str
    weights: str | None = None  # the loaded weights it describes (see BackendSpec.weights_of); None: any of its model

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
