"""The built-in offline backend with its real bundled weights, on real demo photos (no network)."""
import numpy as np
import pytest
from PIL import Image

from crossmodal.backends import TowerNotLoadedError, available_backends, create_backend
from dataset import open_dataset


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    return create_backend("offline", cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def demo_photos(tmp_path_factory):
    reader = open_dataset("demo", workspace=tmp_path_factory.mktemp("ws"))
    return {pair.pair_id.split("/")[-1].rsplit(".", 1)[0]: Image.open(pair.image_path).convert("RGB")
            for pair in reader}


def test_registry_knows_offline_and_rejects_unknown():
    assert "offline" in available_backends()
    with pytest.raises(ValueError, match="unknown model backend 'nope'"):
        create_backend("nope")


def test_outputs_are_normalised_float32(backend, demo_photos):
    images = backend.encode_images([demo_photos["coffee"], demo_photos["chelsea_cat"]])
    texts = backend.encode_texts(["a cup of coffee", "a cat"])
    for vectors in (images, texts):
        assert vectors.dtype == np.float32 and vectors.shape == (2, backend.dim)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert backend.encode_texts([]).shape == (0, backend.dim)


def test_text_finds_the_right_photo(backend, demo_photos):
    names = sorted(demo_photos)
    images = backend.encode_images([demo_photos[name] for name in names])
    for query, expected in [("a cup of coffee", "coffee"), ("a cat lying down", "chelsea_cat")]:
        scores = images @ backend.encode_texts([query])[0]
        assert names[int(np.argmax(scores))] == expected, query


def test_batch_and_single_encodings_agree(backend, demo_photos):
    captions = ["a red motorcycle in a garage", "a cup of coffee", "the surface of the moon with craters"]
    batch = backend.encode_texts(captions)
    alone = np.stack([backend.encode_texts([caption])[0] for caption in captions])
    np.testing.assert_allclose(batch, alone, atol=1e-5)
    image_batch = backend.encode_images([demo_photos["coffee"], demo_photos["moon"]])
    np.testing.assert_allclose(image_batch[1], backend.encode_images([demo_photos["moon"]])[0], atol=1e-4)


def test_class_prompt_embeddings_are_cached_on_disk(backend):
    first = backend.class_embeddings()
    assert first.shape == (1000, backend.dim)
    cached = list(backend.cache_dir.glob("conse-*.npy"))
    assert len(cached) == 1
    np.testing.assert_allclose(np.load(cached[0]), first)


def test_each_tower_alone_gives_the_same_vectors_without_the_other_model(backend, demo_photos):
    image_only = create_backend("offline", towers=("image",), cache_dir=backend.cache_dir)  # prompt cache filled
    text_only = create_backend("offline", towers=("text",), cache_dir=backend.cache_dir)
    np.testing.assert_allclose(image_only.encode_images([demo_photos["coffee"]]),
                               backend.encode_images([demo_photos["coffee"]]), atol=1e-5)
    np.testing.assert_allclose(text_only.encode_texts(["a cup of coffee"]), backend.encode_texts(["a cup of coffee"]),
                               atol=1e-5)
    assert image_only._text is None and text_only._classifier is None
    assert image_only.name == text_only.name and image_only.dim == text_only.dim
    with pytest.raises(TowerNotLoadedError, match="cannot encode texts"):
        image_only.encode_texts(["a cat"])
    with pytest.raises(TowerNotLoadedError, match="cannot encode images"):
        text_only.encode_images([demo_photos["coffee"]])


def test_a_camera_sized_photo_decoded_at_reduced_scale_embeds_as_decoded_whole(backend, demo_photos):
    """The image encoder decodes a large JPEG at the scale the model needs (`image_side`): the vector must be the
    one of the whole decode, to within the resampling difference."""
    import io

    from crossmodal.media.decoding import decode_image_bytes

    assert backend.image_side == 256
    for name in ("coffee", "chelsea_cat", "moon"):
        large = demo_photos[name].resize((4032, 3024), Image.Resampling.BICUBIC)  # a 12-megapixel phone photo
        buffer = io.BytesIO()
        large.save(buffer, "JPEG", quality=92)
        whole = decode_image_bytes(buffer.getvalue())
        reduced = decode_image_bytes(buffer.getvalue(), min_side=backend.image_side)
        assert reduced.size == (504, 378)
        vectors = backend.encode_images([whole, reduced])
        assert float(vectors[0] @ vectors[1]) >= 0.99, name
