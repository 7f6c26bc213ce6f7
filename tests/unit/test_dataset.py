"""Dataset readers on tiny copies of each on-disk format, made here with real (small) JPEGs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from crossmodal.index.ids import caption_doc_id, image_doc_id
from dataset import (
    DEMO_MANIFEST,
    ImageCaptions,
    open_dataset,
    parse_f8k_line,
)

COMMA_CAPTION = "A dog, a cat, and a bird sit on a bench ."
QUOTED_LINE = 'b.jpg,"A man holds a sign saying ""stop"" , then walks away ."'
QUOTED_CAPTION = 'A man holds a sign saying "stop" , then walks away .'


def write_jpeg(path: Path, colour: tuple[int, int, int] = (200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 6), colour).save(path, format="JPEG")
    return path


def write_f8k(root: Path, images_folder: str = "Images") -> Path:
    """Three images (a, b, c), five caption lines each, Kaggle captions.txt layout."""
    lines = ["image,caption"]
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        write_jpeg(root / images_folder / name)
        lines += [f"{name},{name} caption {i} ." for i in range(4)]
    lines[1] = f"a.jpg,{COMMA_CAPTION}"
    lines[5] = QUOTED_LINE
    lines.append("c.jpg,   ")  # blank caption: dropped
    (root / "captions.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def karpathy(entries: list[tuple[str, str, list[str]]], **extra: str) -> dict:
    return {
        "dataset": "flickr",
        "images": [
            {
                "filename": name,
                "split": split,
                "sentences": [{"raw": raw, "tokens": raw.split()} for raw in captions],
                **extra,
            }
            for name, split, captions in entries
        ],
    }


# ids ---------------------------------------------------------------------------------------------


def test_ids_are_stable_distinct_and_url_safe() -> None:
    first = image_doc_id("f8k/1000268201_693b08cb0e.jpg")
    assert first == image_doc_id("f8k/1000268201_693b08cb0e.jpg")
    assert first != image_doc_id("f30k/1000268201_693b08cb0e.jpg")
    assert re.fullmatch(r"img-[0-9a-f]{16}", first)
    captions = {caption_doc_id("f8k/x.jpg", i) for i in range(5)}
    assert len(captions) == 5
    assert caption_doc_id("f8k/x.jpg", 2) == caption_doc_id("f8k/x.jpg", 2)
    assert caption_doc_id("f8k/x.jpg", 0) != caption_doc_id("f8k/y.jpg", 0)
    assert caption_doc_id("f8k/x.jpg", 3).startswith("txt-" + image_doc_id("f8k/x.jpg")[4:])


# Flickr8k ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (f"a.jpg,{COMMA_CAPTION}", ("a.jpg", COMMA_CAPTION)),
        (QUOTED_LINE, ("b.jpg", QUOTED_CAPTION)),
        ('c.jpg,A boy says "hi" , smiling .', ("c.jpg", 'A boy says "hi" , smiling .')),
        ('d.jpg,"Stop" signs , red and white .', ("d.jpg", '"Stop" signs , red and white .')),
        ("no comma here", None),
    ],
)
def test_f8k_line_splits_on_first_comma_and_unquotes_only_whole_fields(
    line: str, expected: tuple[str, str] | None
) -> None:
    assert parse_f8k_line(line) == expected


@pytest.mark.parametrize("images_folder", ["Images", "images"])
def test_f8k_without_split_file(tmp_path: Path, images_folder: str) -> None:
    reader = open_dataset("f8k", write_f8k(tmp_path, images_folder))
    items = list(reader)
    assert [item.pair_id for item in items] == ["f8k/a.jpg", "f8k/b.jpg", "f8k/c.jpg"]
    assert all(len(item.captions) == 4 for item in items)
    assert items[0].captions[0] == COMMA_CAPTION
    assert items[1].captions[0] == QUOTED_CAPTION
    assert {item.split for item in items} == {"all"}
    assert items[2].image_path == tmp_path / images_folder / "c.jpg"
    assert all(item.image_path.is_absolute() for item in items)
    assert reader.skipped == []


def test_f8k_split_requested_without_split_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dataset_flickr8k.json"):
        open_dataset("f8k", write_f8k(tmp_path), split="test")


def test_f8k_with_karpathy_splits(tmp_path: Path) -> None:
    write_f8k(tmp_path)
    splits = karpathy([("a.jpg", "train", ["x"]), ("b.jpg", "test", ["y"])])
    (tmp_path / "dataset_flickr8k.json").write_text(json.dumps(splits))
    items = {item.pair_id: item for item in open_dataset("f8k", tmp_path)}
    assert items["f8k/a.jpg"].split == "train"
    assert items["f8k/b.jpg"].split == "test"
    assert items["f8k/c.jpg"].split == "all"  # not listed in the JSON
    assert len(items["f8k/b.jpg"].captions) == 4  # captions come from captions.txt, not the JSON
    test_only = list(open_dataset("f8k", tmp_path, split="test"))
    assert [item.pair_id for item in test_only] == ["f8k/b.jpg"]


def test_missing_and_corrupt_images_are_skipped_and_reported(tmp_path: Path) -> None:
    write_f8k(tmp_path)
    (tmp_path / "Images" / "a.jpg").unlink()
    (tmp_path / "Images" / "b.jpg").write_bytes(b"this is not a jpeg")
    reader = open_dataset("f8k", tmp_path)
    assert [item.pair_id for item in reader] == ["f8k/c.jpg"]
    reasons = {skip.item: skip.reason for skip in reader.skipped}
    assert reasons["f8k/a.jpg"] == "image file missing"
    assert reasons["f8k/b.jpg"].startswith("image unreadable:")
    list(reader)
    assert len(reader.skipped) == 2  # a second pass restarts the report instead of appending


def test_f8k_bad_line_and_captionless_image_are_reported(tmp_path: Path) -> None:
    write_jpeg(tmp_path / "Images" / "a.jpg")
    write_jpeg(tmp_path / "Images" / "e.jpg")
    text = "image,caption\na.jpg,A red square .\nline without comma\ne.jpg,  \n"
    (tmp_path / "captions.txt").write_text(text)
    reader = open_dataset("f8k", tmp_path)
    assert [item.captions for item in reader] == [("A red square .",)]
    assert {(skip.item, skip.reason) for skip in reader.skipped} == {
        ("captions.txt line 3", "expected 'image,caption'"),
        ("e.jpg", "no captions"),
    }


# Flickr30k ---------------------------------------------------------------------------------------


def write_f30k(root: Path, images_folder: str = "images") -> Path:
    entries = [
        ("3.jpg", "test", ["Two dogs run .", "  ", "Dogs play in snow ."]),
        ("1.jpg", "train", ["A man rides a bike ."]),
        ("2.jpg", "val", ["A woman sings ."]),
        ("4.jpg", "restval", ["A child laughs ."]),
    ]
    for name, _, _ in entries:
        write_jpeg(root / images_folder / name)
    (root / "dataset_flickr30k.json").write_text(json.dumps(karpathy(entries)))
    return root


def test_f30k_reads_splits_in_sorted_order(tmp_path: Path) -> None:
    items = list(open_dataset("f30k", write_f30k(tmp_path)))
    assert [(item.pair_id, item.split) for item in items] == [
        ("f30k/1.jpg", "train"),
        ("f30k/2.jpg", "val"),
        ("f30k/3.jpg", "test"),
        ("f30k/4.jpg", "restval"),
    ]
    assert items[2].captions == ("Two dogs run .", "Dogs play in snow .")
    assert all(item.dataset == "f30k" for item in items)


@pytest.mark.parametrize("split", ["train", "val", "test", "restval"])
def test_f30k_split_filter(tmp_path: Path, split: str) -> None:
    items = list(open_dataset("f30k", write_f30k(tmp_path), split=split))
    assert len(items) == 1
    assert items[0].split == split


def test_f30k_accepts_kaggle_images_folder(tmp_path: Path) -> None:
    write_f30k(tmp_path, images_folder="flickr30k_images")
    assert len(list(open_dataset("f30k", tmp_path))) == 4


def test_karpathy_filepath_is_joined(tmp_path: Path) -> None:
    write_jpeg(tmp_path / "images" / "val2014" / "x.jpg")
    data = karpathy([("x.jpg", "test", ["A clock tower ."])], filepath="val2014")
    (tmp_path / "dataset_flickr30k.json").write_text(json.dumps(data))
    [item] = open_dataset("f30k", tmp_path)
    assert item.pair_id == "f30k/val2014/x.jpg"
    assert item.image_path == tmp_path / "images" / "val2014" / "x.jpg"


# Folder ------------------------------------------------------------------------------------------


def test_folder_csv(tmp_path: Path) -> None:
    root = tmp_path / "holiday"
    write_jpeg(root / "beach.jpg")
    write_jpeg(root / "sub" / "dog.jpg")
    write_jpeg(root / "uncaptioned.png")
    write_jpeg(root / ".hidden" / "thumb.jpg")
    rows = [
        "image,caption,split",
        "beach.jpg,Waves on a sandy beach,test",
        'beach.jpg,"A beach, the sea and ""sun""",test',
        "sub/dog.jpg,A dog on a sofa,train",
        "missing.jpg,Nothing here,train",
        "../escape.jpg,Outside the folder,train",
        "sub/dog.jpg,A dog in the wrong split,test",
    ]
    (root / "captions.csv").write_text("\n".join(rows) + "\n")
    reader = open_dataset("folder", root)
    items = {item.pair_id: item for item in reader}
    assert set(items) == {
        "folder/holiday/beach.jpg",
        "folder/holiday/sub/dog.jpg",
        "folder/holiday/uncaptioned.png",
    }
    beach = items["folder/holiday/beach.jpg"]
    assert beach.captions == ("Waves on a sandy beach", 'A beach, the sea and "sun"')
    assert beach.split == "test"
    assert items["folder/holiday/sub/dog.jpg"].captions == ("A dog on a sofa",)
    assert items["folder/holiday/uncaptioned.png"].captions == ()
    assert items["folder/holiday/uncaptioned.png"].split == "all"
    reasons = {skip.item: skip.reason for skip in reader.skipped}
    assert reasons["folder/holiday/missing.jpg"] == "image file missing"
    assert "outside the folder" in reasons["captions.csv line 6"]
    assert "contradicts" in reasons["captions.csv line 7"]
    test_only = list(open_dataset("folder", root, split="test"))
    assert [item.pair_id for item in test_only] == ["folder/holiday/beach.jpg"]


