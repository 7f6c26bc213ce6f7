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

from crossmodal.backends import backend_spec

MODEL_JSON = Path(os.environ.get("CROSSMODAL_MODEL_JSON", "/models/model.json"))


def model_flags(model: dict) -> list[str]:
    """{"model": ..., "model_options": {...}} (crossmodal.download) -> app.py's flags for that model."""
    name = model["model"]
    try:
        return ["--model", name, *backend_spec(name).flags(model.get("model_options") or {})]
    except ValueError as error:
        raise ValueError(f"{MODEL_JSON}: {error}") from None


def index_argv(argv: list[str], model_json: Path = MODEL_JSON) -> list[str]:
    flags = model_flags(json.loads(model_json.read_text())) if model_json.is_file() else []
    return ["-t", "index", *flags, *argv]


def main(argv: list[str] | None = None) -> int:
    argv = index_argv(list(sys.argv[1:] if argv is None else argv))
    import app

    return app.main(argv)


if __name__ == "__main__":
    sys.exit(main())
