"""VSE++ backend: the released checkpoints of Faghri et al. (2017), loaded as the original code trained them.

The original example ran `runs/f30k_vse++_vggfull/model_best.pth.tar` with `vocab/f30k_vocab.pkl` (VGG19 on full
images, not fine-tuned). This module rebuilds the two encoders of github.com/fartashf/vsepp's `model.py` so that
those state dicts load with `strict=True`:

- image: torchvision VGG19 (or ResNet152) built with `weights=None` (never a download; the checkpoint fills it),
  the classifier's last Linear removed, `fc = Linear(4096|2048, embed_size)`; the CNN part sits under a `module`
  attribute, as `nn.DataParallel` saved it (`cnn.features.module.N.*` for VGG, `cnn.module.*` for ResNet);
  classifier keys `cnn.classifier.1/4` of checkpoints older than pytorch/vision@989d52a are renamed `0/3`.
  forward = l2norm(fc(l2norm(cnn(img)))), the last l2norm skipped for `no_imgnorm`, abs() for `use_abs`.
- text: `Embedding(V, word_dim)` + `GRU(word_dim, embed_size, num_layers)` over a packed sequence, the output at
  position length-1 of each caption, l2norm (abs() for `use_abs`).
- `opt` (embed_size, word_dim, num_layers, cnn_type, no_imgnorm, use_abs, measure) comes from the checkpoint.

SECURITY: a checkpoint and a vocabulary are pickles. The checkpoint is read with `torch.load(weights_only=True)`,
allowing only `argparse.Namespace` besides tensors and containers; the vocabulary with an unpickler that
resolves nothing but the `Vocabulary` class. A checkpoint that holds other Python objects is refused unless the
option `trust_checkpoint=True` is given, which unpickles it fully (`weights_only=False`, i.e. it may run code):
only do that for files you trust.

Only the branches of the towers a process asks for are built: an image encoder process holds no GRU.

Tokenisation: the original used `nltk.word_tokenize(caption.lower())`, which needs nltk's punkt data (a download).
`tokenize_caption` gives the same tokens without it; see its docstring for the one documented difference.
"""
from __future__ import annotations

import argparse
import io
import json
import pickle
import re
import zipfile
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from crossmodal.modality import IMAGE, TEXT

from ..base import BackendUnavailableError, ModelBackend, check_towers, l2_normalise
from ..spec import check_runtime
from .batching import batches, image_batches
from .onnx_runtime import OnnxTower, TowerExport, file_sha1, image_check_inputs, onnx_tower, text_batches

WEIGHTS_HINT = (
    "the released VSE++ weights are runs.tar and vocab.tar from http://www.cs.toronto.edu/~faghri/vsepp/ "
    "(e.g. runs/f30k_vse++_vggfull/model_best.pth.tar with vocab/f30k_vocab.pkl)"
)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SPECIAL_TOKENS = ("<pad>", "<start>", "<end>", "<unk>")
_CNN_TYPE = re.compile(r"^(vgg(11|13|16|19)(_bn)?|resnet(18|34|50|101|152))$")
# Checkpoints saved before pytorch/vision@989d52a numbered VGG's classifier from 1 (a Dropout came first).
_OLD_CLASSIFIER_KEYS = {"cnn.classifier.1.": "cnn.classifier.0.", "cnn.classifier.4.": "cnn.classifier.3."}


# --- tokenisation ---------------------------------------------------------------------------------------------------

# Abbreviations after which a period does not end a sentence (a subset of what punkt's English model knows).
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr st jr sr vs etc mt ft ave blvd rd co corp inc ltd no vol fig approx dept est gov gen sgt capt "
    "col lt prof rev hon jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_word_tokenizer = None


def tokenize_caption(caption: str) -> list[str]:
    """The tokens of `nltk.word_tokenize(str(caption).lower())`, without nltk's punkt download.

    `word_tokenize` is punkt sentence splitting followed by `NLTKWordTokenizer` on each sentence; the word
    tokenizer only separates a period at the very end of its input. So this runs `NLTKWordTokenizer` on the whole
    caption (identical for a one-sentence caption, the ordinary case) and then separates the period of a word that
    ends a sentence inside the caption ("a dog runs. it jumps" -> "runs", "."), which is what punkt's split causes.
    Difference left: punkt decides sentence ends with a learned model; here a period inside the caption ends a
    sentence after any alphabetic word of two or more letters that is not in a short list of common abbreviations
    (mr., dr., st., ...). Words with inner periods (u.s.), single letters (initials) and numbers keep their period.
    """
    global _word_tokenizer
    if _word_tokenizer is None:
        from nltk.tokenize.destructive import NLTKWordTokenizer

        _word_tokenizer = NLTKWordTokenizer()
    tokens = _word_tokenizer.tokenize(str(caption).lower())
    result: list[str] = []
    for position, token in enumerate(tokens):
        word = token[:-1]
        if (position < len(tokens) - 1 and token.endswith(".") and len(word) >= 2 and word.isalpha()
                and word not in _ABBREVIATIONS):
            result += [word, "."]
        else:
            result.append(token)
    return result