def test_folder_json(tmp_path: Path) -> None:
    write_jpeg(tmp_path / "a.jpg")
    write_jpeg(tmp_path / "b.jpg")
    captions = {"a.jpg": ["A red square", " ", "Red"], "b.jpg": "not a list", "gone.jpg": ["x"]}
    (tmp_path / "captions.json").write_text(json.dumps(captions))
    reader = open_dataset("folder", tmp_path)
    items = list(reader)
    assert [(item.pair_id.rsplit("/", 1)[1], item.captions) for item in items] == [
        ("a.jpg", ("A red square", "Red")),
        ("b.jpg", ()),
    ]
    assert {item.split for item in items} == {"all"}
    assert {skip.reason for skip in reader.skipped} == {
        "captions must be a list of strings",
        "image file missing",
    }
    with pytest.raises(ValueError, match="no split information"):
        open_dataset("folder", tmp_path, split="test")


def test_a_folder_without_captions_file_is_a_library_of_every_image(tmp_path: Path) -> None:
    root = tmp_path / "Pictures"
    write_jpeg(root / "a.jpg")
    write_jpeg(root / "2024" / "b.png")
    (root / ".thumbnails").mkdir()
    write_jpeg(root / ".thumbnails" / "a.jpg")
    reader = open_dataset("folder", root)
    assert reader.is_library and reader.library == "Pictures" and reader.captions_file is None
    assert [(item.pair_id, item.captions) for item in reader] == [
        ("folder/Pictures/2024/b.png", ()), ("folder/Pictures/a.jpg", ())]
    with pytest.raises(ValueError, match="no split information"):
        open_dataset("folder", root, split="test")
    (root / "captions.json").write_text(json.dumps({"a.jpg": ["A photo"]}))
    captioned = open_dataset("folder", root)
    assert not captioned.is_library and captioned.captions_file == root / "captions.json"


