"""`app.py -t evaluate -d f30k` runs the standard protocol on a small Flickr30k copy in the original on-disk format.

The test split has 10 photos with 2 captions each: text->image ranks all 10 photos, so every caption's photo is
within the top 10 and R@10 must be 100, while a photo the ranking misses counts as rank 11 (depth + 1) and lowers
it. (With 4 photos, a miss was ranked 5, still "within 10", and R@10 = 100 could not fail.)
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dataset import open_dataset

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_PHOTOS, TRAIN_PHOTOS = 10, 2


def make_flickr30k(root: Path, workspace: Path) -> int:
    """dataset_flickr30k.json (Karpathy format) + images/, with real demo photos standing in for Flickr's."""
    images = root / "images"
    images.mkdir(parents=True)
    entries = []
    for number, pair in enumerate(list(open_dataset("demo", workspace=workspace))[:TEST_PHOTOS + TRAIN_PHOTOS]):
        name = f"{1000092795 + number}.jpg" if pair.image_path.suffix == ".jpg" else f"{1000092795 + number}.png"
        shutil.copy(pair.image_path, images / name)
        entries.append({"filename": name, "imgid": number, "split": "test" if number < TEST_PHOTOS else "train",
                        "sentids": [2 * number, 2 * number + 1],
                        "sentences": [{"raw": caption, "tokens": caption.lower().split(), "imgid": number,
                                       "sentid": 2 * number + k} for k, caption in enumerate(pair.captions[:2])]})
    (root / "dataset_flickr30k.json").write_text(json.dumps({"images": entries, "dataset": "flickr30k"}))
    return sum(entry["split"] == "test" for entry in entries)


@pytest.mark.slow
def test_evaluate_f30k_test_split(tmp_path):
    test_images = make_flickr30k(tmp_path / "f30k", tmp_path / "demo")
    assert test_images == TEST_PHOTOS
    output = tmp_path / "metrics.json"
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "app.py"), "-t", "evaluate", "-d", "f30k", "--data-dir",
         str(tmp_path / "f30k"), "--split", "test", "--workspace", str(tmp_path / "workspace"),
         "--output", str(output)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
        env={**os.environ, "JINA_OPTOUT_TELEMETRY": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads(output.read_text())
    assert (metrics["dataset"], metrics["split"], metrics["model"]) == ("f30k", "test", "offline")
    assert metrics["images"] == test_images and metrics["captions"] == 2 * test_images  # train photos left out
    image_to_text, text_to_image = metrics["image_to_text"], metrics["text_to_image"]
    assert (image_to_text["queries"], image_to_text["depth"]) == (test_images, 2 * test_images)
    assert (text_to_image["queries"], text_to_image["depth"]) == (2 * test_images, test_images)
    # Every photo is ranked: a caption's own photo is always found, within the depth of 10, so R@10 is 100 and no
    # rank reaches depth + 1 = 11. A miss would be rank 11: R@10 below 100, meanr raised.
    assert text_to_image["R@10"] == 100.0, text_to_image
    # image->text ranks all 20 captions (a miss would be rank 21); with this model each photo's own caption is
    # within the top 10 (measured: R@10 = 100), so a lost match shows.
    assert image_to_text["R@10"] == 100.0, image_to_text
    for direction in (image_to_text, text_to_image):
        recalls = [direction[f"R@{k}"] for k in (1, 5, 10)]
        assert 0 < recalls[0] <= recalls[1] <= recalls[2], direction
        assert direction["medr"] <= 10 and direction["meanr"] <= 10, direction
    assert metrics["rsum"] == sum(metrics[d][f"R@{k}"] for d in ("image_to_text", "text_to_image") for k in (1, 5, 10))
    assert metrics["published"] == []  # none for the offline model; VSE++/CLIP print theirs
    assert "image_to_text" in result.stdout and "rsum" in result.stdout
