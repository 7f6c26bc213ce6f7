"""Near-duplicate photos: resized, re-encoded, slightly cropped or brightened copies of one photo, found by the
cosine similarity of their image vectors and, for photos of a photo folder, their perceptual signatures (exact copies
are already one photo with several paths: the library's identity is the content hash).

Two photos are near-duplicates when the cosine of their vectors reaches the model's threshold T, or when both have a
signature (`tags["phash"]`, crossmodal/library/perceptual_hash.py: a 64-bit DCT hash of the upright grayscale thumbnail
that a photo-folder sync stores) at Hamming distance <= H and their cosine still reaches a lower gate G: the pixels say
"copy" and the embedding does not say "a different subject". Photos without a signature (captioned datasets, photos
stored before signatures existed) pair by the threshold alone.

Pairs are found exactly and kept between store generations: a sync that adds k photos costs k x N products, not
N x N. Cosine >= T by blockwise matrix products over the vectors (no approximate index: a missed pair would split a
group); signature pairs by multi-index hashing (H + 1 disjoint slices of the 64 bits: two signatures within H bits
agree on at least one whole slice, so only photos sharing a slice value are compared), then the cosine of each
candidate is checked against G.

Grouping is greedy around representatives, not connected components: the best photo not yet in a group (most
pixels, then most bytes, then id) takes every free photo that is a near-duplicate of *itself*. With components, a
chain A~B~C of pairs each just above the threshold would put A and C in one group however far apart they are, and a
large library of similar scenes would collapse into one giant group; here every member is a near-duplicate of its
group's representative, so a group never holds a photo unlike the one that stands for it.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crossmodal.index import Record, read_records, read_vectors, stored_ids, stored_settings
from crossmodal.library.perceptual_hash import SIGNATURE_TAG, signature_bits

# Cosine at or above which two photos are near-duplicates, per model (the backend's name: an index's model name up to
# its first ':'). Chosen by bench/near_duplicates_bench.py on generated copies of 22 real photos (results/
# near_duplicates.json): the lowest threshold above every pair of distinct photos of the tuning half. Held out:
# precision 1.0, recall 0.17 (with the signature rule below: 0.53). The offline model embeds which ImageNet classes a
# photo shows, so a re-encoded or resized copy often moves further from its original than two different photos of
# similar things are from each other (the demo's most similar different photos: 0.965): only a high threshold keeps
# different photos apart.
THRESHOLDS: Mapping[str, float] = {"offline": 0.995}
# Models without a measured value (VSE++, CLIP: no weights here to measure with): a high, cautious cosine, so that
# an unmeasured model folds too few photos rather than hiding different ones.
FALLBACK_THRESHOLD = 0.95


@dataclass(frozen=True)
class SignatureRule:
    """Two photos with signatures are near-duplicates when their signatures differ in at most ``distance`` bits and
    their vectors' cosine reaches ``gate``."""

    distance: int
    gate: float


# Per model, chosen by bench/near_duplicates_bench.py on the tuning half (results/near_duplicates.json): of distances
# 0-20 and gates 0.5-0.95 (a gate of 0.5 at least, by design: above 96 % of the pairs of different tuning photos, it
# keeps out unrelated photos whose thumbnails look alike, which a large library holds and 22 photos cannot show), the
# most tuning recall with no pair of different tuning photos folded, and no pair of different faces (100 aligned 25 px
# portraits, the worst case for a layout hash) or non-face patches folded beyond those the threshold folds alone. Held
# out: precision 1.0, recall 0.53 (threshold alone: 0.17). Unmeasured models (VSE++, CLIP) get no signature rule: the
# threshold alone.
SIGNATURE_RULES: Mapping[str, SignatureRule] = {"offline": SignatureRule(distance=6, gate=0.5)}
_BLOCK = 1024  # rows per matrix product: 1024 x 100,000 float32 scores are 400 MB
_FEW = 8  # under 1/_FEW of the rows to pair (a sync's new photos): compared with all, without the sorted windows


def threshold_for(model_name: str | None) -> float:
    """The near-duplicate threshold of the model that built an index (`offline`, `clip:ViT-B-32:openai`, ...)."""
    return THRESHOLDS.get((model_name or "").split(":", 1)[0], FALLBACK_THRESHOLD)