def test_text_that_is_not_valid_unicode_is_skipped_and_reported(tmp_path: Path) -> None:
    """JSON's \\ud800 escapes give strings no index can store: the captions and file names carrying them are left out,
    reported, and the rest of the photo is kept (the class of input, in the caption lists of folder and f30k)."""
    write_jpeg(tmp_path / "photos" / "a.jpg")
    write_jpeg(tmp_path / "photos" / "b.jpg")
    (tmp_path / "photos" / "captions.json").write_text(
        '{"a.jpg": ["A red square", "bad \\ud800 caption", "Red"], "b\\udc80.jpg": ["x"], "b.jpg": ["\\udfff"]}')
    reader = open_dataset("folder", tmp_path / "photos")
    items = {item.pair_id.rsplit("/", 1)[1]: item.captions for item in reader}
    assert items == {"a.jpg": ("A red square", "Red"), "b.jpg": ()}
    reasons = {skip.item.rsplit("/", 1)[1]: skip.reason for skip in reader.skipped}
    assert reasons["a.jpg caption 2"].startswith("caption is not valid Unicode text (a lone surrogate")
    assert reasons["b.jpg caption 1"].startswith("caption is not valid Unicode text")
    assert any(name.startswith("b\\udc80.jpg") and reason.startswith("file name is not valid Unicode")
               for name, reason in reasons.items())
    for skip in reader.skipped:
        skip.item.encode("utf-8")  # a report that can be printed

    f30k = tmp_path / "f30k"
    write_jpeg(f30k / "images" / "1.jpg")
    (f30k / "dataset_flickr30k.json").write_text(json.dumps({"images": [
        {"filename": "1.jpg", "split": "test", "sentences": [{"raw": "ok"}, {"raw": "\ud800"}]}]}))
    reader = open_dataset("f30k", f30k)
    assert [item.captions for item in reader] == [("ok",)]
    assert [skip.item for skip in reader.skipped] == ["f30k/1.jpg caption 2"]