# --- vocabulary -----------------------------------------------------------------------------------------------------

class Vocabulary:
    """Compatible with the original `vocab.Vocabulary`: word2idx, idx2word, idx; unknown words map to <unk>."""

    def __init__(self) -> None:
        self.word2idx: dict[str, int] = {}
        self.idx2word: dict[int, str] = {}
        self.idx = 0

    def add_word(self, word: str) -> None:
        if word not in self.word2idx:
            self.word2idx[word] = self.idx
            self.idx2word[self.idx] = word
            self.idx += 1

    def __call__(self, word: str) -> int:
        return self.word2idx.get(word, self.word2idx["<unk>"])

    def __len__(self) -> int:
        return len(self.word2idx)


class _VocabularyUnpickler(pickle.Unpickler):
    """Resolves any `<module>.Vocabulary` (the original pickled it from `__main__` or `vocab`) to the local class,
    plus what Python 2 protocol-0/1 pickles of a new-style object need; refuses every other global."""

    _ALLOWED = {("copyreg", "_reconstructor"), ("copy_reg", "_reconstructor"), ("builtins", "object"),
                ("__builtin__", "object"), ("collections", "OrderedDict")}

    def find_class(self, module: str, name: str) -> Any:
        if name == "Vocabulary":
            return Vocabulary
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a vocabulary holds only a Vocabulary")


def load_vocabulary(path: str | Path) -> Vocabulary:
    """Read a pickled VSE++ `Vocabulary` (or a JSON object with `word2idx`) without the original module.

    Raises BackendUnavailableError for a missing file and ValueError for one that is not a vocabulary.
    """
    path = Path(path)
    if not path.is_file():
        raise BackendUnavailableError(f"VSE++ vocabulary not found: {path}; {WEIGHTS_HINT}")
    data = path.read_bytes()
    try:
        if data[:1] == b"{":
            raw = json.loads(data.decode("utf-8"))
            vocab = Vocabulary()
            vocab.word2idx = {str(word): int(index) for word, index in raw["word2idx"].items()}
        else:
            vocab = _VocabularyUnpickler(io.BytesIO(data), encoding="utf-8").load()
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, TypeError, AttributeError, IndexError,
            UnicodeDecodeError, ImportError) as error:
        raise ValueError(f"{path} is not a VSE++ vocabulary (truncated or another kind of file?): {error}") from None
    if not isinstance(vocab, Vocabulary) or not isinstance(getattr(vocab, "word2idx", None), dict):
        raise ValueError(f"{path} is not a VSE++ vocabulary: it holds a {type(vocab).__name__}")
    missing = [token for token in SPECIAL_TOKENS[1:] if token not in vocab.word2idx]
    if missing:
        raise ValueError(f"{path} is not a VSE++ vocabulary: no {', '.join(missing)} entries")
    if not all(isinstance(index, int) and index >= 0 for index in vocab.word2idx.values()):
        raise ValueError(f"{path} is not a VSE++ vocabulary: word ids must be non-negative integers")
    if not isinstance(getattr(vocab, "idx2word", None), dict):
        vocab.idx2word = {index: word for word, index in vocab.word2idx.items()}
    vocab.idx = max(vocab.word2idx.values()) + 1
    return vocab


# --- checkpoint -----------------------------------------------------------------------------------------------------