def signature_rule_for(model_name: str | None) -> SignatureRule | None:
    """The signature rule of the model that built an index; None: the threshold alone."""
    return SIGNATURE_RULES.get((model_name or "").split(":", 1)[0])


@dataclass(frozen=True)
class Member:
    id: str
    similarity: float  # cosine to the group's representative (1.0 for the representative itself)


@dataclass(frozen=True)
class Group:
    """A representative (first) and the photos within the threshold of it, most similar first."""

    members: tuple[Member, ...]

    @property
    def id(self) -> str:
        return self.members[0].id

    @property
    def size(self) -> int:
        return len(self.members)


@dataclass(frozen=True)
class DuplicateGroups:
    """The near-duplicate groups of one index (size >= 2), largest first, then by representative id."""

    groups: tuple[Group, ...]
    threshold: float
    _group_of: dict[str, Group] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._group_of.update((member.id, group) for group in self.groups for member in group.members)

    def group_of(self, doc_id: str) -> Group | None:
        return self._group_of.get(doc_id)

    def duplicates_of(self, doc_id: str) -> int:
        """How many other photos are in this photo's group (0 when it has none)."""
        group = self._group_of.get(doc_id)
        return group.size - 1 if group else 0

    def members(self) -> list[str]:
        """Every photo that is in a group."""
        return list(self._group_of)

    def collapse(self, ranked: Sequence[str]) -> list[str]:
        """``ranked`` with each group kept at its best-ranked member. A prefix of a ranking collapses to a prefix of
        the collapsed whole ranking, so pages cut after collapsing agree with each other."""
        seen: set[str] = set()
        kept = []
        for doc_id in ranked:
            group = self._group_of.get(doc_id)
            if group is not None:
                if group.id in seen:
                    continue
                seen.add(group.id)
            kept.append(doc_id)
        return kept

    def folded(self, allowed: set[str] | None = None) -> int:
        """How many photos collapsing a whole ranking removes: per group, all but one of its members that the ranking
        may hold (``allowed``; None: all of them)."""
        return sum(max(0, (group.size if allowed is None else sum(m.id in allowed for m in group.members)) - 1)
                   for group in self.groups)