# open_dataset errors -----------------------------------------------------------------------------


def test_open_dataset_errors_say_what_is_expected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown dataset 'coco'.*demo, f8k, f30k, folder"):
        open_dataset("coco")
    with pytest.raises(ValueError, match="captions.txt"):
        open_dataset("f8k", tmp_path / "nowhere")
    with pytest.raises(ValueError, match="dataset_flickr30k.json"):
        open_dataset("f30k", tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        open_dataset("folder", tmp_path / "nowhere")
    with pytest.raises(ValueError, match="needs a data directory"):
        open_dataset("folder")
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        open_dataset("f30k", write_f30k(tmp_path), split="dev")


def test_f8k_without_images_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "captions.txt").write_text("image,caption\n")
    with pytest.raises(ValueError, match="Images, images"):
        open_dataset("f8k", tmp_path)


# Demo --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[ImageCaptions]]:
    workspace = tmp_path_factory.mktemp("workspace")
    reader = open_dataset("demo", workspace=workspace)
    items = list(reader)
    assert reader.skipped == []
    return workspace, items


def test_demo_photos_all_materialise_and_open(
    demo_run: tuple[Path, list[ImageCaptions]],
) -> None:
    workspace, items = demo_run
    manifest = json.loads(DEMO_MANIFEST.read_text())
    assert len(items) == len(manifest["photos"]) >= 15
    for item in items:
        assert item.image_path.parent == workspace / "demo_images"
        with Image.open(item.image_path) as image:
            image.load()
            assert image.mode == "RGB"
            assert min(image.size) >= 100
        assert len(item.captions) >= 2
        assert (item.dataset, item.split) == ("demo", "test")
    names = {item.image_path.stem for item in items}
    assert {"coffee", "chelsea_cat", "astronaut", "grace_hopper", "china"} <= names
    assert len({image_doc_id(item.pair_id) for item in items}) == len(items)


def test_demo_second_run_does_not_rewrite(demo_run: tuple[Path, list[ImageCaptions]]) -> None:
    workspace, items = demo_run
    before = {item.image_path: item.image_path.stat().st_mtime_ns for item in items}
    again = list(open_dataset("demo", workspace=workspace))
    assert [item.pair_id for item in again] == [item.pair_id for item in items]
    assert {item.image_path: item.image_path.stat().st_mtime_ns for item in again} == before
    assert sorted(p.name for p in (workspace / "demo_images").iterdir()) == sorted(
        p.name for p in before
    )


def test_demo_manifest_entries_are_complete() -> None:
    photos = json.loads(DEMO_MANIFEST.read_text())["photos"]
    assert len({photo["name"] for photo in photos}) == len(photos)
    for photo in photos:
        assert photo["licence"].strip() and photo["attribution"].strip(), photo["name"]
        assert len(photo["captions"]) == 3, photo["name"]
        assert len(set(photo["captions"])) == 3, photo["name"]
