"""VSE++ backend on checkpoints and vocabularies written here in exactly the original formats.

The original code (fartashf/vsepp model.py, data.py) is ported below as the reference: the backend must load its
state dicts with strict=True and give the same vectors, without the original's module, nltk data or any
torchvision weight download.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import pickle
import re
import subprocess
import sys
import types
import zipfile
from collections import OrderedDict
from pathlib import Path

import nltk
import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torchvision import transforms

from crossmodal.backends import (
    BackendUnavailableError,
    TowerNotLoadedError,
    available_backends,
    create_backend,
    create_backend_from_config,
)
from crossmodal.backends.models.vsepp import Vocabulary, load_vocabulary, remap_old_keys, tokenize_caption

REPO_ROOT = Path(__file__).resolve().parents[2]
WORDS = ("a man woman dog cat two in on the of with is are red blue shirt playing ball grass street young girl boy "
         "black white sitting standing running water . , 's n't").split()
CAPTIONS = [
    "A man in a red shirt is playing with a dog .",
    "Two young girls are sitting on the grass",
    "a black dog",
    "A boy is running in the street, and a girl is standing in the water.",
    "dog",
    "The cat's ball isn't blue.",
]


# --- the original format -------------------------------------------------------------------------------------------

VOCAB_SOURCE = '''
class Vocabulary(object):
    """Simple vocabulary wrapper (the original vocab.py)."""
    def __init__(self):
        self.word2idx = {}
        self.idx2word = {}
        self.idx = 0
    def add_word(self, word):
        if word not in self.word2idx:
            self.word2idx[word] = self.idx
            self.idx2word[self.idx] = word
            self.idx += 1
    def __call__(self, word):
        if word not in self.word2idx:
            return self.word2idx['<unk>']
        return self.word2idx[word]
    def __len__(self):
        return len(self.word2idx)
'''


def write_vocabulary(path: Path, tmp_dir: Path, words=WORDS, module: str = "vocab", protocol: int = 2) -> None:
    """Pickle a Vocabulary from a throwaway module (`vocab`, or `__main__` as `python vocab.py` did), then remove
    the class from sight so that loading cannot resolve it."""
    if module == "vocab":
        (tmp_dir / "vocab.py").write_text(VOCAB_SOURCE)
        sys.path.insert(0, str(tmp_dir))
        try:
            spec = importlib.util.spec_from_file_location("vocab", tmp_dir / "vocab.py")
            vocab_module = importlib.util.module_from_spec(spec)
            sys.modules["vocab"] = vocab_module
            spec.loader.exec_module(vocab_module)
            _pickle_vocab(vocab_module.Vocabulary, path, words, protocol)
        finally:
            sys.modules.pop("vocab", None)
            sys.path.remove(str(tmp_dir))
    else:
        main = sys.modules["__main__"]
        namespace: dict = {"__name__": "__main__"}
        exec(VOCAB_SOURCE, namespace)
        main.Vocabulary = namespace["Vocabulary"]
        try:
            _pickle_vocab(main.Vocabulary, path, words, protocol)
        finally:
            del main.Vocabulary


def _pickle_vocab(cls, path: Path, words, protocol: int) -> None:
    vocab = cls()
    for word in ("<pad>", "<start>", "<end>", "<unk>", *words):
        vocab.add_word(word)
    with open(path, "wb") as handle:
        pickle.dump(vocab, handle, protocol)


class RefEncoderImageFull(nn.Module):
    """The original EncoderImageFull (torchvision without weights instead of pretrained=True, no .cuda())."""

    def __init__(self, embed_size, cnn_type="vgg19", use_abs=False, no_imgnorm=False):
        super().__init__()
        self.no_imgnorm, self.use_abs = no_imgnorm, use_abs
        model = torchvision.models.__dict__[cnn_type](weights=None)
        if cnn_type.startswith("vgg"):
            model.features = nn.DataParallel(model.features)
        else:
            model = nn.DataParallel(model)
        self.cnn = model
        if cnn_type.startswith("vgg"):
            self.fc = nn.Linear(self.cnn.classifier._modules["6"].in_features, embed_size)
            self.cnn.classifier = nn.Sequential(*list(self.cnn.classifier.children())[:-1])
        else:
            self.fc = nn.Linear(self.cnn.module.fc.in_features, embed_size)
            self.cnn.module.fc = nn.Sequential()

    def forward(self, images):
        features = ref_l2norm(self.cnn(images))
        features = self.fc(features)
        if not self.no_imgnorm:
            features = ref_l2norm(features)
        if self.use_abs:
            features = torch.abs(features)
        return features


class RefEncoderText(nn.Module):
    """The original EncoderText: expects captions sorted by decreasing length (its collate_fn sorted them)."""

    def __init__(self, vocab_size, word_dim, embed_size, num_layers, use_abs=False):
        super().__init__()
        self.use_abs, self.embed_size = use_abs, embed_size
        self.embed = nn.Embedding(vocab_size, word_dim)
        self.rnn = nn.GRU(word_dim, embed_size, num_layers, batch_first=True)

    def forward(self, x, lengths):
        x = self.embed(x)
        packed = pack_padded_sequence(x, lengths, batch_first=True)
        out, _ = self.rnn(packed)
        padded = pad_packed_sequence(out, batch_first=True)
        index = torch.LongTensor(lengths).view(-1, 1, 1)
        index = index.expand(x.size(0), 1, self.embed_size) - 1
        out = torch.gather(padded[0], 1, index).squeeze(1)
        out = ref_l2norm(out)
        if self.use_abs:
            out = torch.abs(out)
        return out


def ref_l2norm(x):
    return torch.div(x, torch.pow(x, 2).sum(dim=1, keepdim=True).sqrt())


def make_opt(**overrides) -> argparse.Namespace:
    """The training flags train.py pickled into every checkpoint (defaults of its argparse)."""
    values = dict(data_path="/w/31/faghri/vsepp_data/", data_name="f30k", vocab_path="./vocab/", margin=0.2,
                  num_epochs=30, batch_size=128, word_dim=300, embed_size=1024, grad_clip=2.0, crop_size=224,
                  num_layers=1, learning_rate=0.0002, lr_update=15, workers=10, log_step=10, val_step=500,
                  logger_name="runs/f30k_vse++_vggfull", resume="", max_violation=True, img_dim=4096,
                  finetune=False, cnn_type="vgg19", use_restval=False, measure="cosine", use_abs=False,
                  no_imgnorm=False, reset_train=False, vocab_size=len(WORDS) + 4)
    values.update(overrides)
    return argparse.Namespace(**values)


def write_checkpoint(path: Path, image_state: dict, text_state: dict, opt: argparse.Namespace,
                     legacy: bool = False) -> None:
    """torch.save of the dict train.py's save_checkpoint wrote; `legacy` = the pre-1.6 format of the released files."""
    torch.save({"epoch": 29, "model": [image_state, text_state], "best_rsum": 263.7, "opt": opt, "Eiters": 67000},
               path, _use_new_zipfile_serialization=not legacy)


