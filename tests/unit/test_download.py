"""Dataset download: the lay-out step on small archives in the Kaggle layouts, and the one-line failures."""
from __future__ import annotations

import io
import json
import shutil
import socket
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from crossmodal.download import DownloadError, download_dataset, find_kaggle_credentials, lay_out_archive
from dataset import open_dataset

F8K_IMAGES = ("1000268201_693b08cb0e.jpg", "1001773457_577c3a7d70.jpg")
F30K_IMAGES = ("1000092795.jpg", "10002456.jpg", "1000268201.jpg")


def jpeg(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def f8k_archive(path: Path) -> Path:
    """adityajn105/flickr8k: Images/*.jpg and captions.txt (CSV, 'image,caption', 5 lines per image)."""
    lines = ["image,caption"]
    for number, image in enumerate(F8K_IMAGES):
        lines += [f"{image},A child in a pink dress is climbing up a set of stairs , caption {i} ." for i in range(4)]
        lines.append(f'{image},"A dog, a ""ball"" and stairs {number} ."')
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr("captions.txt", "\n".join(lines) + "\n")
        for number, image in enumerate(F8K_IMAGES):
            bundle.writestr(f"Images/{image}", jpeg((40 * number, 90, 200)))
        bundle.writestr("__MACOSX/Images/._1000268201_693b08cb0e.jpg", b"resource fork")
        bundle.writestr("Images/../../escaped.jpg", jpeg((1, 2, 3)))
    return path


def f30k_archive(path: Path, with_splits: bool = False) -> Path:
    """hsankesara/flickr-image-dataset: flickr30k_images/flickr30k_images/*.jpg and flickr30k_images/results.csv."""
    rows = ["image_name| comment_number| comment"]
    rows += [f"{image}| {i}| Two young guys with shaggy hair look at their hands {i} ." for image in F30K_IMAGES
             for i in range(5)]
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr("flickr30k_images/results.csv", "\n".join(rows) + "\n")
        for number, image in enumerate(F30K_IMAGES):
            bundle.writestr(f"flickr30k_images/flickr30k_images/{image}", jpeg((200, 60 * number, 10)))
        if with_splits:
            bundle.writestr("flickr30k_images/dataset_flickr30k.json", json.dumps(karpathy_json()))
    return path


def karpathy_json() -> dict:
    splits = ("train", "val", "test")
    return {"dataset": "flickr30k", "images": [
        {"filename": image, "split": splits[n], "imgid": n, "sentids": list(range(5 * n, 5 * n + 5)),
         "sentences": [{"raw": f"Caption {i} of {image} .", "tokens": [], "imgid": n, "sentid": 5 * n + i}
                       for i in range(5)]}
        for n, image in enumerate(F30K_IMAGES)]}


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_CONFIG_DIR", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(socket, "create_connection", refuse)
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_f8k_archive_is_laid_out_as_the_reader_expects(tmp_path):
    data_dir = tmp_path / "data" / "f8k"
    summary = lay_out_archive("f8k", f8k_archive(tmp_path / "flickr8k.zip"), data_dir)
    assert summary.images == 2 and summary.files == ["captions.txt"]
    assert sorted(p.name for p in (data_dir / "images").iterdir()) == sorted(F8K_IMAGES)
    assert not list(tmp_path.rglob("escaped.jpg")) and not list(tmp_path.rglob("._*"))
    assert "dataset_flickr8k.json" in summary.missing_splits and "caption_datasets.zip" in summary.missing_splits
    pairs = list(open_dataset("f8k", data_dir=data_dir))
    assert [pair.image_path.name for pair in pairs] == sorted(F8K_IMAGES)
    assert all(len(pair.captions) == 5 for pair in pairs)
    assert pairs[0].captions[4] == 'A dog, a "ball" and stairs 0 .'


def test_laying_out_again_keeps_what_is_there(tmp_path):
    archive, data_dir = f8k_archive(tmp_path / "flickr8k.zip"), tmp_path / "f8k"
    lay_out_archive("f8k", archive, data_dir)
    again = lay_out_archive("f8k", archive, data_dir)
    assert again.images == 0 and again.already_there == 2
    assert not [p for p in data_dir.rglob("*") if p.name.endswith(".part")]


def test_f30k_archive_is_laid_out_and_needs_the_karpathy_file(tmp_path):
    data_dir = tmp_path / "f30k"
    summary = lay_out_archive("f30k", f30k_archive(tmp_path / "flickr-image-dataset.zip"), data_dir)
    assert summary.images == 3 and summary.files == ["results.csv"]
    assert sorted(p.name for p in (data_dir / "images").iterdir()) == sorted(F30K_IMAGES)
    assert str(data_dir / "dataset_flickr30k.json") in summary.missing_splits
    assert "\n" not in summary.missing_splits
    with pytest.raises(ValueError, match="dataset_flickr30k.json"):
        open_dataset("f30k", data_dir=data_dir)
    (data_dir / "dataset_flickr30k.json").write_text(json.dumps(karpathy_json()))
    test_pairs = list(open_dataset("f30k", data_dir=data_dir, split="test"))
    assert [pair.image_path.name for pair in test_pairs] == ["1000268201.jpg"]
    assert len(test_pairs[0].captions) == 5


def test_a_karpathy_file_inside_the_archive_is_used(tmp_path):
    data_dir = tmp_path / "f30k"
    summary = lay_out_archive("f30k", f30k_archive(tmp_path / "a.zip", with_splits=True), data_dir)
    assert summary.missing_splits is None and "dataset_flickr30k.json" in summary.files
    assert len(list(open_dataset("f30k", data_dir=data_dir))) == 3


def test_a_wrong_or_broken_archive_says_so_in_one_line(tmp_path):
    f8k = f8k_archive(tmp_path / "flickr8k.zip")
    with pytest.raises(DownloadError, match="not the Kaggle f30k archive"):
        lay_out_archive("f30k", f8k, tmp_path / "f30k")
    with pytest.raises(DownloadError, match="no captions.txt"):
        lay_out_archive("f8k", f30k_archive(tmp_path / "f30k.zip"), tmp_path / "f8k")
    broken = tmp_path / "broken.zip"
    broken.write_bytes(f8k.read_bytes()[:200])
    with pytest.raises(DownloadError, match="not a readable zip archive") as caught:
        lay_out_archive("f8k", broken, tmp_path / "f8k")
    assert "\n" not in str(caught.value)
    with pytest.raises(DownloadError, match="archive not found"):
        lay_out_archive("f8k", tmp_path / "nope.zip", tmp_path / "f8k")
    with pytest.raises(DownloadError, match="only f8k, f30k"):
        lay_out_archive("coco", f8k, tmp_path / "coco")


def test_without_a_token_the_error_is_one_line(tmp_path, no_credentials):
    assert find_kaggle_credentials() is None
    with pytest.raises(DownloadError) as caught:
        download_dataset("f8k", tmp_path / "f8k")
    message = str(caught.value)
    assert "\n" not in message
    assert "no Kaggle API token" in message and "~/.kaggle/kaggle.json" in message
    assert "https://www.kaggle.com/datasets/adityajn105/flickr8k" in message and "--archive" in message


def test_credentials_are_found_where_kaggle_looks(tmp_path, no_credentials, monkeypatch):
    (no_credentials / ".kaggle").mkdir()
    (no_credentials / ".kaggle" / "kaggle.json").write_text('{"username": "u", "key": "k"}')
    assert find_kaggle_credentials().endswith("kaggle.json")
    monkeypatch.setenv("KAGGLE_API_TOKEN", "token")
    assert find_kaggle_credentials() == "KAGGLE_API_TOKEN"


def test_without_network_the_error_is_one_line(tmp_path, no_credentials, no_network, monkeypatch):
    monkeypatch.setenv("KAGGLE_API_TOKEN", "not-a-real-token")
    with pytest.raises(DownloadError) as caught:
        download_dataset("f30k", tmp_path / "f30k")
    message = str(caught.value)
    assert "\n" not in message and "cannot reach www.kaggle.com" in message
    assert "hsankesara/flickr-image-dataset" in message


class FakeKaggleApi:
    """Stands for KaggleApi: 'downloads' a prepared archive the way dataset_download_files names it."""

    def __init__(self, archive: Path | None = None, error: Exception | None = None) -> None:
        self.archive, self.error, self.calls = archive, error, []

    def dataset_download_files(self, dataset, path=None, force=False, quiet=True, unzip=False):
        self.calls.append((dataset, unzip))
        if self.error:
            raise self.error
        shutil.copy(self.archive, Path(path) / (dataset.split("/")[1] + ".zip"))


def test_download_lays_out_what_kaggle_delivers(tmp_path):
    api = FakeKaggleApi(f8k_archive(tmp_path / "prepared.zip"))
    data_dir = tmp_path / "data" / "f8k"
    summary = download_dataset("f8k", data_dir, api=api)
    assert api.calls == [("adityajn105/flickr8k", False)]
    assert summary.images == 2 and (data_dir / "captions.txt").is_file()
    assert not (data_dir / ".download").exists()
    assert "2 images written" in summary.report()


def test_a_failing_kaggle_download_is_one_line(tmp_path):
    api = FakeKaggleApi(error=ConnectionError("HTTPSConnectionPool(host='www.kaggle.com', port=443):\nMax retries"))
    with pytest.raises(DownloadError) as caught:
        download_dataset("f8k", tmp_path / "f8k", api=api)
    assert "\n" not in str(caught.value) and "Kaggle download of adityajn105/flickr8k failed" in str(caught.value)


def test_an_archive_downloaded_by_hand_is_laid_out(tmp_path, no_credentials):
    archive = f30k_archive(tmp_path / "flickr-image-dataset.zip")
    summary = download_dataset("f30k", tmp_path / "f30k", archive=archive)
    assert summary.images == 3 and archive.is_file()


# --- model weights (the Dockerfiles' build step) ---------------------------------------------------------------------

def make_tar(path: Path, members: dict[str, bytes]) -> Path:
    import tarfile

    with tarfile.open(path, "w") as bundle:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            bundle.addfile(info, io.BytesIO(content))
    return path


def test_vsepp_weights_are_taken_from_runs_tar_and_vocab_tar(tmp_path):
    from crossmodal.download import main

    site = tmp_path / "site"
    site.mkdir()
    make_tar(site / "runs.tar", {"runs/coco_vse++/model_best.pth.tar": b"coco",
                                 "runs/f30k_vse++_vggfull/checkpoint.pth.tar": b"last",
                                 "runs/f30k_vse++_vggfull/model_best.pth.tar": b"best"})
    make_tar(site / "vocab.tar", {"vocab/coco_vocab.pkl": b"coco", "vocab/f30k_vocab.pkl": b"f30k"})
    output = tmp_path / "models" / "model.json"
    code = main(["weights", "--model", "vsepp", "--to", str(tmp_path / "models"), "--vsepp-url", site.as_uri(),
                 "--output", str(output)])
    assert code == 0
    result = json.loads(output.read_text())
    assert result["model"] == "vsepp"
    assert Path(result["model_options"]["checkpoint"]).read_bytes() == b"best"
    checkpoint = Path(result["model_options"]["checkpoint"])
    assert checkpoint.parts[-3:] == ("runs", "f30k_vse++_vggfull", "model_best.pth.tar")
    assert Path(result["model_options"]["vocab"]).read_bytes() == b"f30k"


def test_app_download_fetches_the_model_and_prints_the_flags_that_load_it(tmp_path, capsys):
    import app

    site = tmp_path / "site"
    site.mkdir()
    make_tar(site / "runs.tar", {"runs/f30k_vse++_vggfull/model_best.pth.tar": b"best"})
    make_tar(site / "vocab.tar", {"vocab/f30k_vocab.pkl": b"f30k"})
    models = tmp_path / "models"
    assert app.main(["-t", "download", "--model", "vsepp", "--vsepp-url", site.as_uri(),
                     "--models-dir", str(models)]) == 0
    checkpoint = models / "vsepp" / "runs" / "f30k_vse++_vggfull" / "model_best.pth.tar"
    vocab = models / "vsepp" / "vocab" / "f30k_vocab.pkl"
    assert checkpoint.read_bytes() == b"best" and vocab.read_bytes() == b"f30k"
    output = capsys.readouterr().out
    assert f"run with: --model vsepp --checkpoint {checkpoint} --vocab {vocab}" in output
    assert app.main(["-t", "download", "--model", "vsepp", "--vsepp-url", (tmp_path / "nowhere").as_uri(),
                     "--models-dir", str(models)]) == 2
    assert "error: cannot fetch" in capsys.readouterr().err


def test_the_fetch_flags_of_another_model_are_refused(tmp_path, capsys):
    from crossmodal.download import main

    with pytest.raises(SystemExit):
        main(["weights", "--model", "clip", "--vsepp-run", "x", "--to", str(tmp_path)])
    assert "--model clip takes no --vsepp-run" in capsys.readouterr().err


def test_missing_weights_say_so_in_one_line(tmp_path, capsys, no_network):
    from crossmodal.download import main

    site = tmp_path / "site"
    site.mkdir()
    make_tar(site / "runs.tar", {"runs/other/model_best.pth.tar": b"x"})
    assert main(["weights", "--model", "vsepp", "--to", str(tmp_path / "m"), "--vsepp-url", site.as_uri()]) == 2
    assert "has no f30k_vse++_vggfull/model_best.pth.tar" in capsys.readouterr().err
    assert main(["weights", "--model", "vsepp", "--to", str(tmp_path / "m"), "--vsepp-url",
                 (tmp_path / "nowhere").as_uri()]) == 2
    assert "cannot fetch" in capsys.readouterr().err
    assert main(["weights", "--model", "clip", "--to", str(tmp_path / "m")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "cannot reach huggingface.co" in error


def test_offline_weights_step_fills_the_class_prompt_cache(tmp_path, monkeypatch):
    from crossmodal.download import download_model_weights

    monkeypatch.setenv("CROSSMODAL_CACHE", str(tmp_path / "cache"))
    assert download_model_weights("offline", tmp_path / "models") == {"model": "offline", "model_options": {}}
    assert len(list((tmp_path / "cache").glob("conse-*.npy"))) == 1
