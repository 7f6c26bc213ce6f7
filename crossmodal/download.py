"""Get Flickr8k / Flickr30k the way the original example did (the Kaggle API with the user's token) and lay the
archive out as `dataset.py` reads it.

    data/f8k/captions.txt, data/f8k/images/*.jpg          (+ dataset_flickr8k.json for the Karpathy splits)
    data/f30k/images/*.jpg, data/f30k/results.csv         (+ dataset_flickr30k.json, which the f30k reader needs)

The Karpathy split files come from Karpathy's `caption_datasets.zip` on a university server that this code does
not fetch: the summary says where to put them. Every failure is a DownloadError whose message is one line.
Laying out (`lay_out_archive`) is separate from downloading, so an archive downloaded by hand works the same way.

`download_model_weights` fetches the weights of a model the way its spec says (crossmodal/backends/<model>.py); the
encoder image's build runs it, and so does `app.py -t download --model NAME`. Each model's fetch options are flags:

    python -m crossmodal.download weights --model vsepp --to models   # runs.tar + vocab.tar members, VSE++ site
    python -m crossmodal.download weights --model clip --clip-arch ViT-B-32 --clip-pretrained openai
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from crossmodal.backends import available_backends, backend_spec
from crossmodal.backends.fetching import FetchError, unreachable
from crossmodal.backends.flags import add_model_flags, fetch_values, flags_of_other_models

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
    hidden = path.name.startswith(".")
    if hidden or any(part in ("", "..", "__MACOSX") or part.startswith(".") for part in path.parts[:-1]):
        return None
    return path


def _plan(name: str, members: list[tuple[PurePosixPath, zipfile.ZipInfo]],
          data_dir: Path) -> dict[Path, zipfile.ZipInfo]:
    """Target file -> archive member. Targets are built from base names only, so nothing lands outside data_dir."""
    plan: dict[Path, zipfile.ZipInfo] = {}

    def shortest(basename: str) -> zipfile.ZipInfo | None:
        found = sorted((len(path.parts), str(path), info) for path, info in members if path.name == basename)
        return found[0][2] if found else None

    images_dir = data_dir / ("Images" if (data_dir / "Images").is_dir() else "images")
    if name == "f8k":
        captions = shortest("captions.txt")
        if captions is None:
            raise DownloadError(f"the archive has no captions.txt: not the Kaggle Flickr8k archive "
                                f"({_kaggle_page(name)})")
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
        reason = unreachable(f"https://{KAGGLE_HOST}")
        if reason:
            raise DownloadError(f"{reason}; on a machine with network access, {by_hand}")
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

def download_model_weights(model: str, to: str | Path, **given: Any) -> dict:
    """Put the weights of `model` under `to` and return {"model": ..., "model_options": {...}} that load them.

    `given`: the model's fetch options by name (None or absent: the default); the model's spec says what they are
    and how its weights are fetched (crossmodal/backends/<model>.py). Raises DownloadError (one line).
    """
    try:
        spec = backend_spec(model)
        unknown = sorted(set(given) - {option.name for option in spec.fetch_options})
        if unknown:
            raise DownloadError(f"{', '.join(unknown)}: not fetch options of the {model} model")
        Path(to).mkdir(parents=True, exist_ok=True)
        options = spec.fetch(Path(to), **spec.fetch_values(given))
    except (ValueError, FetchError) as error:
        raise DownloadError(str(error)) from None
    return {"model": spec.name, "model_options": options}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m crossmodal.download", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="a dataset from Kaggle (or --archive) into --data-dir")
    data.add_argument("dataset", choices=sorted(KAGGLE_DATASETS))
    data.add_argument("--data-dir", type=Path, default=None)
    data.add_argument("--archive", type=Path, default=None)
    weights = commands.add_parser("weights", help="a model's weights; prints the model options that load them")
    weights.add_argument("--model", choices=available_backends(), required=True)
    weights.add_argument("--to", type=Path, default=Path("models"))
    add_model_flags(weights, fetch=True, fetch_hint="for")
    weights.add_argument("--output", type=Path, default=None, help="also write the JSON to this file")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "data":
            print(download_dataset(args.dataset, args.data_dir, archive=args.archive).report())
        else:
            foreign = flags_of_other_models(backend_spec(args.model), args, fetch=True)
            if foreign:
                parser.error(f"--model {args.model} takes no {', '.join(foreign)}")
            result = download_model_weights(args.model, args.to, **fetch_values(args.model, args))
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
