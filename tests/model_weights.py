"""Weights files in the original formats, with random values, for tests of the VSE++ and CLIP backends.

Written once per test run (the `model_weights` session fixture of tests/conftest.py): a VSE++ VGG19 checkpoint as
github.com/fartashf/vsepp's train.py saved it (~590 MB) with its pickled vocabulary, and an open_clip ViT-B-32 state
dict (~600 MB). The flow-level tests use these full formats on purpose: a smaller architecture would not make their
flows measurably faster (a flow start costs ~15 s whatever the model; loading either model takes 1-2 s of it).
"""
import subprocess
import sys
from pathlib import Path

# Written in a child process: a torch computation in this process would leave OpenMP's thread pool behind, and the
# executors that Jina forks from it would then hang on their first parallel operation (libgomp is not fork-safe).
WRITE_WEIGHTS = r'''
import argparse, pickle, sys, types
from pathlib import Path

import open_clip
import torch
import torchvision
from torch import nn

folder = Path(sys.argv[1])
torch.manual_seed(0)

# vocab/f30k_vocab.pkl: a Vocabulary pickled from a module named `vocab`, as the original vocab.py did.
module = types.ModuleType("vocab")
exec("""
class Vocabulary(object):
    def __init__(self):
        self.word2idx = {}
        self.idx2word = {}
        self.idx = 0
    def add_word(self, word):
        if word not in self.word2idx:
            self.word2idx[word] = self.idx
            self.idx2word[self.idx] = word
            self.idx += 1
""", module.__dict__)
sys.modules["vocab"] = module
vocab = module.Vocabulary()
for word in "<pad> <start> <end> <unk> a cat cup of coffee on the table . man dog".split():
    vocab.add_word(word)
(folder / "f30k_vocab.pkl").write_bytes(pickle.dumps(vocab, 2))

# runs/f30k_vse++_vggfull/model_best.pth.tar: [EncoderImageFull state, EncoderText state], opt, as train.py saved.
cnn = torchvision.models.vgg19(weights=None)
cnn.features = nn.DataParallel(cnn.features)
image = nn.Module()
image.cnn, image.fc = cnn, nn.Linear(4096, 1024)
cnn.classifier = nn.Sequential(*list(cnn.classifier.children())[:-1])
text = nn.Module()
text.embed, text.rnn = nn.Embedding(len(vocab.word2idx), 300), nn.GRU(300, 1024, 1, batch_first=True)
opt = argparse.Namespace(embed_size=1024, word_dim=300, num_layers=1, cnn_type="vgg19", finetune=False,
                         use_abs=False, no_imgnorm=False, measure="cosine", data_name="f30k",
                         vocab_size=len(vocab.word2idx), max_violation=True)
torch.save({"epoch": 29, "model": [image.state_dict(), text.state_dict()], "best_rsum": 263.7, "opt": opt,
            "Eiters": 67000}, folder / "model_best.pth.tar")

# A real open_clip architecture with random weights.
torch.save(open_clip.create_model("ViT-B-32", pretrained=None).state_dict(), folder / "open_clip_pytorch_model.bin")
'''


MODELS = ("vsepp", "clip")
DIMENSIONS = {"vsepp": 1024, "clip": 512}


def write_model_weights(folder: Path) -> dict[str, dict[str, str]]:
    """Write a VSE++ checkpoint + vocabulary and a CLIP state dict into `folder`; returns each model's options."""
    subprocess.run([sys.executable, "-c", WRITE_WEIGHTS, str(folder)], check=True, timeout=600)
    return {
        "vsepp": {"checkpoint": str(folder / "model_best.pth.tar"), "vocab": str(folder / "f30k_vocab.pkl")},
        "clip": {"arch": "ViT-B-32", "pretrained": str(folder / "open_clip_pytorch_model.bin")},
    }


def model_flags(options: dict[str, dict[str, str]]) -> dict[str, list[str]]:
    """The app.py flags that select each model with the files `write_model_weights` wrote."""
    return {
        "vsepp": ["--model", "vsepp", "--checkpoint", options["vsepp"]["checkpoint"],
                  "--vocab", options["vsepp"]["vocab"]],
        "clip": ["--model", "clip", "--clip-arch", options["clip"]["arch"],
                 "--clip-pretrained", options["clip"]["pretrained"]],
    }
