"""Relevance on a caption-less library (issue 21): the held-out caption-less set, before and after, by mode.

Builds the held-out library (bench/caption_less_data.build_heldout: Debian packages' photos under camera-style
names, three folders, a `_small` resized copy, a byte copy and an edit), indexes it as a photo-folder sync does
(records, metadata with every path, perceptual signatures; the offline model's vectors; no captions), and asks the
gateway's own answer code (serving.http.answers.AnswerBuilder, ranking, keyword search, calibration) for each query's
first page (LIMIT matches, near-duplicates folded), in hybrid and semantic mode. "Before" runs that code as it was at
BEFORE (the last commit before issue 21's caption-less relevance and file-name rules: a caption-ful calibration for
every photo, every query word searched in file names), from a git worktree; "after" runs this checkout's.

Reported per version and mode: of the answerable queries, the right photo first and in the top 3; of the
right-first ones, the share flagged no_good_match (issue 21's target: <= 10 %); of the queries about absent things,
the share flagged (target: >= 85 %). Refuses to run on a held-out set with fewer than 20 answerable or 6 absent
queries, or one that shares a photo with the calibration set or the demo.

    .venv/bin/python bench/caption_less_report.py   # writes results/caption_less_relevance.json
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import numpy as np

# Nothing of the project is imported here: the child process that answers for a version imports it from that
# version's checkout (`--answer`), the parent from this one (`report`).
ROOT = Path(__file__).resolve().parent.parent
BEFORE = "a8530a1"  # the commit before issue 21's caption-less relevance (737cb13)
OUTPUT = ROOT / "results" / "caption_less_relevance.json"
LIBRARY = "heldout"
LIMIT = 10  # the page's first page: no_good_match is decided on it, as the page shows it
MODES = ("hybrid", "semantic")
MIN_ANSWERABLE, MIN_ABSENT = 20, 6


def layout_module(before: str, now: str) -> ModuleType:
    """A module of the checkout on sys.path by its name at BEFORE, else by its name since the core was split into
    packages (issue 22). The old name is tried first: the venv's editable install would find a new name in this
    checkout even for the BEFORE one, and mix the two versions; an old name exists in no checkout after the split."""
    try:
        return importlib.import_module(before)
    except ImportError:
        return importlib.import_module(now)


def index_library(root: Path, folders: dict[str, Path], model: str) -> dict[str, str]:
    """Index the photos under `root` as the photo-folder sync does (serving/jobs/sync.py); their ids by path."""
    from PIL import Image

    from crossmodal.backends import create_backend
    from crossmodal.index.tags import METADATA_TAG, record_from_document
    from crossmodal.library import photo_id, photo_pair_id
    from crossmodal.library.metadata import read_photo_metadata
    from crossmodal.library.perceptual_hash import SIGNATURE_TAG, bytes_signature
    from crossmodal.modality import IMAGE, TEXT

    VectorStore = layout_module("crossmodal.store", "crossmodal.index").VectorStore  # noqa: N806
    paths: dict[str, list[str]] = {}
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        paths.setdefault(hashlib.sha256(file.read_bytes()).hexdigest(), []).append(file.relative_to(root).as_posix())
    backend = create_backend(model, towers=("image",))
    records, images = [], []
    for sha256, names in paths.items():
        metadata = read_photo_metadata(root / names[0], root).as_dict()
        metadata["paths"] = names
        tags = {"pair_id": photo_pair_id(LIBRARY, sha256), "dataset": "folder", "split": "all",  # sync.py's
                METADATA_TAG: json.dumps(metadata), SIGNATURE_TAG: bytes_signature((root / names[0]).read_bytes())}
        records.append(record_from_document(photo_id(LIBRARY, sha256), IMAGE, None, str(root / names[0]), tags))
        with Image.open(root / names[0]) as image:
            images.append(image.convert("RGB"))
    vectors = np.asarray(backend.encode_images(images), dtype=np.float32)
    with VectorStore(folders[IMAGE], IMAGE, model, vectors.shape[1]) as store:
        store.add(records, vectors)
    VectorStore(folders[TEXT], TEXT, model, vectors.shape[1]).close()  # a caption index, empty: no captions
    return {name: record.id for record, names in zip(records, paths.values()) for name in names}


def answers(folders: dict[str, Path], workspace: Path, model: str, texts: list[str], vectors: np.ndarray) -> dict:
    """Each text's first page in each mode, as the checkout first on sys.path answers it: ids, relevances, flag."""
    from crossmodal.modality import IMAGE, TEXT
    from serving.http.answers import AnswerBuilder, FlowResult, search_depth
    from serving.http.plans import SearchPlan
    from serving.http.queries import Query
    from serving.wire import MatchDoc

    VectorStore = layout_module("crossmodal.store", "crossmodal.index").VectorStore  # noqa: N806
    wire_tags_of_record = layout_module("crossmodal.records", "crossmodal.index.tags").wire_tags_of_record
    builder = AnswerBuilder(folders, workspace)
    found: dict[str, list[dict]] = {mode: [] for mode in MODES}
    with VectorStore(folders[IMAGE], IMAGE, model, vectors.shape[1]) as store:
        for text, vector in zip(texts, vectors):
            for mode in MODES:
                plan = SearchPlan(parts=[(Query(modality=TEXT, target=IMAGE, text=text), 1.0)], query_modality=TEXT,
                                  target=IMAGE, limit=LIMIT, mode=mode)
                builder.prepare([plan])
                hits = store.search(vector, search_depth(plan))[0]
                matches = [MatchDoc(id=hit.record.id, modality=IMAGE, score=hit.score, uri=hit.record.uri,
                                    tags=wire_tags_of_record(hit.record)) for hit in hits]
                answer = builder.answer(plan, FlowResult(matches, vector, model))
                found[mode].append({"ids": [m.id for m in answer.matches],
                                    "relevance": [m.relevance for m in answer.matches],
                                    "no_good_match": answer.no_good_match})
    return found


