"""CLIP backend on a real open_clip architecture (ViT-B-32) with random weights saved to local files.

No test reaches the network: the download paths are exercised with name resolution and connections blocked,
and the cached-tag path with a Hugging Face cache laid out here.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from crossmodal.backends import (
    BackendUnavailableError,
    TowerNotLoadedError,
    create_backend,
    create_backend_from_config,
)

# Every test here loads a real-size ViT-B-32 (random weights): `make test-slow` runs them (pytest.ini: slow).
pytestmark = pytest.mark.slow

ARCH = "ViT-B-32"
CAPTIONS = ["a cat sitting on a sofa", "an astronaut in a white suit", "a cup of coffee on a table", "x"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    model = open_clip.create_model(ARCH, pretrained=None)
    path = tmp_path_factory.mktemp("clip") / "open_clip_pytorch_model.bin"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def backend(weights):
    return create_backend("clip", arch=ARCH, pretrained=str(weights), batch_size=2)


@pytest.fixture(scope="module")
def photos():
    from skimage import data

    return [Image.fromarray(data.chelsea()), Image.fromarray(data.astronaut()),
            Image.fromarray(data.coffee()).resize((200, 310)), Image.fromarray(data.camera()).convert("RGB")]


@pytest.fixture
def no_network(monkeypatch):
    """Any name lookup or connection fails at once, as on a machine without network."""
    def refuse(*args, **kwargs):
        raise OSError("[Errno -3] Temporary failure in name resolution (network blocked by the test)")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
                 "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_vectors_are_unit_length_float32_and_deterministic(backend, photos):
    assert backend.dim == 512
    texts, images = backend.encode_texts(CAPTIONS), backend.encode_images(photos)
    assert texts.dtype == images.dtype == np.float32
    assert texts.shape == (4, 512) and images.shape == (4, 512)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(backend.encode_texts(CAPTIONS), texts)
    np.testing.assert_array_equal(backend.encode_images(photos), images)
    assert np.abs(texts[0] - texts[1]).max() > 1e-3 and np.abs(images[0] - images[1]).max() > 1e-3
    assert backend.encode_texts([]).shape == (0, 512) and backend.encode_images([]).shape == (0, 512)


def test_one_item_alone_equals_it_in_a_batch(backend, photos):
    texts, images = backend.encode_texts(CAPTIONS), backend.encode_images(photos)  # batch_size 2: two batches
    for i in range(4):
        np.testing.assert_allclose(backend.encode_texts([CAPTIONS[i]])[0], texts[i], atol=1e-5)
        np.testing.assert_allclose(backend.encode_images([photos[i]])[0], images[i], atol=1e-5)


def test_open_clip_preprocessing_and_tokenizer_are_used(backend, weights, photos):
    model, _, preprocess = open_clip.create_model_and_transforms(ARCH, pretrained=str(weights))
    tokenizer = open_clip.get_tokenizer(ARCH)
    model.eval()
    with torch.no_grad():
        images = model.encode_image(torch.stack([preprocess(p) for p in photos[:2]]))
        texts = model.encode_text(tokenizer(CAPTIONS[:2]))
    images, texts = torch.nn.functional.normalize(images, dim=-1), torch.nn.functional.normalize(texts, dim=-1)
    np.testing.assert_allclose(backend.encode_images(photos[:2]), images.numpy(), atol=1e-5)
    np.testing.assert_allclose(backend.encode_texts(CAPTIONS[:2]), texts.numpy(), atol=1e-5)


def test_name_identifies_architecture_and_weights(backend, weights):
    assert backend.name == f"clip:{ARCH}:{hashlib.sha1(weights.read_bytes()).hexdigest()[:10]}"


def test_a_folder_with_a_weights_file_loads(backend, weights, tmp_path):
    os.link(weights, tmp_path / "open_clip_pytorch_model.bin")
    (tmp_path / "notes.txt").write_text("not weights")
    from_folder = create_backend_from_config("clip", json.dumps({"arch": ARCH, "pretrained": str(tmp_path)}))
    assert from_folder.name == backend.name
    np.testing.assert_allclose(from_folder.encode_texts(CAPTIONS[:1]), backend.encode_texts(CAPTIONS[:1]), atol=1e-6)


def test_a_hub_snapshot_folder_uses_its_own_config(weights, tmp_path, no_network):
    snapshot = tmp_path / "vit_b_32_snapshot"
    snapshot.mkdir()
    os.link(weights, snapshot / "open_clip_pytorch_model.bin")
    config = {"model_cfg": open_clip.get_model_config(ARCH),
              "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}
    (snapshot / "open_clip_config.json").write_text(json.dumps(config))
    # `arch` names another architecture: the snapshot's config wins.
    loaded = create_backend("clip", arch="RN50", pretrained=str(snapshot))
    assert loaded.dim == 512 and loaded.name.startswith("clip:vit_b_32_snapshot:")
    normalize = [t for t in loaded.preprocess.transforms if type(t).__name__ == "Normalize"][0]
    assert list(normalize.mean) == [0.5, 0.5, 0.5]


def test_a_cached_tag_loads_without_the_network(weights, tmp_path, no_network):
    """`openai` weights in the Hugging Face cache: loaded offline, with QuickGELU as that tag requires."""
    repo = tmp_path / "models--timm--vit_base_patch32_clip_224.openai"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    os.link(weights, repo / "snapshots" / commit / "open_clip_pytorch_model.bin")
    loaded = create_backend("clip", arch=ARCH, pretrained="openai", cache_dir=str(tmp_path),
                            runtime="torch")  # the torch modules are looked into
    assert loaded.name == f"clip:{ARCH}:openai"
    assert any(isinstance(module, open_clip.model.QuickGELU) for module in loaded.text_model.modules())
    np.testing.assert_allclose(np.linalg.norm(loaded.encode_texts(CAPTIONS[:2]), axis=1), 1, atol=1e-5)


def test_no_network_gives_one_actionable_line(tmp_path, no_network, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("a download was attempted although the host is unreachable")

    monkeypatch.setattr(open_clip.pretrained, "download_pretrained_from_hf", no_download)
    monkeypatch.setattr(open_clip.pretrained, "download_pretrained_from_url", no_download)
    with pytest.raises(BackendUnavailableError) as caught:
        create_backend("clip", arch=ARCH, pretrained="openai", cache_dir=str(tmp_path))
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    assert "cannot reach huggingface.co" in message
    assert "open_clip_pytorch_model.bin" in message
    assert "huggingface.co/timm/vit_base_patch32_clip_224.openai" in message
    assert "--clip-arch ViT-B-32-quickgelu --clip-pretrained /path/to/open_clip_pytorch_model.bin" in message
    assert "--model offline" in message


def test_hf_hub_offline_never_touches_the_network(tmp_path, no_network, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("the network was touched although HF_HUB_OFFLINE is set")

    monkeypatch.setattr(socket, "create_connection", forbidden)
    monkeypatch.setattr(socket, "getaddrinfo", forbidden)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackendUnavailableError, match="HF_HUB_OFFLINE is set.*--clip-pretrained.*--model offline"):
        create_backend("clip", arch=ARCH, pretrained="laion2b_s34b_b79k", cache_dir=str(tmp_path))
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_bad_arguments_and_files_give_clear_errors(weights, tmp_path, no_network):
    with pytest.raises(BackendUnavailableError, match="CLIP weights not found"):
        create_backend("clip", pretrained=str(tmp_path / "missing.bin"))
    with pytest.raises(ValueError, match="neither a file, a folder nor a pretrained tag.*openai"):
        create_backend("clip", arch=ARCH, pretrained="no-such-tag")
    with pytest.raises(ValueError, match="unknown open_clip architecture"):
        create_backend("clip", arch="ViT-Q-99", pretrained=str(weights))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackendUnavailableError, match="no CLIP weights file"):
        create_backend("clip", pretrained=str(tmp_path / "empty"))
    truncated = tmp_path / "truncated.bin"
    with open(weights, "rb") as source:
        truncated.write_bytes(source.read(1 << 20))
    with pytest.raises(ValueError, match="cannot load CLIP weights .*truncated.bin"):
        create_backend("clip", arch=ARCH, pretrained=str(truncated))
    with pytest.raises(ValueError, match="cannot load CLIP weights"):
        create_backend("clip", arch="ViT-S-32", pretrained=str(weights))  # weights of another architecture


def test_a_process_loads_only_its_own_tower_with_the_same_vectors(weights, backend, photos):
    image_only = create_backend("clip", towers=("image",), arch=ARCH, pretrained=str(weights))
    text_only = create_backend("clip", towers=("text",), arch=ARCH, pretrained=str(weights))
    assert image_only.name == text_only.name == backend.name and image_only.dim == text_only.dim == backend.dim
    assert image_only.text_model is None and not hasattr(text_only.text_model, "visual")
    np.testing.assert_allclose(image_only.encode_images(photos[:2]), backend.encode_images(photos[:2]), atol=1e-5)
    np.testing.assert_allclose(text_only.encode_texts(CAPTIONS), backend.encode_texts(CAPTIONS), atol=1e-5)
    with pytest.raises(TowerNotLoadedError, match="image tower only: it cannot encode texts"):
        image_only.encode_texts(["a cat"])
    with pytest.raises(TowerNotLoadedError, match="text tower only: it cannot encode images"):
        text_only.encode_images(photos[:1])
    with pytest.raises(ValueError, match="towers must be"):
        create_backend("clip", towers=("audio",), arch=ARCH, pretrained=str(weights))


def test_the_resize_side_of_open_clip_preprocessing():
    """What a large JPEG may be decoded down to for CLIP: the side of its first Resize, else nothing."""
    from torchvision import transforms

    from crossmodal.backends.models.clip import resize_side

    def compose(*steps):
        return transforms.Compose([*steps, transforms.CenterCrop(224)])

    assert resize_side(compose(transforms.Resize(224))) == 224
    assert resize_side(compose(transforms.Resize([336]))) == 336
    assert resize_side(compose(transforms.Resize((224, 224)))) is None  # squashed to a fixed shape
    assert resize_side(compose()) is None and resize_side(object()) is None