class SimilarPairs:
    """Every near-duplicate pair of a collection (cosine >= ``threshold``, or, under ``rule``, signatures within its
    distance and cosine >= its gate), with the pair's cosine, kept up to date as the collection changes: photos whose
    vector and signature stay keep their pairs, only new or changed ones are compared with the others."""

    def __init__(self, threshold: float, block: int = _BLOCK, rule: SignatureRule | None = None) -> None:
        self.threshold = float(threshold)
        self.rule = rule
        self.block = int(block)
        self.digests: dict[str, bytes] = {}  # of each id's vector and signature: a changed one is compared again
        self.signatures: dict[str, str | None] = {}  # each id's signature of the last update (under a rule)
        self.neighbours: dict[str, dict[str, float]] = {}

    def update(self, ids: Sequence[str], vectors: np.ndarray, signatures: Sequence[str | None] | None = None) -> None:
        """Make the pairs those of ``ids`` / ``vectors`` (rows; unit vectors, so inner product is cosine) and their
        ``signatures`` (hex, None for none; only used under a rule)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(ids) != len(vectors) or (signatures is not None and len(signatures) != len(ids)):
            raise ValueError(f"got {len(ids)} ids but {len(vectors)} vectors"
                             + (f" and {len(signatures)} signatures" if signatures is not None else ""))
        given: list[str | None] = list(signatures) if signatures is not None and self.rule else [None] * len(ids)
        values, known = signature_bits(given)
        self.signatures = dict(zip(ids, given)) if self.rule else {}
        listed = [hashlib.blake2b(row.tobytes() + (value.tobytes() if has else b""), digest_size=16).digest()
                  for row, value, has in zip(vectors, values, known)]
        digests = dict(zip(ids, listed))
        fresh = np.array([self.digests.get(doc_id) != digest for doc_id, digest in zip(ids, listed)], dtype=bool)
        stale = {doc_id for doc_id, digest in self.digests.items() if digests.get(doc_id) != digest}
        self.neighbours = {doc_id: {other: score for other, score in found.items() if other not in stale}
                           for doc_id, found in self.neighbours.items() if doc_id not in stale}
        self.digests = digests
        rows = np.flatnonzero(fresh)
        found = similar_pairs(vectors, self.threshold, rows, self.block)
        if self.rule is not None and known.any():
            found = _merged(found, gated_signature_pairs(vectors, values, known, self.rule, rows, self.block))
        for row, column, score in zip(*found):
            first, second = ids[row], ids[column]
            self.neighbours.setdefault(first, {})[second] = score
            self.neighbours.setdefault(second, {})[first] = score


def _merged(*found: tuple[list[int], list[int], list[float]]) -> tuple[list[int], list[int], list[float]]:
    return ([row for part in found for row in part[0]], [column for part in found for column in part[1]],
            [score for part in found for score in part[2]])


def gated_signature_pairs(vectors: np.ndarray, values: np.ndarray, known: np.ndarray, rule: SignatureRule,
                          rows: np.ndarray | None = None,
                          block: int = _BLOCK) -> tuple[list[int], list[int], list[float]]:
    """(row, column, cosine), row < column, of every pair with signatures within ``rule.distance`` bits and cosine
    >= ``rule.gate`` that involves one of ``rows`` (default: all), each pair once."""
    first, second = signature_pairs(values, known, rule.distance, rows, block)
    found: tuple[list[int], list[int], list[float]] = ([], [], [])
    for start in range(0, len(first), block * 64):
        a, b = first[start:start + block * 64], second[start:start + block * 64]
        cosines = np.einsum("ij,ij->i", vectors[a], vectors[b])
        keep = cosines >= rule.gate
        found[0].extend(a[keep].tolist())
        found[1].extend(b[keep].tolist())
        found[2].extend(cosines[keep].astype(float).tolist())
    return found


def signature_pairs(values: np.ndarray, known: np.ndarray, distance: int, rows: np.ndarray | None = None,
                    block: int = _BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns), row < column, of every pair of known 64-bit signatures at most ``distance`` bits apart that
    involves one of ``rows`` (default: all), each pair once. A few rows are compared with all; otherwise by
    multi-index hashing: ``distance + 1`` disjoint slices of the bits, of which two signatures within ``distance``
    bits share at least one; photos with equal values on a slice are compared, and a pair is kept from the first
    slice its two signatures share."""
    count = len(values)
    listed = np.zeros(count, dtype=bool)
    listed[np.arange(count) if rows is None else np.asarray(rows, dtype=np.int64)] = True
    listed &= known
    pairs_first: list[np.ndarray] = []
    pairs_second: list[np.ndarray] = []
    if not listed.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if rows is not None and int(listed.sum()) * _FEW < count:
        for start in range(0, int(listed.sum()), block):
            chunk = np.flatnonzero(listed)[start:start + block]
            near = np.bitwise_count(values[chunk][:, None] ^ values[None, :]) <= distance
            hit_rows, columns = np.nonzero(near & known[None, :])
            pair_rows = chunk[hit_rows]
            keep = (columns != pair_rows) & (~listed[columns] | (columns > pair_rows))  # each pair from one row
            pairs_first.append(np.minimum(pair_rows, columns)[keep])
            pairs_second.append(np.maximum(pair_rows, columns)[keep])
    else:
        slices = min(distance + 1, 64)
        edges = np.linspace(0, 64, slices + 1).round().astype(np.uint64)
        keys = [(values >> low) & np.uint64((1 << int(high - low)) - 1) for low, high in zip(edges[:-1], edges[1:])]
        members = np.flatnonzero(known)
        for place, key in enumerate(keys):
            order = members[np.argsort(key[members], kind="stable")]
            sorted_keys = key[order]
            bounds = np.flatnonzero(np.diff(sorted_keys)) + 1
            starts, ends = np.r_[0, bounds], np.r_[bounds, len(order)]
            for start, end in zip(starts[ends - starts > 1], ends[ends - starts > 1]):
                group = order[start:end]
                for low in range(0, len(group), block):
                    chunk = group[low:low + block]
                    near = np.bitwise_count(values[chunk][:, None] ^ values[group][None, :]) <= distance
                    hit_rows, hit_columns = np.nonzero(near)
                    a, b = chunk[hit_rows], group[hit_columns]
                    keep = (a < b) & (listed[a] | listed[b])
                    a, b = a[keep], b[keep]
                    for earlier in keys[:place]:  # shared an earlier slice: found there
                        later = earlier[a] != earlier[b]
                        a, b = a[later], b[later]
                    pairs_first.append(a)
                    pairs_second.append(b)
    if not pairs_first:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(pairs_first).astype(np.int64), np.concatenate(pairs_second).astype(np.int64)