def run_version(code: Path, work: Path, folders: dict[str, Path], model: str) -> dict:
    """`answers` computed by the checkout at `code`, in a process of its own (its modules, not this one's), for the
    texts and vectors saved in `work`."""
    workspace = work / f"workspace-{code.name}"
    workspace.mkdir(exist_ok=True)
    child = {"folders": {k: str(v) for k, v in folders.items()}, "workspace": str(workspace), "model": model}
    command = [sys.executable, __file__, "--answer", str(code), str(work), json.dumps(child)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=code)
    if done.returncode != 0:
        raise SystemExit(f"answering with {code} failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


def shares(found: list[dict], texts: list[str], queries: list[dict], ids: dict[str, str]) -> dict:
    """The report's shares for one version and mode, and each query's first file and best relevance; the answerable
    queries come first in `found` and `texts`, then the absent ones."""
    answerable, rest = found[:len(queries)], found[len(queries):]
    right = [{ids[path] for path in query["photos"]} for query in queries]
    first = [bool(a["ids"]) and a["ids"][0] in r for a, r in zip(answerable, right)]
    top3 = [bool(r.intersection(a["ids"][:3])) for a, r in zip(answerable, right)]
    flagged_right = [a["no_good_match"] for a, f in zip(answerable, first) if f]
    path_of = {doc_id: path for path, doc_id in reversed(list(ids.items()))}  # a photo's first path
    return {
        "answerable": len(queries), "right_first": round(float(np.mean(first)), 4),
        "right_in_top3": round(float(np.mean(top3)), 4), "right_first_count": int(sum(first)),
        "right_first_flagged": round(float(np.mean(flagged_right)), 4) if flagged_right else None,
        "absent": len(rest), "absent_flagged": round(float(np.mean([a["no_good_match"] for a in rest])), 4),
        "queries": [{"text": text, "answerable": i < len(queries), "right_first": i < len(queries) and first[i],
                     "first": path_of[a["ids"][0]] if a["ids"] else None,
                     "best_relevance": round(max(a["relevance"]), 4) if a["relevance"] else None,
                     "no_good_match": a["no_good_match"]} for i, (text, a) in enumerate(zip(texts, found))],
    }


def report(before: str, output: Path) -> dict:
    """Check the held-out set, index it, answer its queries with both versions, write and return the shares."""
    sys.path.insert(0, str(ROOT))
    from caption_less_data import HELDOUT, available, build_heldout, overlaps, read
    from relevance_data import MODEL

    from crossmodal.backends import create_backend
    from crossmodal.modality import IMAGE, TEXT

    data = read(HELDOUT)
    queries, absent = data["queries"], data["absent"]
    if len(queries) < MIN_ANSWERABLE or len(absent) < MIN_ABSENT:
        raise SystemExit(f"the held-out set has {len(queries)} answerable and {len(absent)} absent queries: it needs "
                         f"{MIN_ANSWERABLE}+ and {MIN_ABSENT}+")
    if not available(HELDOUT):
        raise SystemExit(f"the held-out photos are missing: apt-get install {' '.join(data['packages'])}")
    if same := overlaps():
        raise SystemExit(f"the held-out set shares photos with the calibration set or the demo: {same}")
    texts = [query["text"] for query in queries] + list(absent)
    with tempfile.TemporaryDirectory(prefix="caption-less-") as tmp:
        work = Path(tmp)
        build_heldout(work / "library")
        folders = {IMAGE: work / "image_index", TEXT: work / "text_index"}
        ids = index_library(work / "library", folders, MODEL)
        vectors = np.asarray(create_backend(MODEL, towers=("text",)).encode_texts(texts), dtype=np.float32)
        np.save(work / "vectors.npy", vectors)
        (work / "texts.json").write_text(json.dumps(texts))
        old = work / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), before], check=True,
                       capture_output=True)
        try:
            versions = {"before": run_version(old, work, folders, MODEL),
                        "after": run_version(ROOT, work, folders, MODEL)}
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=True)
    result = {
        "description": "held-out caption-less set (bench/relevance/caption_less_heldout.json), photos disjoint from "
                       "the caption-less calibration set and the demo; first page of LIMIT matches, near-duplicates "
                       "folded; before: the gateway's code at BEFORE, after: this checkout's",
        "before_commit": before, "limit": LIMIT, "model": MODEL, "photos": len(set(ids.values())),
        "files": len(ids),
        "results": {version: {mode: shares(found[mode], texts, queries, ids) for mode in MODES}
                    for version, found in versions.items()},
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def print_table(result: dict) -> None:
    print(f"{result['photos']} photos ({result['files']} files), offline model, first {result['limit']} matches")
    print(f"{'version':8} {'mode':9} {'right 1st':>10} {'top 3':>7} {'right 1st flagged':>18} {'absent flagged':>15}")
    for version, modes in result["results"].items():
        for mode, row in modes.items():
            flagged = "-" if row["right_first_flagged"] is None else f"{row['right_first_flagged']:.0%}"
            print(f"{version:8} {mode:9} {row['right_first']:>10.0%} {row['right_in_top3']:>7.0%} "
                  f"{flagged + ' of ' + str(row['right_first_count']):>18} {row['absent_flagged']:>15.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE, help="the commit whose code gives the 'before' numbers")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--answer", nargs=3, metavar=("CODE", "WORK", "CHILD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.answer:  # the child of run_version: the checkout CODE answers
        code, work, child = args.answer[0], Path(args.answer[1]), json.loads(args.answer[2])
        sys.path.insert(0, code)
        found = answers({k: Path(v) for k, v in child["folders"].items()}, Path(child["workspace"]), child["model"],
                        json.loads((work / "texts.json").read_text()), np.load(work / "vectors.npy"))
        foreign = sorted(name for name, module in sys.modules.items() if name.split(".")[0] in ("crossmodal", "serving")
                         and not str(getattr(module, "__file__", None) or code).startswith(code))
        if foreign:  # the editable install found a module of this checkout for another one
            raise SystemExit(f"modules not of {code}: {foreign}")
        print(json.dumps(found))
        return
    print_table(report(args.before, args.output))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
