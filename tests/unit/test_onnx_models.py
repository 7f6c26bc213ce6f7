"""CLIP and VSE++ under ONNX Runtime, on random weights saved in the models' original formats: an open_clip state
dict (the ViT-B-32 architecture's code path, VisionTransformer + TextTransformer with nn.MultiheadAttention,
registered as a two-layer, 64-wide config so that the test stays quick) and a VSE++ checkpoint as the original
train.py saved it (VGG11: the VGG19 code path, with `cnn.features.module.*` keys; GRU caption encoder).
Both towers of each must equal torch's with cosine >= 0.9999. (Checked by hand with the same code: ViT-S-32 and
VSE++ VGG19 with 1024-d embeddings, both towers cosine >= 0.9999999.)"""
from __future__ import annotations

import json

import numpy as np
import open_clip
import pytest
import torch

from crossmodal.backends import create_backend
from crossmodal.backends.models.onnx_runtime import CHECK_TEXTS, cache_folder, row_cosines, synthetic_images
from tests.unit.test_vsepp import make_model

MIN_COSINE = 0.9999
TEXTS = [*CHECK_TEXTS, "a cat", "a man on a dog . the table", "cup of coffee on the table", "zebra"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """$CROSSMODAL_CACHE for the module (the CLIP backend's cache_dir is open_clip's weights cache)."""
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CROSSMODAL_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="module")
def images():
    return synthetic_images(((224, 224), (640, 480), (120, 500), (50, 50)), seed=7)


CLIP_ARCH = "ViT-Tiny-32-onnx-test"
CLIP_CONFIG = {"embed_dim": 64, "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "patch_size": 32},
               "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}}


@pytest.fixture(scope="module")
def clip_weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip")
    (folder / f"{CLIP_ARCH}.json").write_text(json.dumps(CLIP_CONFIG))
    open_clip.add_model_config(folder / f"{CLIP_ARCH}.json")  # open_clip's own way to add an architecture
    torch.manual_seed(0)
    path = folder / "open_clip_pytorch_model.bin"
    torch.save(open_clip.create_model(CLIP_ARCH, pretrained=None).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def vsepp_files(tmp_path_factory):
    checkpoint, vocab, _, _ = make_model(tmp_path_factory.mktemp("vsepp"), "vgg", "vgg11", seed=0, old_keys=True,
                                         embed_size=256, word_dim=32)
    return {"checkpoint": str(checkpoint), "vocab": str(vocab)}


def assert_same(torch_backend, onnx_backend, images):
    """Texts alone and in padded batches; images in batches of 3 and 1 (the export check also ran 1, 3 and 5)."""
    for batch_size in (1, 3):
        torch_backend.batch_size = onnx_backend.batch_size = batch_size
        texts = (torch_backend.encode_texts(TEXTS), onnx_backend.encode_texts(TEXTS))
        assert texts[1].dtype == np.float32 and texts[1].shape == texts[0].shape
        assert row_cosines(*texts).min() >= MIN_COSINE
    vectors = (torch_backend.encode_images(images), onnx_backend.encode_images(images))
    assert row_cosines(*vectors).min() >= MIN_COSINE
    assert onnx_backend.name == torch_backend.name  # the same model for the index, whichever runtime


def test_clip_towers_equal_torch(clip_weights, cache, images):
    options = {"arch": CLIP_ARCH, "pretrained": str(clip_weights)}
    torch_backend = create_backend("clip", **options)
    onnx_backend = create_backend("clip", runtime="onnx", **options)
    assert onnx_backend.image_onnx is not None and onnx_backend.text_onnx is not None
    assert onnx_backend.visual is None and onnx_backend.text_model is None  # no torch tower kept
    assert_same(torch_backend, onnx_backend, images)
    files = sorted(path.name.rsplit("-", 2)[0] for path in cache_folder(cache).glob("clip-*.onnx"))
    assert files == [f"clip-{CLIP_ARCH}-image", f"clip-{CLIP_ARCH}-text"]
    text_only = create_backend("clip", runtime="onnx", towers=["text"], **options)  # shares the text file
    assert text_only.text_onnx is not None and text_only.text_onnx.path.name in {
        path.name for path in cache_folder(cache).glob("clip-*.onnx")}
    assert len(list(cache_folder(cache).glob("clip-*.onnx"))) == 2


@pytest.mark.slow
def test_vsepp_towers_equal_torch(vsepp_files, cache, images):
    torch_backend = create_backend("vsepp", **vsepp_files)
    onnx_backend = create_backend("vsepp", runtime="onnx", **vsepp_files)
    assert onnx_backend.image_onnx is not None and onnx_backend.text_onnx is not None
    assert onnx_backend.image_encoder is None and onnx_backend.text_encoder is None
    assert_same(torch_backend, onnx_backend, images)
    files = sorted(path.name.rsplit("-", 2)[0] for path in cache_folder(cache).glob("vsepp-*.onnx"))
    assert files == ["vsepp-vgg11-image", "vsepp-vgg11-text"]
    # Captions of every length in one padded batch: the GRU without packing still reads each at its own end.
    lengths = ["a", "a cat", "a cat on the table", " ".join(["a man on a dog"] * 30)]
    onnx_backend.batch_size = torch_backend.batch_size = 4
    assert row_cosines(torch_backend.encode_texts(lengths), onnx_backend.encode_texts(lengths)).min() >= MIN_COSINE