def similar_pairs(vectors: np.ndarray, threshold: float, rows: np.ndarray | None = None,
                  block: int = _BLOCK) -> tuple[list[int], list[int], list[float]]:
    """(row, column, cosine), row < column, of every pair of unit vectors with cosine >= ``threshold`` that involves
    one of ``rows`` (default: all), each pair once. Exact, by blockwise matrix products, pruned:
    two unit vectors with cosine >= t are at most r = sqrt(2 - 2t) apart, so their projections on any unit
    direction differ by at most r. Rows sorted by their projection on the vectors' main direction are compared in
    blocks with the columns whose projection is within r of the block's (a window of the sorted order); over all
    rows, only with the later ones (the upper triangle). A few rows are compared with all, unsorted."""
    count = len(vectors)
    everything = rows is None or len(rows) == count
    listed = np.zeros(count, dtype=bool)
    listed[np.arange(count) if rows is None else np.asarray(rows, dtype=np.int64)] = True
    listed_rows = np.flatnonzero(listed)
    if not everything and len(listed_rows) * _FEW < count:
        return _pairs_of_few(vectors, listed_rows, listed, threshold, block)
    projection = vectors @ _main_direction(vectors) if count else np.zeros(0, dtype=np.float32)
    order = np.argsort(projection, kind="stable")
    ordered, by_projection = projection[order], vectors[order]  # one copy: the windows below are views of it
    reach = float(np.sqrt(max(0.0, 2.0 - 2.0 * threshold))) + 1e-4  # float32 rounding
    positions = np.flatnonzero(listed[order])  # the listed rows' places in the sorted order
    found: tuple[list[int], list[int], list[float]] = ([], [], [])
    for start in range(0, len(positions), block):
        chunk = positions[start:start + block]
        low = int(np.searchsorted(ordered, ordered[chunk[0]] - reach, side="left"))
        high = int(np.searchsorted(ordered, ordered[chunk[-1]] + reach, side="right"))
        if everything:
            low = max(low, int(chunk[0]))  # earlier rows were paired with these already
        scores = by_projection[chunk] @ by_projection[low:high].T
        hit_rows, hit_columns = np.nonzero(scores >= threshold)
        row_places, column_places = chunk[hit_rows], low + hit_columns
        pair_rows, pair_columns = order[row_places], order[column_places]
        # a pair is seen from both of its rows when both are listed: keep it from the earlier one
        keep = (column_places > row_places) | ~listed[pair_columns]
        found[0].extend(np.minimum(pair_rows, pair_columns)[keep].tolist())
        found[1].extend(np.maximum(pair_rows, pair_columns)[keep].tolist())
        found[2].extend(scores[hit_rows[keep], hit_columns[keep]].astype(float).tolist())
    return found


def _pairs_of_few(vectors: np.ndarray, rows: np.ndarray, listed: np.ndarray, threshold: float,
                  block: int) -> tuple[list[int], list[int], list[float]]:
    """`similar_pairs` for a few rows (a sync's new photos): each against every vector, without sorting them all."""
    found: tuple[list[int], list[int], list[float]] = ([], [], [])
    for start in range(0, len(rows), block):
        chunk = rows[start:start + block]
        scores = vectors[chunk] @ vectors.T
        hit_rows, columns = np.nonzero(scores >= threshold)
        pair_rows = chunk[hit_rows]
        keep = (columns != pair_rows) & (~listed[columns] | (columns > pair_rows))  # each pair from one row
        found[0].extend(np.minimum(pair_rows, columns)[keep].tolist())
        found[1].extend(np.maximum(pair_rows, columns)[keep].tolist())
        found[2].extend(scores[hit_rows[keep], columns[keep]].astype(float).tolist())
    return found


def _main_direction(vectors: np.ndarray, sample: int = 10_000) -> np.ndarray:
    """The unit direction along which (a sample of) the vectors spread most: their first principal component."""
    rows = vectors[np.linspace(0, len(vectors) - 1, min(sample, len(vectors))).astype(np.int64)]
    centred = rows - rows.mean(axis=0)
    if len(rows) < 2 or not centred.any():
        return np.eye(vectors.shape[1], 1, dtype=np.float32)[:, 0]
    return np.linalg.eigh(centred.T @ centred)[1][:, -1].astype(np.float32)  # eigenvalues ascend


def group_pairs(neighbours: Mapping[str, Mapping[str, float]], threshold: float,
                quality: Callable[[str], Any]) -> DuplicateGroups:
    """Greedy groups (see the module docstring): photos by ``quality`` descending (ties by id), each photo not yet
    grouped takes the photos not yet grouped that are near-duplicates of it (its ``neighbours``: the pairs of a
    `SimilarPairs`, by its rule; ``threshold`` is the one they were found with)."""
    order = sorted((doc_id for doc_id, found in neighbours.items() if found), key=lambda doc_id: doc_id)
    order.sort(key=quality, reverse=True)  # stable: ties keep the id order
    grouped: set[str] = set()
    groups = []
    for doc_id in order:
        if doc_id in grouped:
            continue
        free = sorted(((score, other) for other, score in neighbours[doc_id].items()
                       if other not in grouped), key=lambda item: (-item[0], item[1]))
        if not free:
            continue
        members = (Member(doc_id, 1.0), *(Member(other, score) for score, other in free))
        grouped.update(member.id for member in members)
        groups.append(Group(members))
    groups.sort(key=lambda group: (-group.size, group.id))
    return DuplicateGroups(tuple(groups), threshold)


def photo_quality(metadata: Mapping[str, Any] | None) -> tuple[int, int]:
    """What makes a photo the best of its group: most pixels (the original, not a downscaled copy), then most
    bytes (the least compressed). Photos without metadata tie (then the id decides)."""
    metadata = metadata or {}
    width, height, size = (metadata.get(name) for name in ("width", "height", "size_bytes"))
    pixels = width * height if isinstance(width, int) and isinstance(height, int) else 0
    return pixels, size if isinstance(size, int) else 0


def find_groups(ids: Sequence[str], vectors: np.ndarray, threshold: float,
                metadata: Mapping[str, Mapping[str, Any] | None] | None = None,
                signatures: Sequence[str | None] | None = None, rule: SignatureRule | None = None) -> DuplicateGroups:
    """The near-duplicate groups of one collection, from scratch (the gateway keeps a `SimilarPairs` instead)."""
    pairs = SimilarPairs(threshold, rule=rule)
    pairs.update(ids, vectors, signatures)
    known = metadata or {}
    return group_pairs(pairs.neighbours, threshold, lambda doc_id: photo_quality(known.get(doc_id)))


def _signature_of(record: Record | None) -> str | None:
    value = record.tags.get(SIGNATURE_TAG) if record is not None else None
    return value if isinstance(value, str) else None


def store_groups(folder: str | Path, pairs: SimilarPairs | None = None) -> tuple[DuplicateGroups, SimilarPairs]:
    """The near-duplicate groups of a photo index (all its shards), with the threshold of the model that built it,
    and the pairs they came from. Give the pairs of an earlier call (same threshold) and only the photos added or
    changed since are compared again. Photos pair by their signatures (`SIGNATURE_TAG`) too when the model has a
    signature rule."""
    settings = stored_settings(folder)
    threshold = threshold_for(settings.model_name if settings else None)
    rule = signature_rule_for(settings.model_name if settings else None)
    if pairs is None or pairs.threshold != threshold or pairs.rule != rule:
        pairs = SimilarPairs(threshold, rule=rule)
    ids = sorted(stored_ids(folder))
    stored = read_vectors(folder, ids)
    ids = [doc_id for doc_id in ids if doc_id in stored]  # removed between the two reads
    signatures = None
    if rule is not None:  # a photo's signature is read once: its id is its content (a library's) or it has none
        known = pairs.signatures
        tagged = read_records(folder, [doc_id for doc_id in ids if known.get(doc_id) is None])
        signatures = [known.get(doc_id) or _signature_of(tagged.get(doc_id)) for doc_id in ids]
    dim = settings.dim if settings else 0
    pairs.update(ids, np.stack([stored[doc_id] for doc_id in ids]) if ids else np.zeros((0, dim), np.float32),
                 signatures)
    records = read_records(folder, [doc_id for doc_id, found in pairs.neighbours.items() if found])
    groups = group_pairs(pairs.neighbours, threshold,
                         lambda doc_id: photo_quality(records[doc_id].metadata if doc_id in records else None))
    return groups, pairs