def load_checkpoint(path: str | Path, trust_checkpoint: bool = False) -> dict:
    """Read a VSE++ checkpoint onto the CPU; checks its structure. See the module docstring about trust."""
    path = Path(path)
    if not path.is_file():
        raise BackendUnavailableError(f"VSE++ checkpoint not found: {path}; {WEIGHTS_HINT}")
    mmap = zipfile.is_zipfile(path)  # files of torch >= 1.6 can be mapped; older ones (the released) are read
    try:
        if trust_checkpoint:
            checkpoint = torch.load(path, map_location="cpu", weights_only=False, mmap=mmap)
        else:
            with torch.serialization.safe_globals([argparse.Namespace]):
                checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        if "Weights only load failed" in str(error):
            found = re.search(r"GLOBAL (\S+)", str(error))
            raise ValueError(
                f"{path} holds Python objects besides tensors and the training options "
                f"({found.group(1) if found else 'see torch.load'}): not a released VSE++ checkpoint? If you trust "
                "this file, load it with the model option trust_checkpoint=true (unpickling it may run code)"
            ) from None
        raise ValueError(f"cannot read VSE++ checkpoint {path} (truncated or not a checkpoint?): {error}") from None
    except Exception as error:  # torch reports a damaged file with many kinds (RuntimeError, EOFError, struct.error)
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"cannot read VSE++ checkpoint {path} (truncated or not a checkpoint?): {message}") from None
    model = checkpoint.get("model") if isinstance(checkpoint, dict) else None
    if (not isinstance(model, (list, tuple)) or len(model) != 2 or not all(isinstance(s, dict) for s in model)
            or "opt" not in checkpoint):
        raise ValueError(f"{path} is not a VSE++ checkpoint: expected a dict with 'model': [image_state, text_state] "
                         "and 'opt'")
    return checkpoint


def _option(opt: Any, name: str, default: Any) -> Any:
    value = opt.get(name, default) if isinstance(opt, dict) else getattr(opt, name, default)
    return default if value is None else value


def remap_old_keys(state: dict) -> OrderedDict:
    """Rename `cnn.classifier.1/4.*` (before pytorch/vision@989d52a) to `0/3`, keeping the state's metadata."""
    renamed = OrderedDict()
    for key, value in state.items():
        for old, new in _OLD_CLASSIFIER_KEYS.items():
            if key.startswith(old):
                key = new + key[len(old):]
                break
        renamed[key] = value
    metadata = getattr(state, "_metadata", None)
    if metadata is not None:
        renamed._metadata = metadata  # type: ignore[attr-defined]
    return renamed


# --- the two encoders -----------------------------------------------------------------------------------------------

def l2norm(x: torch.Tensor) -> torch.Tensor:
    """x / sqrt(sum(x**2, dim=1)), as the original; an all-zero row stays zero instead of becoming NaN."""
    return x / x.pow(2).sum(dim=1, keepdim=True).sqrt().clamp_min(1e-12)


