"""Near-duplicate rule (issue 11, item 5): precision and recall of "cosine >= t", and of "cosine >= t, or perceptual
signatures within d bits and cosine >= g" (crossmodal/library/duplicates.py), on generated copies of real photos,
encoded by the offline model and signed by crossmodal/library/perceptual_hash.py (from each copy's file, as a folder
sync signs a photo), tuned on one half of the source photos and reported on the other half.

    python bench/near_duplicates_bench.py [--json results/near_duplicates.json] [--scale 100000]

Sources (real photos that ship in installed packages, nothing downloaded): the 19 demo photos (scikit-image,
scikit-learn, matplotlib) and scikit-image's clock, cell and retina (microaneurysms) photos: 22 photos.
Each gets a family of copies, the positives (any two of a family are near-duplicates): resized to 50 % and 25 %,
re-encoded as JPEG at quality 20, cropped by 10 % (one corner; and 5 % on every side), brightness +10 % and -10 %,
and all at once (60 %, 5 % crop, +5 %, JPEG quality 40).
Negatives: any two photos of different sources (distinct photos), and harder ones: two crops of one scene 40 %
apart (the left and right 60 %, the top and bottom 60 %). Those count as *distinct*: they share under half of the
scene, a user keeps both on purpose (a reframing, another part of a panorama), and folding one into the other would
hide a photo that search should show. They are reported apart (how many of them a threshold folds), because no
threshold separates them for this model: it embeds what ImageNet classes a photo shows, the same on both halves of
a brick wall. A 60 % crop paired with its own family is neither positive nor negative (left out).
Halves, by source photo: of the sorted names, the odd positions tune the threshold ("tune"; it holds brick and text,
whose copies this model confuses at up to 0.99), the even ones are held out ("held-out"). The chosen threshold is the
lowest of the sweep above every distinct pair of the tuning half (precision 1.0 there: folding a different photo
hides it from search, missing a copy only shows it twice); its held-out precision and recall are the reported
numbers, pair by pair and for the groups `crossmodal.library.duplicates.find_groups` forms (two photos in one group).
The signature rule (d, g) is the one of the grid (d 0-20, g 0.5-0.95: a gate of 0.5 at least, against unrelated
photos of similar layout that a large library holds and 22 photos cannot show) with the most tuning recall among those
that fold no pair of different tuning photos and no pair of different faces or non-face patches (below) beyond those
the threshold alone folds; its held-out numbers are reported beside the threshold's, with the cost of a signature.
Also measured: the highest cosine between two different people's faces (scikit-image's LFW subset, 25 x 25 px,
originals only), and with --scale N what `GET /duplicates` costs the gateway on a store of N vectors (`conse_like`:
built like the offline model's from random class probabilities, 1 % near copies; random signatures, 1 % copies 4 bits
apart): the groups from scratch (a server's start), after a sync that adds 10 photos, and from its cache.
"""
from __future__ import annotations

import argparse
import io
import itertools
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crossmodal.library.duplicates import SIGNATURE_RULES, THRESHOLDS, SignatureRule, find_groups  # noqa: E402
from crossmodal.library.perceptual_hash import bytes_signature, signature_bits  # noqa: E402

SWEEP = np.round(np.arange(0.80, 1.0, 0.0025), 4)
FACES = 100
DISTANCES = np.arange(0, 21, 2)  # signature distances tried (a median-split hash: two differ in an even number of bits)
GATES = np.round(np.arange(0.5, 1.0, 0.05), 2)  # cosine gates tried: 0.5 at least, by design (see choose_rule)
COPIES = ("resize 50%", "resize 25%", "jpeg q20", "crop 10% corner", "crop 5% sides", "brightness +10%",
          "brightness -10%", "all at once")


@dataclass(frozen=True)
class Photo:
    family: str  # the source photo
    kind: str  # "original", a copy's name, or a hard crop ("left 60%", ...)
    half: str  # "tune" or "held-out"


def jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def decoded(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def scaled(image: Image.Image, factor: float) -> Image.Image:
    width, height = image.size
    return image.resize((max(16, round(width * factor)), max(16, round(height * factor))), Image.LANCZOS)


def cropped(image: Image.Image, left: float, top: float, right: float, bottom: float) -> Image.Image:
    width, height = image.size
    return image.crop((round(width * left), round(height * top), round(width * right), round(height * bottom)))


def copies(image: Image.Image) -> list[bytes]:
    """The near-duplicates of one photo (JPEG files), in the order of COPIES."""
    bright = ImageEnhance.Brightness
    return [jpeg(scaled(image, 0.5), 90), jpeg(scaled(image, 0.25), 90), jpeg(image, 20),
            jpeg(cropped(image, 0.1, 0.1, 1, 1), 90), jpeg(cropped(image, 0.05, 0.05, 0.95, 0.95), 90),
            jpeg(bright(image).enhance(1.1), 90), jpeg(bright(image).enhance(0.9), 90),
            jpeg(bright(cropped(scaled(image, 0.6), 0.05, 0.05, 1, 1)).enhance(1.05), 40)]


def hard_crops(image: Image.Image) -> dict[str, Image.Image]:
    """Two pairs of crops of one scene 40 % apart."""
    return {"left 60%": cropped(image, 0, 0, 0.6, 1), "right 60%": cropped(image, 0.4, 0, 1, 1),
            "top 60%": cropped(image, 0, 0, 1, 0.6), "bottom 60%": cropped(image, 0, 0.4, 1, 1)}


def sources(workspace: Path) -> list[tuple[str, Image.Image]]:
    """(name, RGB photo) of every source photo, sorted by name."""
    import skimage.data

    from dataset import open_dataset

    photos = {Path(pair.image_path).stem: Image.open(pair.image_path).convert("RGB")
              for pair in open_dataset("demo", workspace=workspace)}
    for name in ("clock", "cell", "microaneurysms"):
        photos[f"skimage-{name}"] = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
    return sorted(photos.items())


def faces(start: int = 0) -> list[bytes]:
    """scikit-image's LFW subset at 100 x 100 px (PNG): its 100 faces (start 0) or its 100 non-face patches (100)."""
    import skimage.data

    return [png(Image.fromarray((face * 255).astype(np.uint8)).convert("RGB").resize((100, 100)))
            for face in skimage.data.lfw_subset()[start:start + FACES]]


def collection(named: list[tuple[str, Image.Image]]) -> tuple[list[Photo], list[bytes]]:
    """Every photo and its file: the originals and hard crops as PNG, the copies as JPEG."""
    photos, files = [], []
    for position, (name, image) in enumerate(named):
        half = "tune" if position % 2 == 1 else "held-out"
        crops = {kind: png(crop) for kind, crop in hard_crops(image).items()}
        for kind, data in [("original", png(image)), *zip(COPIES, copies(image)), *crops.items()]:
            photos.append(Photo(name, kind, half))
            files.append(data)
    return photos, files


def label(a: Photo, b: Photo) -> bool | None:
    """True: near-duplicates; False: distinct; None: neither (a 60 % crop with its own family)."""
    if a.family != b.family:
        return False
    crops = [photo.kind.endswith(" 60%") for photo in (a, b)]
    if all(crops):
        return None if a.kind == b.kind else (False if {a.kind, b.kind} in ({"left 60%", "right 60%"},
                                                                           {"top 60%", "bottom 60%"}) else None)
    return None if any(crops) else True


Pairs = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # cosine, truth, hardness, Hamming distance


def distances(signatures: list[str]) -> np.ndarray:
    """Hamming distances between every two signatures (a matrix); -1 where either has none (a flat image)."""
    values, known = signature_bits(list(signatures))
    found = np.bitwise_count(values[:, None] ^ values[None, :]).astype(np.int64)
    found[~(known[:, None] & known[None, :])] = -1
    return found


def pairs_of(photos: list[Photo], vectors: np.ndarray, signatures: list[str], half: str) -> Pairs:
    """Cosines, truth, hardness (a hard negative) and signature distances of every labelled pair within one half."""
    rows = [index for index, photo in enumerate(photos) if photo.half == half]
    scores, truth, hard, apart = [], [], [], []
    similarity = vectors[rows] @ vectors[rows].T
    distance = distances([signatures[row] for row in rows])
    for i, j in itertools.combinations(range(len(rows)), 2):
        value = label(photos[rows[i]], photos[rows[j]])
        if value is None:
            continue
        scores.append(similarity[i, j])
        truth.append(value)
        hard.append(photos[rows[i]].family == photos[rows[j]].family and not value)
        apart.append(distance[i, j])
    return np.array(scores), np.array(truth), np.array(hard), np.array(apart)


def predicted(scores: np.ndarray, apart: np.ndarray, threshold: float, rule: SignatureRule | None) -> np.ndarray:
    """The near-duplicate rule of crossmodal/library/duplicates.py on pairs: cosine >= threshold, or signatures within
    the rule's distance and cosine >= its gate."""
    hits = scores >= threshold
    if rule is not None:
        hits |= (apart >= 0) & (apart <= rule.distance) & (scores >= rule.gate)
    return hits


def precision_recall(hits: np.ndarray, truth: np.ndarray) -> dict[str, float | int]:
    true_positives = int((hits & truth).sum())
    return {"precision": true_positives / int(hits.sum()) if hits.any() else 1.0,
            "recall": true_positives / max(1, int(truth.sum())), "false_positives": int((hits & ~truth).sum()),
            "missed": int((~hits & truth).sum())}


def measured(pairs: Pairs, threshold: float, rule: SignatureRule | None = None) -> dict[str, float | int]:
    """Precision and recall against the distinct pairs, and how many hard negatives the rule folds."""
    scores, truth, hard, apart = pairs
    hits = predicted(scores, apart, threshold, rule)
    described: dict[str, float | int] = {"threshold": float(threshold)}
    if rule is not None:
        described.update(distance=rule.distance, gate=rule.gate)
    return {**described, **precision_recall(hits[~hard], truth[~hard]), "hard_folded": int(hits[hard].sum())}


def group_metrics(photos: list[Photo], vectors: np.ndarray, signatures: list[str], half: str, threshold: float,
                  rule: SignatureRule | None = None) -> dict[str, float | int]:
    """Pairwise precision and recall of the groups find_groups forms over one half (a pair is predicted when both
    photos are in one group) against the distinct pairs, and how many hard-negative pairs share a group."""
    rows = [index for index, photo in enumerate(photos) if photo.half == half]
    ids = [str(index) for index in rows]
    groups = find_groups(ids, vectors[rows], threshold, signatures=[signatures[row] for row in rows], rule=rule)
    hits, truth, hard = [], [], []
    for i, j in itertools.combinations(rows, 2):
        value = label(photos[i], photos[j])
        if value is None:
            continue
        group = groups.group_of(str(i))
        hits.append(group is not None and group is groups.group_of(str(j)))
        truth.append(value)
        hard.append(photos[i].family == photos[j].family and not value)
    found, wanted, harder = np.array(hits), np.array(truth), np.array(hard)
    true_positives = int((found & wanted).sum())
    called = int((found & ~harder).sum())
    return {"groups": len(groups.groups), "largest": max((g.size for g in groups.groups), default=0),
            "precision": true_positives / called if called else 1.0, "recall": true_positives / int(wanted.sum()),
            "hard_folded": int((found & harder).sum())}


def per_copy_recall(photos: list[Photo], vectors: np.ndarray, signatures: list[str], half: str, threshold: float,
                    rule: SignatureRule | None = None) -> dict[str, float]:
    """Share of the copies of each kind that the rule pairs with their original."""
    originals = {photo.family: index for index, photo in enumerate(photos) if photo.kind == "original"}
    found: dict[str, list[bool]] = {kind: [] for kind in COPIES}
    for index, photo in enumerate(photos):
        if photo.half == half and photo.kind in found:
            original = originals[photo.family]
            apart = distances([signatures[index], signatures[original]])[0, 1]
            found[photo.kind].append(bool(predicted(np.array([vectors[index] @ vectors[original]]), np.array([apart]),
                                                    threshold, rule)[0]))
    return {kind: float(np.mean(values)) for kind, values in found.items()}


def stress_folded(vectors: np.ndarray, signatures: list[str], threshold: float, rule: SignatureRule | None) -> int:
    """How many pairs of these different photos (faces, patches) the rule folds."""
    upper = np.triu_indices(len(vectors), 1)
    return int(predicted((vectors @ vectors.T)[upper], distances(signatures)[upper], threshold, rule).sum())


def choose_rule(tune: Pairs, stress: list[tuple[np.ndarray, list[str]]],
                threshold: float) -> tuple[SignatureRule, list[dict[str, float | int]]]:
    """The signature rule of the grid (DISTANCES x GATES) with the most tuning recall among those that fold no pair
    of different tuning photos and no pair of different faces or patches that the threshold alone does not fold;
    ties: the smaller distance, then the higher gate. Also the grid's tuning numbers."""
    grid, allowed = [], []
    floor = sum(stress_folded(vectors, signatures, threshold, None) for vectors, signatures in stress)
    for distance in DISTANCES:
        for gate in GATES:
            rule = SignatureRule(int(distance), float(gate))
            row = {**measured(tune, threshold, rule),
                   "stress_folded": sum(stress_folded(v, sig, threshold, rule) for v, sig in stress)}
            grid.append(row)
            if row["false_positives"] == 0 and row["stress_folded"] == floor:
                allowed.append((row["recall"], -distance, gate, rule))
    return max(allowed, key=lambda item: item[:3])[3], grid


def signature_cost(repeat: int = 5) -> dict[str, float]:
    """Median milliseconds of a photo's signature on a 12 MP JPEG (EXIF orientation 6) and a 12 MP PNG: what a sync
    adds per new photo (`bytes_signature` given the full decode the sync does anyway: a JPEG is decoded again at 1/8
    scale, a PNG reduced from that decode), the signature alone from the bytes, and that full decode."""
    import skimage.data

    from crossmodal.media.decoding import decode_image_bytes

    photo = Image.fromarray(skimage.data.astronaut()).resize((4000, 3000), Image.Resampling.LANCZOS)
    exif = Image.Exif()
    exif[0x0112] = 6
    files = {"jpeg_12mp": io.BytesIO(), "png_12mp": io.BytesIO()}
    photo.save(files["jpeg_12mp"], format="JPEG", quality=90, exif=exif.tobytes())
    photo.save(files["png_12mp"], format="PNG")
    cost: dict[str, float] = {}
    for name, buffer in files.items():
        data = buffer.getvalue()
        full = decode_image_bytes(data)
        works = {"added_by_sync": (bytes_signature, (data, full)), "alone": (bytes_signature, (data,)),
                 "full_decode": (decode_image_bytes, (data,))}
        for what, (work, given) in works.items():
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                work(*given)  # type: ignore[operator]
                times.append(time.perf_counter() - started)
            cost[f"{name}_{what}_ms"] = round(1000 * float(np.median(times)), 1)
        cost[f"{name}_bytes"] = len(data)
    return cost


def conse_like(count: int, class_embeddings: np.ndarray, seed: int = 0) -> np.ndarray:
    """``count`` vectors built as the offline model builds a photo's (its top-10 ImageNet classes' prompt
    embeddings weighted by their probabilities), from random class probabilities: one main class per photo, drawn
    by a long-tailed popularity (a library holds many photos of a few things). 1 % of them are near copies of
    another (the same probabilities, slightly disturbed), as resized copies would be."""
    from crossmodal.backends.models.offline import conse_combine

    rng = np.random.default_rng(seed)
    classes = len(class_embeddings)
    popularity = 1.0 / np.arange(1, classes + 1) ** 0.8
    batches = []
    for start in range(0, count, 10_000):
        size = min(10_000, count - start)
        logits = rng.standard_normal((size, classes), dtype=np.float32) * 1.5
        logits[np.arange(size), rng.choice(classes, size, p=popularity / popularity.sum())] += rng.uniform(2, 6, size)
        copied = rng.choice(size, size // 100, replace=False)
        logits[copied[: len(copied) // 2]] = logits[copied[len(copied) // 2:]] + rng.normal(
            0, 0.03, (len(copied) // 2, classes)).astype(np.float32)
        probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
        batches.append(conse_combine(probabilities / probabilities.sum(axis=1, keepdims=True), class_embeddings))
    return np.vstack(batches)


def random_signatures(count: int, seed: int = 0) -> list[str]:
    """Signatures for `conse_like` vectors: random 32-of-64-bit values (a median-split hash), every 100th photo
    followed by a copy 4 bits away."""
    rng = np.random.default_rng(seed)
    bits = np.argsort(rng.random((count, 64)), axis=1) < 32
    values = (bits.astype(np.uint64) << np.arange(64, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)
    values[1::100] = values[0::100][:len(values[1::100])] ^ np.uint64(0b1111)
    return [f"{int(value):016x}" for value in values]


def scale_timing(vectors: np.ndarray, threshold: float, rule: SignatureRule | None) -> dict[str, float | int]:
    """What the gateway does for `GET /duplicates` on a store of ``vectors`` (with photo metadata and signatures):
    the groups from scratch (its first request, or its start), then after a sync that adds 10 photos (the pairs
    kept), then from its cache (the index unchanged). Also the signature pass alone, from scratch."""
    from crossmodal.index import Record, VectorStore, store_generations
    from crossmodal.library.duplicates import gated_signature_pairs, store_groups
    from crossmodal.modality import IMAGE

    signatures = random_signatures(len(vectors) + 10)

    def records(start: int, count: int) -> list[Record]:
        return [Record(f"img-{index:016x}", IMAGE, pair_id=f"folder/bench/{index}.jpg", tags={"metadata": {
            "path": f"{index}.jpg", "width": 4000 - index % 7, "height": 3000, "size_bytes": 10 ** 6 + index,
            "taken": None, "lat": None, "lon": None}, "phash": signatures[index]})
            for index in range(start, start + count)]

    values, known = signature_bits(list(signatures[:len(vectors)]))
    started = time.perf_counter()
    signature_found = gated_signature_pairs(vectors, values, known, rule) if rule else ([], [], [])
    signature_pass = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        with VectorStore(folder, IMAGE, "offline", vectors.shape[1]) as store:
            for start in range(0, len(vectors), 10_000):
                chunk = vectors[start:start + 10_000]
                store.add(records(start, len(chunk)), chunk)
        started = time.perf_counter()
        groups, pairs = store_groups(folder)
        cold = time.perf_counter() - started
        with VectorStore(folder, IMAGE, "offline", vectors.shape[1]) as store:
            store.add(records(len(vectors), 10), vectors[:10])
        started = time.perf_counter()
        after, _ = store_groups(folder, pairs)
        synced = time.perf_counter() - started
        started = time.perf_counter()
        store_generations(folder)  # all a cached answer costs besides one page of records
        cached = time.perf_counter() - started
    return {"vectors": len(vectors), "groups": len(groups.groups), "groups_after_sync": len(after.groups),
            "signature_pairs": len(signature_found[0]), "signature_pass_s": round(signature_pass, 2),
            "from_scratch_s": round(cold, 2), "after_a_sync_adding_10_s": round(synced, 2),
            "cached_s": round(cached, 4)}


def encode(backend, images: list[Image.Image]) -> np.ndarray:
    return np.vstack([backend.encode_images(images[start:start + 16]) for start in range(0, len(images), 16)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, default=ROOT / "results" / "near_duplicates.json")
    parser.add_argument("--vectors", type=Path, help="also write the vectors, signatures and labels of some families "
                                                     "here (.npz)")
    parser.add_argument("--families", default="camera,coffee,motorcycle,brick,text,chelsea_cat",
                        help="the families --vectors writes (comma-separated source names)")
    parser.add_argument("--scale", type=int, default=0, help="time the grouping at this many vectors")
    args = parser.parse_args()

    from crossmodal.backends import create_backend

    with tempfile.TemporaryDirectory() as workspace:
        named = sources(Path(workspace))
    photos, files = collection(named)
    backend = create_backend("offline", towers=("image",))
    started = time.perf_counter()
    vectors = encode(backend, [decoded(data) for data in files])
    encoding = time.perf_counter() - started
    started = time.perf_counter()
    signatures = [bytes_signature(data) for data in files]
    signing = time.perf_counter() - started
    if args.vectors:
        wanted = [index for index, photo in enumerate(photos) if photo.family in args.families.split(",")]
        np.savez_compressed(args.vectors, vectors=vectors[wanted], family=[photos[i].family for i in wanted],
                            kind=[photos[i].kind for i in wanted], signature=[signatures[i] for i in wanted])
    stress = []
    for start in (0, FACES):  # faces, then non-face patches
        stress_files = faces(start)
        stress.append((encode(backend, [decoded(data) for data in stress_files]),
                       [bytes_signature(data) for data in stress_files]))
    between_faces = stress[0][0] @ stress[0][0].T
    np.fill_diagonal(between_faces, -1)

    tune = pairs_of(photos, vectors, signatures, "tune")
    held = pairs_of(photos, vectors, signatures, "held-out")
    sweep = {half: [measured(pairs, t) for t in SWEEP] for half, pairs in (("tune", tune), ("held-out", held))}
    scores, truth, hard, _ = tune
    chosen = float(min(t for t in SWEEP if t > scores[~truth & ~hard].max()))  # above every distinct tuning pair
    threshold = THRESHOLDS["offline"]
    rule, grid = choose_rule(tune, stress, threshold)
    in_code = SIGNATURE_RULES["offline"]
    originals = [index for index, photo in enumerate(photos) if photo.kind == "original"]
    demo = vectors[originals] @ vectors[originals].T
    np.fill_diagonal(demo, -1)
    stereo = None
    motorcycle = next((index for index in originals if photos[index].family == "motorcycle"), None)
    if motorcycle is not None:
        import skimage.data

        right = backend.encode_images([Image.fromarray(skimage.data.stereo_motorcycle()[1])])[0]
        stereo = float(right @ vectors[motorcycle])
    distinct_tune = scores[~truth & ~hard]

    report = {
        "what": "offline model (EfficientNet-Lite0 + ConSE): cosine >= threshold as near-duplicate, or perceptual "
                "signatures (64-bit pHash) within a distance with cosine >= a gate; pairs of generated copies of real "
                "photos",
        "sources": {"tune": sorted({p.family for p in photos if p.half == "tune"}),
                    "held-out": sorted({p.family for p in photos if p.half == "held-out"})},
        "copies": list(COPIES),
        "photos_encoded": len(files), "encoding_s": round(encoding, 1),
        "signatures_s": round(signing, 2), "signature_ms_per_photo": round(1000 * signing / len(files), 2),
        "pairs": {half: {"positives": int(truth.sum()), "distinct": int((~truth & ~hard).sum()),
                         "hard_negatives": int(hard.sum())}
                  for half, (_, truth, hard, _) in (("tune", tune), ("held-out", held))},
        "rule": "the lowest threshold of the sweep above every distinct pair's cosine on the tuning half "
                "(precision 1.0 there)",
        "chosen_threshold": chosen,
        "threshold_in_code": threshold,
        "tune_at_chosen": measured(tune, chosen),
        "held_out_at_chosen": measured(held, chosen),
        "held_out_groups_at_chosen": group_metrics(photos, vectors, signatures, "held-out", chosen),
        "held_out_recall_per_copy": per_copy_recall(photos, vectors, signatures, "held-out", chosen),
        "signature_rule": "threshold, or signatures within the distance and cosine >= the gate: of the grid "
                          "(distances 0-20, gates 0.5-0.95), the most tuning recall with no pair of different tuning "
                          "photos folded and no pair of different faces or non-face patches folded beyond the "
                          "threshold's; ties: smaller distance, higher gate",
        "chosen_signature_rule": {"distance": rule.distance, "gate": rule.gate},
        "signature_rule_in_code": {"distance": in_code.distance, "gate": in_code.gate},
        "tune_with_signatures": measured(tune, threshold, in_code),
        "held_out_with_signatures": measured(held, threshold, in_code),
        "held_out_groups_with_signatures": group_metrics(photos, vectors, signatures, "held-out", threshold, in_code),
        "held_out_recall_per_copy_with_signatures": per_copy_recall(photos, vectors, signatures, "held-out", threshold,
                                                                    in_code),
        "tune_recall_per_copy_with_signatures": per_copy_recall(photos, vectors, signatures, "tune", threshold,
                                                                in_code),
        "faces_and_patches_folded": {
            "threshold": [stress_folded(v, sig, threshold, None) for v, sig in stress],
            "with_signatures": [stress_folded(v, sig, threshold, in_code) for v, sig in stress]},
        "share_of_distinct_tuning_pairs_below_gate": float((distinct_tune < in_code.gate).mean()),
        "signature_cost": signature_cost(),
        "max_cosine_between_distinct_sources": float(demo.max()),
        "max_cosine_between_different_faces": float(between_faces.max()),
        "stereo_motorcycle_left_right_cosine": stereo,
        "signature_grid_tune": grid,
        "sweep": sweep,
    }
    if args.scale:
        report["scale"] = scale_timing(conse_like(args.scale, backend.class_embeddings()), threshold, in_code)

    print(f"{len(files)} photos encoded in {encoding:.1f} s, signed in {signing:.2f} s; pairs: {report['pairs']}")
    print(f"{'threshold':>9} | {'tune P':>6} {'tune R':>6} {'hard':>4} | {'held-out P':>10} {'held-out R':>10} "
          f"{'hard':>4}")
    for row_tune, row_held in zip(sweep["tune"], sweep["held-out"]):
        if row_tune["threshold"] >= 0.9:
            print(f"{row_tune['threshold']:>9.4f} | {row_tune['precision']:>6.3f} {row_tune['recall']:>6.3f} "
                  f"{row_tune['hard_folded']:>4} | {row_held['precision']:>10.3f} {row_held['recall']:>10.3f} "
                  f"{row_held['hard_folded']:>4}")
    for key in ("chosen_threshold", "threshold_in_code", "tune_at_chosen", "held_out_at_chosen",
                "held_out_groups_at_chosen", "held_out_recall_per_copy", "chosen_signature_rule",
                "signature_rule_in_code", "tune_with_signatures", "held_out_with_signatures",
                "held_out_groups_with_signatures", "held_out_recall_per_copy_with_signatures",
                "tune_recall_per_copy_with_signatures", "faces_and_patches_folded",
                "share_of_distinct_tuning_pairs_below_gate", "signature_cost", "max_cosine_between_distinct_sources",
                "max_cosine_between_different_faces", "stereo_motorcycle_left_right_cosine", "scale"):
        if key in report:
            print(f"{key}: {report[key]}")
    args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
