"""The encoder images (deploy/Dockerfile.encoder): one Dockerfile for both towers, the build argument TOWER picks
which executor the image runs. At build time this writes that executor's config for the model the image bakes in:

    python -m deploy.encoder_image --tower image --model-json /models/model.json --output /app/encoder/config.yml

The config is the repository's executor config (img_emb/config.yml or txt_emb/config.yml) with the model and its
options from model.json (written by `python -m crossmodal.download weights`) and the executor module by its absolute
path, so that Jina's export can start `jina executor --uses config.yml` in /app/encoder whatever the tower.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from crossmodal.modality import IMAGE, TEXT

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class EncoderImage:
    """One tower's image: the executor folder it runs and the image name deployments use."""

    tower: str
    folder: str
    image: str

    @property
    def flow_uses(self) -> str:
        """How the flow YAMLs name this executor (`uses:`)."""
        return f"{self.folder}/config.yml"


ENCODER_IMAGES = {
    IMAGE: EncoderImage(IMAGE, "img_emb", "crossmodal-img-emb"),
    TEXT: EncoderImage(TEXT, "txt_emb", "crossmodal-txt-emb"),
}


def executor_config(tower: str, model: dict, app_dir: Path = REPO_ROOT) -> dict:
    """The executor config of `tower` under `app_dir`, loading `model` ({"model": ..., "model_options": {...}})."""
    if tower not in ENCODER_IMAGES:
        raise ValueError(f"unknown tower {tower!r}: expected {' or '.join(ENCODER_IMAGES)}")
    folder = Path(app_dir) / ENCODER_IMAGES[tower].folder
    config = yaml.safe_load((folder / "config.yml").read_text())
    config["with"] = {**config.get("with", {}), "model": model["model"],
                      "model_options": model.get("model_options") or {}}
    config["metas"] = {**config.get("metas", {}),
                       "py_modules": [str(folder / module) for module in config.get("metas", {})["py_modules"]]}
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tower", required=True, choices=sorted(ENCODER_IMAGES))
    parser.add_argument("--model-json", type=Path, required=True)
    parser.add_argument("--app-dir", type=Path, default=REPO_ROOT, help="where the executor folders are")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    config = executor_config(args.tower, json.loads(args.model_json.read_text()), args.app_dir)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(yaml.safe_dump(config, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
