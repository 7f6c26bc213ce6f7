"""The offline model's int8 path, with its real bundled weights: a runtime per tower (`--image-runtime`,
`--text-runtime`) is respected, an int8 export that its check refuses is reported (one warning, the tower's runtime
says torch) and nothing refused is cached, and the int8 image tower stays within its own tolerance of torch
(MIN_COSINE_INT8) on the demo photos. Behaviour, not this CPU's numbers: a refusal is forced by moving the
tolerance out of reach, as tests/unit/test_onnx_cache.py does (docs/numerics.md)."""
from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

import app
from crossmodal.backends import backend_spec, create_backend, create_backend_from_config
from crossmodal.backends.models import onnx_runtime
from crossmodal.backends.models.onnx_runtime import MIN_COSINE_INT8, cache_folder, row_cosines
from dataset import open_dataset


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    pairs = list(open_dataset("demo", workspace=tmp_path_factory.mktemp("ws")))
    return [Image.open(pair.image_path).convert("RGB") for pair in pairs]


@pytest.fixture(scope="module")
def image_int8(cache_dir, photos):
    """The image tower in int8, the text tower (and so the class prompts) in fp32."""
    backend = create_backend("offline", cache_dir=cache_dir, image_runtime="onnx-int8")
    backend.encode_images(photos[:1])
    backend.encode_texts(["a photo"])
    return backend


def test_each_tower_runs_in_its_own_runtime(image_int8, cache_dir):
    assert image_int8.tower_runtimes() == {"image": "onnx-int8", "text": "onnx"}
    image, text = image_int8._classifier.onnx, image_int8._text.onnx
    assert "-int8-" in image.path.name and image.metadata["crossmodal_variant"] == "int8"
    assert "-fp32-" in text.path.name and text.metadata["crossmodal_variant"] == "fp32"
    assert sorted(path.name.rsplit("-", 2)[0] + "-" + path.name.rsplit("-", 2)[1]
                  for path in cache_folder(cache_dir).glob("*.onnx")) == [
        "offline-image-efficientnet-lite0-int8", "offline-text-minilm-l6-fp32"]
    text_torch = create_backend("offline", towers=["text"], cache_dir=cache_dir, runtime="onnx",
                               text_runtime="torch")
    assert text_torch.text_runtime == "torch" and text_torch.image_runtime == "onnx"


def test_the_int8_image_tower_stays_within_its_tolerance_of_torch(image_int8, photos, cache_dir):
    torch_backend = create_backend("offline", towers=["image"], cache_dir=cache_dir, runtime="torch")
    cosines = row_cosines(torch_backend.encode_images(photos), image_int8.encode_images(photos))
    assert cosines.min() >= MIN_COSINE_INT8


def test_a_refused_int8_tower_is_reported_runs_in_torch_and_is_not_cached(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(onnx_runtime, "MIN_COSINE_INT8", 1.5)  # out of reach: the int8 export is refused
    with caplog.at_level(logging.WARNING, logger="crossmodal.onnx"):
        backend = create_backend("offline", towers=["text"], cache_dir=tmp_path, text_runtime="onnx-int8")
        vectors = backend.encode_texts(["a cup of coffee", "a cat"])
    warnings = [record.getMessage() for record in caplog.records if record.name == "crossmodal.onnx"]
    assert len(warnings) == 1 and "offline-text-minilm-l6 ONNX export does not match torch" in warnings[0]
    assert "< 1.5" in warnings[0] and "running it in torch instead" in warnings[0]
    assert backend.tower_runtimes() == {"text": "torch"} and backend.text_runtime == "onnx-int8"
    assert not list(tmp_path.rglob("*.onnx")) and not list(tmp_path.rglob(".*part"))
    torch_vectors = create_backend("offline", towers=["text"], cache_dir=tmp_path, runtime="torch").encode_texts(
        ["a cup of coffee", "a cat"])
    np.testing.assert_array_equal(vectors, torch_vectors)


def test_tower_runtimes_are_options_of_the_offline_model_only():
    args = app.parse_args(["-t", "index", "--image-runtime", "onnx-int8"])
    assert app.model_options(args) == {"image_runtime": "onnx-int8"}
    assert app.model_options(app.parse_args(["-t", "index", "--text-runtime", "torch"])) == {"text_runtime": "torch"}
    spec = backend_spec("offline")
    assert spec.flags({"image_runtime": "onnx-int8", "text_runtime": "onnx"}) == [
        "--image-runtime", "onnx-int8", "--text-runtime", "onnx"]
    with pytest.raises(SystemExit):
        app.parse_args(["-t", "index", "--model", "clip", "--image-runtime", "onnx-int8"])
    for bad in ({"text_runtime": "int4"}, {"image_runtime": "int4"}):  # refused when the model is created
        with pytest.raises(ValueError, match="unknown runtime 'int4'"):
            create_backend_from_config("offline", bad)
    default = create_backend("offline", towers=["text"])
    assert (default.runtime, default.image_runtime, default.text_runtime) == ("onnx", "onnx", "onnx")
