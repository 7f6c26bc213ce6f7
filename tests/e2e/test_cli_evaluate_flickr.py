"""`app.py -t evaluate -d f30k` runs the standard protocol on a tiny Flickr30k copy in the original on-disk format."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from dataset import open_dataset

REPO_ROOT = Path(__file__).resolve().parents[2]


def make_flickr30k(root: Path, workspace: Path) -> int:
    """dataset_flickr30k.json (Karpathy format) + images/, with real demo photos standing in for Flickr's."""
    images = root / "images"
    images.mkdir(parents=True)
    entries = []
    for number, pair in enumerate(list(open_dataset("demo", workspace=workspace))[:6]):
        name = f"{1000092795 + number}.jpg" if pair.image_path.suffix == ".jpg" else f"{1000092795 + number}.png"
        shutil.copy(pair.image_path, images / name)
        entries.append({"filename": name, "imgid": number, "split": "test" if number < 4 else "train",
                        "sentids": [2 * number, 2 * number + 1],
                        "sentences": [{"raw": caption, "tokens": caption.lower().split(), "imgid": number,
                                       "sentid": 2 * number + k} for k, caption in enumerate(pair.captions[:2])]})
    (root / "dataset_flickr30k.json").write_text(json.dumps({"images": entries, "dataset": "flickr30k"}))
    return sum(entry["split"] == "test" for entry in entries)


def test_evaluate_f30k_test_split(tmp_path):
    test_images = make_flickr30k(tmp_path / "f30k", tmp_path / "demo")
    output = tmp_path / "metrics.json"
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "app.py"), "-t", "evaluate", "-d", "f30k", "--data-dir", str(tmp_path / "f30k"),
         "--split", "test", "--workspace", str(tmp_path / "workspace"), "--output", str(output)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
        env={**os.environ, "JINA_OPTOUT_TELEMETRY": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads(output.read_text())
    assert (metrics["dataset"], metrics["split"], metrics["model"]) == ("f30k", "test", "offline")
    assert metrics["images"] == test_images and metrics["captions"] == 2 * test_images  # the train photos are left out
    assert metrics["image_to_text"]["queries"] == test_images
    assert metrics["text_to_image"]["queries"] == 2 * test_images
    for direction in ("image_to_text", "text_to_image"):
        recalls = [metrics[direction][f"R@{k}"] for k in (1, 5, 10)]
        assert 0 <= recalls[0] <= recalls[1] <= recalls[2] == 100.0  # 4 photos, 8 captions: everything within 10
    assert metrics["rsum"] == sum(metrics[d][f"R@{k}"] for d in ("image_to_text", "text_to_image") for k in (1, 5, 10))
    assert metrics["published"] == []  # none for the offline model; VSE++/CLIP print theirs
    assert "image_to_text" in result.stdout and "rsum" in result.stdout
