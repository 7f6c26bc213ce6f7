"""VSE++ (Faghri et al., 2017): the released checkpoints, loaded as the original code trained them; see
crossmodal.backends.models.vsepp. Weights: runs.tar and vocab.tar from the authors' site."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from crossmodal.evaluation.published import PublishedResult

from .base import ModelBackend
from .fetching import extract_tar_members
from .spec import RUNTIME, THREADS, BackendSpec, Option

SITE = "http://www.cs.toronto.edu/~faghri/vsepp"
RUN = "f30k_vse++_vggfull"
VOCAB = "f30k_vocab.pkl"


def _create(**options: Any) -> ModelBackend:
    from .models.vsepp import VSEPPBackend

    return VSEPPBackend(**options)


def _fetch(to: Path, url: str, run: str, vocab_name: str) -> dict[str, Any]:
    """`runs/<run>/model_best.pth.tar` out of runs.tar and `<vocab_name>` out of vocab.tar, streamed (runs.tar
    holds every released model; reading stops once the wanted file is out)."""
    checkpoint = to / "vsepp" / "runs" / run / "model_best.pth.tar"
    vocab = to / "vsepp" / "vocab" / vocab_name
    extract_tar_members(f"{url.rstrip('/')}/runs.tar", {f"{run}/model_best.pth.tar": checkpoint})
    extract_tar_members(f"{url.rstrip('/')}/vocab.tar", {vocab_name: vocab})
    return {"checkpoint": str(checkpoint.resolve()), "vocab": str(vocab.resolve())}


SPEC = BackendSpec(
    name="vsepp",
    summary="VSE++ checkpoints of the original example (--checkpoint, --vocab)",
    factory=_create,
    fetch=_fetch,
    options=(
        Option("checkpoint", "--checkpoint", "VSE++ model_best.pth.tar", path=True, required=True),
        Option("vocab", "--vocab", "VSE++ vocabulary pickle, e.g. f30k_vocab.pkl", path=True, required=True),
        Option("trust_checkpoint", "--trust-checkpoint", type=bool,
               help="allow a VSE++ checkpoint holding arbitrary Python objects (only for files you trust)"),
        THREADS,
        RUNTIME,
    ),
    fetch_options=(
        Option("url", "--vsepp-url", "the site that serves runs.tar and vocab.tar", default=SITE),
        Option("run", "--vsepp-run", "the run folder in runs.tar", default=RUN),
        Option("vocab_name", "--vsepp-vocab", "the vocabulary in vocab.tar", default=VOCAB),
    ),
    # The family's rows (ResNet152): there is none for the VGG19 checkpoint of the original example
    # (f30k_vse++_vggfull), so they are printed as the family's reference, not as that checkpoint's score.
    published=(
        PublishedResult("VSE++ ResNet152, fine-tuned", "f30k", (52.9, 80.5, 87.2), (39.6, 70.1, 79.5),
                        "VSE++ paper"),
        PublishedResult("VSE++ ResNet152, not fine-tuned", "f30k", (43.8, 72.4, 81.8), (31.6, 59.6, 69.7),
                        "maintainer re-run, vsepp issue 41"),
    ),
)
