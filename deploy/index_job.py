"""The index job of the container deployment: `app.py -t index` with the model its image bakes in.

The image (deploy/Dockerfile.pods, target `index`) is an encoder image plus the index flow, so the model's weights
and /models/model.json (written by the encoder image's build) are there; this turns model.json into app.py's model
flags, so that the index holds embeddings of the same model as the query flow's encoders. Everything else is
app.py's own command line:

    python deploy/index_job.py --workspace /workspace --shards 2 --dataset demo
    python deploy/index_job.py --workspace /workspace --shards 2 --dataset folder --data-dir /data/photos
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL_JSON = Path(os.environ.get("CROSSMODAL_MODEL_JSON", "/models/model.json"))


def model_flags(model: dict) -> list[str]:
    """{"model": ..., "model_options": {...}} (crossmodal.download) -> app.py's flags for that model."""
    name = model["model"]
    options = model.get("model_options") or {}
    flags = ["--model", name]
    if name == "vsepp":
        flags += ["--checkpoint", options["checkpoint"], "--vocab", options["vocab"]]
    elif name == "clip":
        flags += ["--clip-arch", options["arch"], "--clip-pretrained", options["pretrained"]]
    elif name != "offline":
        raise ValueError(f"{MODEL_JSON}: unknown model {name!r}")
    return flags


def index_argv(argv: list[str], model_json: Path = MODEL_JSON) -> list[str]:
    flags = model_flags(json.loads(model_json.read_text())) if model_json.is_file() else []
    return ["-t", "index", *flags, *argv]


def main(argv: list[str] | None = None) -> int:
    argv = index_argv(list(sys.argv[1:] if argv is None else argv))
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    import app

    return app.main(argv)


if __name__ == "__main__":
    sys.exit(main())