def make_model(tmp_dir: Path, name: str, cnn_type: str, seed: int, legacy: bool = False, old_keys: bool = False,
               drop_bn_counters: bool = False, **opt_overrides):
    """Random reference encoders saved in the original format; returns (checkpoint, vocab, ref_image, ref_text)."""
    torch.manual_seed(seed)
    opt = make_opt(cnn_type=cnn_type, **opt_overrides)
    ref_image = RefEncoderImageFull(opt.embed_size, cnn_type, opt.use_abs, opt.no_imgnorm).eval()
    ref_text = RefEncoderText(opt.vocab_size, opt.word_dim, opt.embed_size, opt.num_layers, opt.use_abs).eval()
    image_state = ref_image.state_dict()
    if old_keys:  # VGG key names from before pytorch/vision@989d52a
        image_state = OrderedDict((k.replace("cnn.classifier.0.", "cnn.classifier.1.")
                                   .replace("cnn.classifier.3.", "cnn.classifier.4."), v)
                                  for k, v in image_state.items())
    if drop_bn_counters:  # torch < 0.4.1 had no BatchNorm num_batches_tracked, nor state-dict metadata
        image_state = OrderedDict((k, v) for k, v in image_state.items() if not k.endswith("num_batches_tracked"))
    checkpoint, vocab = tmp_dir / f"{name}_model_best.pth.tar", tmp_dir / f"{name}_vocab.pkl"
    write_checkpoint(checkpoint, image_state, ref_text.state_dict(), opt, legacy=legacy)
    write_vocabulary(vocab, tmp_dir)
    return checkpoint, vocab, ref_image, ref_text