class _Parallel(nn.Module):
    """Stands for nn.DataParallel: the wrapped module under `module`, so the saved key names match."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)


class EncoderImageFull(nn.Module):
    """The original image encoder for full images (VGG or ResNet), without any pretrained-weight download."""

    def __init__(self, embed_size: int = 1024, cnn_type: str = "vgg19", use_abs: bool = False,
                 no_imgnorm: bool = False) -> None:
        super().__init__()
        import torchvision.models

        if not _CNN_TYPE.match(str(cnn_type)):
            raise ValueError(f"unsupported VSE++ cnn_type {cnn_type!r}: expected a torchvision VGG or ResNet")
        self.no_imgnorm = bool(no_imgnorm)
        self.use_abs = bool(use_abs)
        cnn = getattr(torchvision.models, cnn_type)(weights=None)
        if cnn_type.startswith("vgg"):
            self.fc = nn.Linear(cnn.classifier[6].in_features, embed_size)
            cnn.classifier = nn.Sequential(*list(cnn.classifier.children())[:-1])
            cnn.features = _Parallel(cnn.features)
            self.cnn: nn.Module = cnn
        else:
            self.fc = nn.Linear(cnn.fc.in_features, embed_size)
            cnn.fc = nn.Sequential()
            self.cnn = _Parallel(cnn)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = l2norm(self.cnn(images))
        features = self.fc(features)
        if not self.no_imgnorm:
            features = l2norm(features)
        if self.use_abs:
            features = torch.abs(features)
        return features


class EncoderText(nn.Module):
    """The original caption encoder; takes captions in any order (no sort-by-length, no reordering)."""

    def __init__(self, vocab_size: int, word_dim: int = 300, embed_size: int = 1024, num_layers: int = 1,
                 use_abs: bool = False) -> None:
        super().__init__()
        self.use_abs = bool(use_abs)
        self.embed = nn.Embedding(vocab_size, word_dim)
        self.rnn = nn.GRU(word_dim, embed_size, num_layers, batch_first=True)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(self.embed(ids), lengths.cpu(), batch_first=True, enforce_sorted=False)
        output, _ = self.rnn(packed)
        padded, _ = pad_packed_sequence(output, batch_first=True)  # back in the input order
        last = padded[torch.arange(padded.shape[0]), lengths - 1]
        last = l2norm(last)
        if self.use_abs:
            last = torch.abs(last)
        return last


class PaddedEncoderText(nn.Module):
    """EncoderText without packing, for the ONNX export: the GRU runs over the padded captions and the output at
    position length-1 of each is taken. A unidirectional GRU's output at t depends only on the tokens up to t, so the
    padding after a caption changes nothing; the export check compares it with EncoderText itself."""

    def __init__(self, encoder: EncoderText) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        output, _ = self.encoder.rnn(self.encoder.embed(ids))
        index = (lengths - 1).view(-1, 1, 1).expand(-1, 1, output.shape[2])
        last = l2norm(output.gather(1, index).squeeze(1))
        if self.encoder.use_abs:
            last = torch.abs(last)
        return last


def _build_on_meta(factory) -> nn.Module:
    """Build a module without allocating or initialising its weights; load_state_dict(assign=True) fills it."""
    with torch.device("meta"):
        return factory()


def _load_strict(module: nn.Module, state: dict, what: str, path: Path) -> nn.Module:
    try:
        module.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as error:
        summary = " ".join(str(error).split())
        raise ValueError(f"the {what} state in {path} does not fit the architecture its opt describes: "
                         f"{summary[:600]}") from None
    leftover = [name for name, tensor in [*module.named_parameters(), *module.named_buffers()] if tensor.is_meta]
    if leftover:
        raise ValueError(f"the {what} state in {path} lacks {', '.join(leftover[:5])}")
    return module.eval()


class VSEPPBackend(ModelBackend):
    """Images by the checkpoint's image branch, captions by its text branch; one embedding space of embed_size.

    Only the branches of `towers` are built (the checkpoint is one file, so it is read whole either way).
    """

    image_encoder: nn.Module | None = None
    text_encoder: nn.Module | None = None
    image_onnx: OnnxTower | None = None
    text_onnx: OnnxTower | None = None

    def __init__(self, checkpoint: str | Path | None = None, vocab: str | Path | None = None, batch_size: int = 32,
                 threads: int | None = None, trust_checkpoint: bool = False,
                 towers: Iterable[str] = (IMAGE, TEXT), runtime: str | None = None,
                 cache_dir: str | Path | None = None) -> None:
        if not checkpoint or not vocab:
            raise BackendUnavailableError(
                f"the vsepp model needs a checkpoint and a vocabulary (--checkpoint FILE --vocab FILE); {WEIGHTS_HINT}")
        if threads:
            torch.set_num_threads(int(threads))
        self.towers = check_towers(towers)
        self.runtime = check_runtime(runtime)
        self.batch_size = max(1, int(batch_size))
        self.checkpoint_path, self.vocab_path = Path(checkpoint), Path(vocab)
        self.vocab = load_vocabulary(self.vocab_path)
        loaded = load_checkpoint(self.checkpoint_path, trust_checkpoint=bool(trust_checkpoint))
        opt = loaded["opt"]
        self.opt = opt
        image_state, text_state = loaded["model"]
        self.embed_size = int(_option(opt, "embed_size", 1024))
        self.cnn_type = str(_option(opt, "cnn_type", "vgg19"))
        self.no_imgnorm = bool(_option(opt, "no_imgnorm", False))
        self.use_abs = bool(_option(opt, "use_abs", False))
        if _option(opt, "measure", "cosine") == "order":
            raise ValueError(f"{self.checkpoint_path} is an order-embedding model (measure=order); its similarity "
                             "is not a dot product, so it cannot serve this inner-product index")
        precomputed = str(_option(opt, "data_name", "")).endswith("_precomp")
        if precomputed or not any(key.startswith("cnn.") for key in image_state):
            raise ValueError(f"{self.checkpoint_path} was trained on precomputed image features and has no CNN; "
                             "use a full-image checkpoint such as runs/f30k_vse++_vggfull/model_best.pth.tar")
        embed_weight = text_state.get("embed.weight")
        if embed_weight is None or embed_weight.dim() != 2:
            raise ValueError(f"the text state in {self.checkpoint_path} has no embed.weight matrix")
        vocab_rows, word_dim = embed_weight.shape
        largest = max(self.vocab.word2idx.values())
        if largest >= vocab_rows:
            raise ValueError(f"vocabulary {self.vocab_path} (ids up to {largest}) does not belong to checkpoint "
                             f"{self.checkpoint_path} (embedding of {vocab_rows} words)")
        if IMAGE in self.towers:
            self.image_encoder = _load_strict(
                _build_on_meta(lambda: EncoderImageFull(self.embed_size, self.cnn_type, self.use_abs,
                                                        self.no_imgnorm)),
                remap_old_keys(image_state), "image", self.checkpoint_path)
        if TEXT in self.towers:
            self.text_encoder = _load_strict(
                _build_on_meta(lambda: EncoderText(vocab_rows, int(_option(opt, "word_dim", word_dim)),
                                                   self.embed_size, int(_option(opt, "num_layers", 1)), self.use_abs)),
                text_state, "text", self.checkpoint_path)
        self.dim = self.embed_size
        self.name = (f"vsepp:{self.checkpoint_path.name}:{file_sha1(self.checkpoint_path)[:10]}"
                     f":{self.vocab_path.name}:{file_sha1(self.vocab_path)[:10]}")
        from torchvision import transforms

        self.image_side = 256
        self.preprocess = transforms.Compose([
            transforms.Resize(self.image_side),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD),
        ])
        if self.runtime != "torch":
            self._to_onnx(int(threads) if threads else None, cache_dir)

    def _to_onnx(self, threads: int | None, cache_dir: str | Path | None) -> None:
        """Each loaded branch in ONNX Runtime (cached under cache_dir or $CROSSMODAL_CACHE; see onnx_runtime)."""
        label = f"vsepp-{self.cnn_type}"
        if self.image_encoder is not None:
            export = TowerExport(label=f"{label}-image", input_names=("pixels",), output_name="embedding",
                                 check_inputs=image_check_inputs(self.preprocess))
            self.image_onnx = onnx_tower(self.image_encoder, export, cache_dir, threads, self.runtime)
            if self.image_onnx is not None:
                self.image_encoder = None
        if self.text_encoder is not None:
            export = TowerExport(label=f"{label}-text", input_names=("ids", "lengths"), output_name="embedding",
                                 check_inputs=[dict(zip(("ids", "lengths"), self._padded(batch), strict=True))
                                               for batch in text_batches()],
                                 extra_dynamic_axes={"ids": {1: "sequence"}})
            assert isinstance(self.text_encoder, EncoderText)
            self.text_onnx = onnx_tower(PaddedEncoderText(self.text_encoder), export, cache_dir, threads,
                                        self.runtime, reference=self.text_encoder)
            if self.text_onnx is not None:
                self.text_encoder = None

    def _padded(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Caption ids padded with <pad> (id 0, as the original collate_fn) and their lengths."""
        ids = [self.caption_ids(text) for text in texts]
        lengths = torch.tensor([len(row) for row in ids], dtype=torch.long)
        padded = torch.zeros(len(ids), int(lengths.max()), dtype=torch.long)
        for row, caption in enumerate(ids):
            padded[row, : len(caption)] = torch.tensor(caption, dtype=torch.long)
        return padded, lengths

    def caption_ids(self, caption: str) -> list[int]:
        """`<start>` + word ids (unknown words -> `<unk>`) + `<end>`, as the original data loader built them."""
        return [self.vocab("<start>"), *(self.vocab(token) for token in tokenize_caption(caption)), self.vocab("<end>")]

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        self.require_tower(TEXT)
        chunks = []
        for batch in batches(texts, self.batch_size):
            padded, lengths = self._padded(batch)
            if self.text_onnx is not None:
                chunks.append(self.text_onnx(ids=padded.numpy(), lengths=lengths.numpy()))
            else:
                assert self.text_encoder is not None
                chunks.append(self.text_encoder(padded, lengths).float().numpy())
        return self._finish(chunks)

    @torch.inference_mode()
    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        self.require_tower(IMAGE)
        chunks = []
        for batch in image_batches(images, self.preprocess, self.batch_size):
            if self.image_onnx is not None:
                chunks.append(self.image_onnx(pixels=batch.numpy()))
            else:
                assert self.image_encoder is not None
                chunks.append(self.image_encoder(batch).float().numpy())
        return self._finish(chunks)

    def _finish(self, chunks: list[np.ndarray]) -> np.ndarray:
        if not chunks:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = np.concatenate(chunks).astype(np.float32)
        # The model's own output is already unit length, except image vectors of a `no_imgnorm` (VSE0) checkpoint,
        # whose dot product the original ranked by: those stay as the model made them.
        return vectors if self.no_imgnorm else l2_normalise(vectors)