# --- fixtures ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vgg(tmp_path_factory):
    """VGG19 (the original example's f30k_vse++_vggfull) with the old classifier key names."""
    tmp_dir = tmp_path_factory.mktemp("vgg")
    checkpoint, vocab, ref_image, ref_text = make_model(tmp_dir, "vgg", "vgg19", seed=0, old_keys=True)
    backend = create_backend("vsepp", checkpoint=str(checkpoint), vocab=str(vocab), batch_size=4)
    return types.SimpleNamespace(checkpoint=checkpoint, vocab=vocab, ref_image=ref_image, ref_text=ref_text,
                                 backend=backend, tmp_dir=tmp_dir)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A ResNet18 checkpoint (same code path as ResNet152, 45 MB) for the error and option cases."""
    tmp_dir = tmp_path_factory.mktemp("small")
    checkpoint, vocab, ref_image, ref_text = make_model(tmp_dir, "small", "resnet18", seed=1, embed_size=64,
                                                        word_dim=16)
    return types.SimpleNamespace(checkpoint=checkpoint, vocab=vocab, ref_image=ref_image, ref_text=ref_text,
                                 tmp_dir=tmp_dir)


@pytest.fixture(scope="module")
def photos():
    from skimage import data

    return [Image.fromarray(data.chelsea()), Image.fromarray(data.astronaut()),
            Image.fromarray(data.coffee()).resize((200, 310)), Image.fromarray(data.camera()).convert("RGB")]


def reference_images(ref_image: nn.Module, images) -> np.ndarray:
    """The original test-time pipeline: data.get_transform('test') then the original forward."""
    transform = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
                                    transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])
    with torch.no_grad():
        return ref_image(torch.stack([transform(image.convert("RGB")) for image in images])).numpy()


def reference_texts(ref_text: nn.Module, vocab: Vocabulary, captions) -> np.ndarray:
    """The original data loader (word_tokenize, <start>/<end>, collate_fn's sort by length) and forward; the
    vectors are put back into caption order, which the original evaluation did with the ids."""
    ids = [[vocab("<start>"), *(vocab(t) for t in nltk.word_tokenize(c.lower(), preserve_line=True)), vocab("<end>")]
           for c in captions]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
    lengths = [len(ids[i]) for i in order]
    targets = torch.zeros(len(ids), max(lengths)).long()
    for row, i in enumerate(order):
        targets[row, : len(ids[i])] = torch.tensor(ids[i])
    with torch.no_grad():
        sorted_vectors = ref_text(targets, lengths).numpy()
    vectors = np.zeros_like(sorted_vectors)
    vectors[order] = sorted_vectors
    return vectors


# --- vocabulary -----------------------------------------------------------------------------------------------------

def test_vocabulary_pickled_from_module_vocab_loads_without_that_module(tmp_path):
    write_vocabulary(tmp_path / "f30k_vocab.pkl", tmp_path)
    assert "vocab" not in sys.modules and str(tmp_path) not in sys.path
    with pytest.raises(ModuleNotFoundError):
        pickle.loads((tmp_path / "f30k_vocab.pkl").read_bytes())  # plain pickle cannot resolve the class
    vocab = load_vocabulary(tmp_path / "f30k_vocab.pkl")
    assert isinstance(vocab, Vocabulary)
    assert [vocab(w) for w in ("<pad>", "<start>", "<end>", "<unk>")] == [0, 1, 2, 3]
    assert vocab("dog") == vocab.word2idx["dog"] and vocab.idx2word[vocab("dog")] == "dog"
    assert vocab("zebra") == 3 and len(vocab) == len(WORDS) + 4


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_vocabulary_pickled_from_main_with_any_protocol_loads(tmp_path, protocol):
    write_vocabulary(tmp_path / "vocab.pkl", tmp_path, module="__main__", protocol=protocol)
    assert not hasattr(sys.modules["__main__"], "Vocabulary")
    assert load_vocabulary(tmp_path / "vocab.pkl")("cat") == 4 + WORDS.index("cat")


def test_vocabulary_loader_runs_no_other_code(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "pwned",))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(ValueError, match="not a VSE\\+\\+ vocabulary"):
        load_vocabulary(tmp_path / "evil.pkl")
    assert not (tmp_path / "pwned").exists()


def test_vocabulary_errors_are_clear(tmp_path):
    with pytest.raises(BackendUnavailableError, match="vocabulary not found"):
        load_vocabulary(tmp_path / "missing.pkl")
    write_vocabulary(tmp_path / "vocab.pkl", tmp_path)
    (tmp_path / "truncated.pkl").write_bytes((tmp_path / "vocab.pkl").read_bytes()[:40])
    (tmp_path / "text.pkl").write_text("just some text\n")
    (tmp_path / "dict.pkl").write_bytes(pickle.dumps({"a": 1}))
    for name in ("truncated.pkl", "text.pkl", "dict.pkl"):
        with pytest.raises(ValueError, match="not a VSE\\+\\+ vocabulary"):
            load_vocabulary(tmp_path / name)


# --- tokenisation ---------------------------------------------------------------------------------------------------

# nltk.word_tokenize = punkt's sentence split (data that cannot be downloaded here) + NLTKWordTokenizer on each
# sentence. So the reference is NLTKWordTokenizer itself, on sentences given by hand: nothing here can skip.
ONE_SENTENCE_CAPTIONS = CAPTIONS + [
    'A woman says "hello" to a man (who is tall) ; then leaves !',
    "A dog's toy is on the floor, isn't it?",
    "A man wearing a U.S. flag shirt waves",
    "Mr. Smith walks on St. Mark's street",
    "A 3.5 year old girl and 2 dogs",
    "Café owner, 40-year-old, serves coffee",
]
SEVERAL_SENTENCES = [
    ("A dog runs. It is happy.", ["A dog runs.", "It is happy."]),
    ("Two men talk. One laughs! The other waits", ["Two men talk.", "One laughs!", "The other waits"]),
    ("Dr. Brown rides a bike. kids watch", ["Dr. Brown rides a bike.", "kids watch"]),
]


def word_tokenize_by_sentence(sentences: list[str]) -> list[str]:
    from nltk.tokenize.destructive import NLTKWordTokenizer

    return [token for sentence in sentences for token in NLTKWordTokenizer().tokenize(sentence.lower())]


@pytest.mark.parametrize("caption", ONE_SENTENCE_CAPTIONS)
def test_tokens_equal_word_tokenize_on_one_sentence_captions(caption):
    assert tokenize_caption(caption) == word_tokenize_by_sentence([caption])


@pytest.mark.parametrize(("caption", "sentences"), SEVERAL_SENTENCES)
def test_tokens_equal_word_tokenize_sentence_by_sentence(caption, sentences):
    assert tokenize_caption(caption) == word_tokenize_by_sentence(sentences)


def test_tokens_of_known_captions():
    """Written out by hand, so that the tokenizer is checked against more than nltk's own code."""
    assert tokenize_caption("A dog's toy isn't \"new\".") == ["a", "dog", "'s", "toy", "is", "n't", "``", "new",
                                                               "''", "."]
    assert tokenize_caption("Kids play soccer, on a field (outside)!") == ["kids", "play", "soccer", ",", "on", "a",
                                                                           "field", "(", "outside", ")", "!"]


def test_a_sentence_end_inside_a_caption_splits_its_period_as_punkt_would():
    assert tokenize_caption("A dog runs. It is happy.") == ["a", "dog", "runs", ".", "it", "is", "happy", "."]
    assert tokenize_caption("Mr. Smith, i.e. a man. ok") == ["mr.", "smith", ",", "i.e.", "a", "man", ".", "ok"]


# --- checkpoint -----------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_vgg19_checkpoint_loads_strictly_and_matches_the_original_code(vgg, photos):
    backend = vgg.backend
    assert backend.dim == 1024 and backend.cnn_type == "vgg19"
    sha = hashlib.sha1(vgg.checkpoint.read_bytes()).hexdigest()[:10]
    assert backend.name.startswith(f"vsepp:{vgg.checkpoint.name}:{sha}:{vgg.vocab.name}:")
    images = backend.encode_images(photos)
    assert images.dtype == np.float32 and images.shape == (4, 1024)
    np.testing.assert_allclose(images, reference_images(vgg.ref_image, photos), atol=2e-5)
    texts = backend.encode_texts(CAPTIONS)
    np.testing.assert_allclose(texts, reference_texts(vgg.ref_text, backend.vocab, CAPTIONS), atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1, atol=1e-5)
    assert np.abs(images[0] - images[1]).max() > 1e-3 and np.abs(texts[0] - texts[1]).max() > 1e-3


def test_caption_alone_equals_caption_in_a_batch(vgg):
    backend = vgg.backend  # batch_size 4: the six captions also cross a batch boundary
    together = backend.encode_texts(CAPTIONS)
    reordered = backend.encode_texts(CAPTIONS[::-1])[::-1]
    for i, caption in enumerate(CAPTIONS):
        alone = backend.encode_texts([caption])[0]
        np.testing.assert_allclose(alone, together[i], atol=1e-5)
        np.testing.assert_allclose(alone, reordered[i], atol=1e-5)
    # captions of different lengths get different vectors in input order (no sort-by-length scrambling)
    assert np.abs(together[0] - together[2]).max() > 1e-3


def test_image_alone_equals_image_in_a_batch_and_is_deterministic(vgg, photos):
    backend = vgg.backend
    together = backend.encode_images(photos)
    np.testing.assert_allclose(backend.encode_images(photos), together, atol=0)
    for i, photo in enumerate(photos):
        np.testing.assert_allclose(backend.encode_images([photo])[0], together[i], atol=1e-5)
    assert backend.encode_images([]).shape == (0, 1024) and backend.encode_texts([]).shape == (0, 1024)


def test_preprocessing_is_resize_256_center_crop_224_imagenet(vgg, photos):
    image = photos[1].resize((500, 300))
    tensor = vgg.backend.preprocess(image)
    assert tuple(tensor.shape) == (3, 224, 224)
    resized = image.resize((426, 256), Image.BILINEAR)  # shorter side to 256, int(256 * 500 / 300) = 426
    left, top = round((426 - 224) / 2), round((256 - 224) / 2)
    crop = np.asarray(resized.crop((left, top, left + 224, top + 224)), dtype=np.float32) / 255
    expected = (crop - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(tensor.permute(1, 2, 0).numpy(), expected, atol=0.02)


@pytest.mark.slow
def test_resnet152_legacy_format_without_batchnorm_counters_loads(tmp_path, photos, monkeypatch):
    """The released files predate torch 1.6 (legacy format) and torch 0.4.1 (no num_batches_tracked)."""
    def no_download(*args, **kwargs):
        raise AssertionError("torchvision tried to download weights")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    checkpoint, vocab, ref_image, ref_text = make_model(tmp_path, "resnet", "resnet152", seed=2, legacy=True,
                                                        drop_bn_counters=True, img_dim=2048)
    assert not zipfile.is_zipfile(checkpoint)
    backend = create_backend("vsepp", checkpoint=str(checkpoint), vocab=str(vocab))
    assert backend.cnn_type == "resnet152" and backend.dim == 1024
    np.testing.assert_allclose(backend.encode_images(photos[:2]), reference_images(ref_image, photos[:2]), atol=2e-5)
    np.testing.assert_allclose(backend.encode_texts(CAPTIONS), reference_texts(ref_text, backend.vocab, CAPTIONS),
                               atol=2e-5)


def test_a_legacy_checkpoint_saved_from_the_gpu_loads_on_the_cpu(tmp_path, photos):
    """The released files were saved from CUDA tensors: their storages say torch.cuda.*Storage at 'cuda:0'."""
    checkpoint, vocab, ref_image, _ = make_model(tmp_path, "gpu", "resnet18", seed=4, embed_size=64, word_dim=16,
                                                 legacy=True)
    raw = checkpoint.read_bytes()
    gpu = re.sub(rb"ctorch\n(\w+Storage)\n", rb"ctorch.cuda\n\1\n", raw).replace(b"X\x03\x00\x00\x00cpu",
                                                                                  b"X\x06\x00\x00\x00cuda:0")
    assert gpu != raw and b"cuda:0" in gpu
    checkpoint.write_bytes(gpu)
    with pytest.raises(RuntimeError, match="CUDA"):  # what a plain torch.load does with it here
        torch.load(checkpoint, weights_only=False)
    backend = create_backend("vsepp", checkpoint=str(checkpoint), vocab=str(vocab))
    np.testing.assert_allclose(backend.encode_images(photos[:1]), reference_images(ref_image, photos[:1]), atol=2e-5)


def test_checkpoint_options_come_from_opt(tmp_path, photos):
    checkpoint, vocab, ref_image, ref_text = make_model(tmp_path, "abs", "resnet18", seed=3, embed_size=32,
                                                        word_dim=8, num_layers=2, use_abs=True, no_imgnorm=True)
    backend = create_backend("vsepp", checkpoint=str(checkpoint), vocab=str(vocab),
                             runtime="torch")  # the torch modules are looked into
    assert backend.dim == 32 and backend.text_encoder.rnn.num_layers == 2
    images, texts = backend.encode_images(photos[:2]), backend.encode_texts(CAPTIONS[:2])
    assert (images >= 0).all() and (texts >= 0).all()  # use_abs
    np.testing.assert_allclose(images, reference_images(ref_image, photos[:2]), atol=2e-5)
    assert not np.allclose(np.linalg.norm(images, axis=1), 1)  # no_imgnorm: kept as the model made them
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1, atol=1e-5)


def test_missing_truncated_and_wrong_files_give_clear_errors(small, tmp_path):
    good = dict(checkpoint=str(small.checkpoint), vocab=str(small.vocab))
    with pytest.raises(BackendUnavailableError, match="needs a checkpoint and a vocabulary"):
        create_backend("vsepp")
    with pytest.raises(BackendUnavailableError, match="checkpoint not found.*runs.tar"):
        create_backend("vsepp", **{**good, "checkpoint": str(tmp_path / "nope.pth.tar")})
    with pytest.raises(BackendUnavailableError, match="vocabulary not found"):
        create_backend("vsepp", **{**good, "vocab": str(tmp_path / "nope.pkl")})
    data = small.checkpoint.read_bytes()
    legacy = tmp_path / "legacy.pth.tar"
    torch.save({"model": [{}, {}], "opt": make_opt()}, legacy, _use_new_zipfile_serialization=False)
    cases = {
        "truncated.pth.tar": data[: len(data) // 2],
        "truncated_legacy.pth.tar": legacy.read_bytes()[:300],
        "empty.pth.tar": b"",
        "text.pth.tar": b"hello\n",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match="cannot read VSE\\+\\+ checkpoint.*truncated or not a checkpoint"):
            create_backend("vsepp", **{**good, "checkpoint": str(tmp_path / name)})
    (tmp_path / "vocab_as_checkpoint.pth.tar").write_bytes(small.vocab.read_bytes())
    with pytest.raises(ValueError, match=r"holds Python objects .*\(vocab.Vocabulary\).*trust_checkpoint=true"):
        create_backend("vsepp", **{**good, "checkpoint": str(tmp_path / "vocab_as_checkpoint.pth.tar")})
    torch.save({"a": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="is not a VSE\\+\\+ checkpoint"):
        create_backend("vsepp", **{**good, "checkpoint": str(tmp_path / "other.pth")})


def test_a_state_that_does_not_fit_its_architecture_is_refused(small, tmp_path):
    loaded = torch.load(small.checkpoint, weights_only=False)
    image_state, text_state = loaded["model"]
    broken = OrderedDict(image_state)
    broken.pop("fc.bias")
    write_checkpoint(tmp_path / "missing_key.pth.tar", broken, text_state, loaded["opt"])
    with pytest.raises(ValueError, match="image state .* does not fit .*fc.bias"):
        create_backend("vsepp", checkpoint=str(tmp_path / "missing_key.pth.tar"), vocab=str(small.vocab))
    write_checkpoint(tmp_path / "wrong_cnn.pth.tar", image_state, text_state, make_opt(cnn_type="resnet34"))
    with pytest.raises(ValueError, match="does not fit"):
        create_backend("vsepp", checkpoint=str(tmp_path / "wrong_cnn.pth.tar"), vocab=str(small.vocab))
    write_checkpoint(tmp_path / "bad_cnn.pth.tar", image_state, text_state, make_opt(cnn_type="inception_v3"))
    with pytest.raises(ValueError, match="unsupported VSE\\+\\+ cnn_type"):
        create_backend("vsepp", checkpoint=str(tmp_path / "bad_cnn.pth.tar"), vocab=str(small.vocab))


def test_a_vocabulary_of_another_checkpoint_is_refused(small, tmp_path):
    write_vocabulary(tmp_path / "big_vocab.pkl", tmp_path, words=[f"w{i}" for i in range(500)])
    with pytest.raises(ValueError, match="does not belong to checkpoint"):
        create_backend("vsepp", checkpoint=str(small.checkpoint), vocab=str(tmp_path / "big_vocab.pkl"))


def test_precomputed_feature_and_order_embedding_checkpoints_are_refused(small, tmp_path):
    text_state = torch.load(small.checkpoint, weights_only=False)["model"][1]
    precomp = OrderedDict([("fc.weight", torch.zeros(64, 4096)), ("fc.bias", torch.zeros(64))])
    write_checkpoint(tmp_path / "precomp.pth.tar", precomp, text_state, make_opt(data_name="f30k_precomp"))
    with pytest.raises(ValueError, match="precomputed image features"):
        create_backend("vsepp", checkpoint=str(tmp_path / "precomp.pth.tar"), vocab=str(small.vocab))
    write_checkpoint(tmp_path / "order.pth.tar", precomp, text_state, make_opt(measure="order"))
    with pytest.raises(ValueError, match="order-embedding"):
        create_backend("vsepp", checkpoint=str(tmp_path / "order.pth.tar"), vocab=str(small.vocab))


class Marker:
    """An unexpected Python object inside a checkpoint."""


def test_a_checkpoint_with_other_python_objects_needs_trust(small, tmp_path):
    text_state = torch.load(small.checkpoint, weights_only=False)["model"][1]
    precomp = OrderedDict([("fc.weight", torch.zeros(64, 4096)), ("fc.bias", torch.zeros(64))])
    path = tmp_path / "objects.pth.tar"
    torch.save({"model": [precomp, text_state], "opt": make_opt(extra=Marker()), "epoch": 1}, path)
    with pytest.raises(ValueError, match="trust_checkpoint=true"):
        create_backend("vsepp", checkpoint=str(path), vocab=str(small.vocab))
    # Trusted, it is unpickled and gets as far as the next check.
    with pytest.raises(ValueError, match="precomputed image features"):
        create_backend("vsepp", checkpoint=str(path), vocab=str(small.vocab), trust_checkpoint=True)


def test_old_classifier_keys_are_renamed_and_metadata_kept():
    state = OrderedDict([("cnn.classifier.1.weight", 1), ("cnn.classifier.4.bias", 2), ("fc.weight", 3)])
    state._metadata = {"": {"version": 1}}
    renamed = remap_old_keys(state)
    assert list(renamed) == ["cnn.classifier.0.weight", "cnn.classifier.3.bias", "fc.weight"]
    assert renamed._metadata == {"": {"version": 1}}


# --- registry -------------------------------------------------------------------------------------------------------

def test_a_process_loads_only_its_own_branch_with_the_same_vectors(small, photos):
    options = {"checkpoint": str(small.checkpoint), "vocab": str(small.vocab)}
    both = create_backend("vsepp", **options)
    image_only = create_backend("vsepp", towers=("image",), **options)
    text_only = create_backend("vsepp", towers=("text",), **options)
    assert image_only.name == text_only.name == both.name and image_only.dim == text_only.dim == 64
    assert image_only.text_encoder is None and text_only.image_encoder is None
    np.testing.assert_allclose(image_only.encode_images(photos[:2]), both.encode_images(photos[:2]), atol=1e-5)
    np.testing.assert_allclose(text_only.encode_texts(CAPTIONS), both.encode_texts(CAPTIONS), atol=1e-5)
    with pytest.raises(TowerNotLoadedError, match="cannot encode texts"):
        image_only.encode_texts(["a dog"])
    with pytest.raises(TowerNotLoadedError, match="cannot encode images"):
        text_only.encode_images(photos[:1])


def test_registry_knows_vsepp_and_options_come_as_json(small):
    threads = torch.get_num_threads()
    assert {"vsepp", "clip", "offline"} <= set(available_backends())
    options = json.dumps({"checkpoint": str(small.checkpoint), "vocab": str(small.vocab), "batch_size": 2,
                          "threads": 1})
    backend = create_backend_from_config("vsepp", options)
    assert backend.batch_size == 2 and backend.dim == 64 and torch.get_num_threads() == 1
    torch.set_num_threads(threads)


def test_importing_the_registry_stays_cheap():
    """Importing the registry and listing every model's spec import none of the models' heavy packages."""
    code = ("import sys, crossmodal.backends as registry; assert len(registry.backend_specs()) >= 3; "
            "print(sorted(m for m in ('torch', 'open_clip', 'nltk', 'transformers') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr
