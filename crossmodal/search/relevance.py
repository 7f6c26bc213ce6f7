"""Calibrated relevance: the probability that a match is a true match, comparable across queries.

Raw cosine is not comparable across queries: on the demo, "a dog catching a frisbee" (no dog in the collection)
gets a grass photo at 0.251, above the correct photo of "a man filming with a camera" (0.237). What differs is the
query's background: the dog query's scores over the photos are spread far wider (mean -0.037, std 0.126) than the
camera query's (mean -0.010, std 0.077), so its best score stands 2.3 standard deviations above its mean and the
camera's 3.2. A match's relevance here is a logistic regression, fitted per model and per direction, on two
features (`FEATURES`):

- `score`: the raw cosine, which carries how close the pair is in absolute terms;
- `standardised_score`: (score - mean) / std of the query's scores over a sample of the target index (at most
  `SAMPLE_SIZE` vectors): a per-query normalisation that removes the query's own offset and spread.

Why these two and nothing else (measured on the calibration set, see bench/relevance_report.py and the report):
- Both are properties of the pair and of the query's *distribution* over the collection, whose expectations do not
  depend on how many documents the collection holds (a sample of 1,000 estimates a mean and std to about 3 %).
  Features that depend on who else is in the collection (the rank, the gap to the top-1 score, the top-1 score of
  a small collection) would learn the demo's 19 photos: in `-t evaluate` data every query is answerable, so a
  "gap to the top" feature learns that the top match is right and then calls the best of an unanswerable query's
  wrong matches right too. With `score` and `standardised_score` the best match of an unanswerable query is scored
  like the wrong matches it resembles, so "no good match" is learnt from wrong matches alone.
- A CSLS-style hubness correction (2*cos - mean cosine of the photo to its 10 nearest unanswerable queries) moved
  the separation of calibration captions' top matches from their leave-one-out ones from AUC 0.741 to 0.746 and
  lowered R@1 from 49 % to 47 %, and it needs a statistic stored per document; it is not used.
- On the calibration set (5-fold by photo) `score` alone separated a correct top match from an unanswerable
  query's top better (AUC 0.84) than `standardised_score` alone (0.80); the pair fitted together was as good as
  either and is kept because the standardised score is what tells the issue's two queries apart.
- Every coefficient is kept non-negative (a feature whose fitted weight is negative is dropped and the rest refit),
  so a higher score never gives a lower relevance, whatever the query's distribution.

Queries are weighted so that answerable and unanswerable queries count equally in a fit that has both: the mix of
a calibration set is an accident of how it was written, and equal odds is the neutral prior.

Keyword evidence. A query that was also searched by keyword (hybrid and keyword modes) has a third feature per
match, `keyword_coverage` in [0, 1]: the share of the query's searched words (crossmodal.index.keywords.query_terms)
that the match holds in its names and captions together (crossmodal.search.ranking.keyword_coverage); 0 for a match the
keyword search did not find. A photo whose captions and names hold every word of the query is evidence that the cosine
does not carry (the offline model's R@1 on held-out text queries is 53 %). It gets its own mapping per direction,
`<direction>+keywords` (`KEYWORD_FEATURES`: score, standardised_score, keyword_coverage), fitted on the same kind
of data with coverage computed as the gateway computes it (bench/relevance_data.py builds a real store of the demo).
`Calibration.relevance(..., coverage=...)` uses it when the query was searched by keyword and the calibration has
one, else the semantic mapping: a calibration written by `-t evaluate` (semantic mappings only) works in every mode.
Like the others, its coefficients are non-negative, so more of the query's words never lowers a match's relevance.
The distribution-free argument above holds for coverage too: it is a property of the pair alone.

Targets without text (issue 21). Keyword coverage is only evidence where the target can hold the query's words:
a photo with captions (or, later, text found in the photo). A photo of a caption-less folder never can, so the
keyword mapping, fitted where captions hold the words, read its coverage 0 as evidence against (the right dogs
photo of a user's folder: 0.05 in hybrid, 0.59 in semantic mode). Such a target gets its own mapping per direction,
`<direction>+no_text` (SEMANTIC_FEATURES), fitted on a caption-less calibration set (photos that ship in packages
and compositions, bench/caption_less_data.py), in every mode. A keyword hit such a target does have (a word of its
file or folder name: camera counters and words like "copy" or "small" are not searched there, see
crossmodal.index.keywords.NAME_STOP_WORDS) still counts: its relevance is the keyword mapping's where that is higher. So
absent keyword evidence never counts against a match, present evidence counts for it.
`Calibration.relevance(..., has_text=...)` says per match which it is; without `has_text` every target
counts as having text (the behaviour before). A calibration without a `+no_text` mapping uses the semantic one for
such targets: absent evidence still does not count against.
"""
from __future__ import annotations

import importlib.resources
import json
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_SIZE = 1000
NO_GOOD_MATCH_BELOW = 0.5
FORMAT_VERSION = 2  # 2: features per mapping, keyword mappings (`<direction>+keywords`); 1 is still read
READABLE_FORMATS = (1, 2)
CALIBRATION_DIR = "calibration"  # <workspace>/calibration/<model>.json; the package's own is crossmodal/calibration/

TEXT_TO_IMAGE = "text->image"
IMAGE_TO_TEXT = "image->text"
TEXT_TO_TEXT = "text->text"
IMAGE_TO_IMAGE = "image->image"
DIRECTIONS = (TEXT_TO_IMAGE, IMAGE_TO_TEXT, TEXT_TO_TEXT, IMAGE_TO_IMAGE)
KEYWORDS_SUFFIX = "+keywords"
NO_TEXT_SUFFIX = "+no_text"

SEMANTIC_FEATURES = ("score", "standardised_score")
KEYWORD_FEATURES = (*SEMANTIC_FEATURES, "keyword_coverage")
FEATURES = SEMANTIC_FEATURES  # the features of a semantic mapping (the only kind before format 2)
_MIN_STD = 1e-6  # below this a distribution has no spread (one vector, or all equal): no standardised score
_ECE_BINS = 10


def direction(query_modality: str, target_modality: str) -> str:
    """"text->image" etc. from the modalities of the query and of the index searched."""
    name = f"{query_modality}->{target_modality}"
    if name not in DIRECTIONS:
        raise ValueError(f"unknown direction {name!r}; expected one of {', '.join(DIRECTIONS)}")
    return name


def keyword_direction(name: str) -> str:
    """The key of a direction's keyword mapping: "text->image" -> "text->image+keywords"."""
    if name not in DIRECTIONS:
        raise ValueError(f"unknown direction {name!r}; expected one of {', '.join(DIRECTIONS)}")
    return name + KEYWORDS_SUFFIX


def no_text_direction(name: str) -> str:
    """The key of a direction's mapping for targets without text: "text->image" -> "text->image+no_text"."""
    if name not in DIRECTIONS:
        raise ValueError(f"unknown direction {name!r}; expected one of {', '.join(DIRECTIONS)}")
    return name + NO_TEXT_SUFFIX


KEYWORD_DIRECTIONS = tuple(keyword_direction(name) for name in DIRECTIONS)
NO_TEXT_DIRECTIONS = tuple(no_text_direction(name) for name in DIRECTIONS)
MAPPING_KEYS = DIRECTIONS + KEYWORD_DIRECTIONS + NO_TEXT_DIRECTIONS


def features_of(key: str) -> tuple[str, ...]:
    """The features of the mapping stored under `key` (a direction, its keyword mapping or its mapping for
    targets without text)."""
    if key in DIRECTIONS or key in NO_TEXT_DIRECTIONS:
        return SEMANTIC_FEATURES
    if key in KEYWORD_DIRECTIONS:
        return KEYWORD_FEATURES
    raise ValueError(f"unknown direction {key!r}; expected one of {', '.join(MAPPING_KEYS)}")


@dataclass(frozen=True)
class ScoreDistribution:
    """A query's cosine scores over a sample of the target index: mean, population std, sample size."""

    mean: float
    std: float
    count: int


EMPTY_DISTRIBUTION = ScoreDistribution(0.0, 0.0, 0)


def sample_positions(count: int, size: int = SAMPLE_SIZE) -> np.ndarray:
    """Which of `count` stored vectors to sample: all of them up to `size`, else `size` evenly spaced (deterministic,
    so a query's relevance does not change from one request to the next)."""
    if count <= size:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, size).round().astype(np.int64))


def score_distribution(queries: np.ndarray, sample: np.ndarray) -> list[ScoreDistribution]:
    """Each query's distribution over `sample` (rows L2-normalised, so the inner product is the cosine)."""
    queries = np.atleast_2d(np.asarray(queries, dtype=np.float64))
    sample = np.asarray(sample, dtype=np.float64).reshape(-1, queries.shape[1])
    if len(sample) == 0:
        return [EMPTY_DISTRIBUTION for _ in range(len(queries))]
    scores = queries @ sample.T
    return [ScoreDistribution(float(mean), float(std), len(sample))
            for mean, std in zip(scores.mean(axis=1), scores.std(axis=1))]


def pool(distributions: Sequence[ScoreDistribution]) -> ScoreDistribution:
    """The distribution of the union of the samples (one per shard), exactly: count-weighted mean and variance."""
    parts = [d for d in distributions if d.count > 0]
    total = sum(d.count for d in parts)
    if total == 0:
        return EMPTY_DISTRIBUTION
    mean = sum(d.count * d.mean for d in parts) / total
    second_moment = sum(d.count * (d.std ** 2 + d.mean ** 2) for d in parts) / total
    return ScoreDistribution(float(mean), float(np.sqrt(max(second_moment - mean ** 2, 0.0))), total)


def features(scores: np.ndarray, distribution: ScoreDistribution, coverage: np.ndarray | None = None) -> np.ndarray:
    """[n, 2] (SEMANTIC_FEATURES): each score and its standardised value against the query's distribution; with
    `coverage` (one value per score, clipped to [0, 1]), [n, 3] (KEYWORD_FEATURES)."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if distribution.count > 1 and distribution.std > _MIN_STD:
        standardised = (scores - distribution.mean) / distribution.std
    else:
        standardised = np.zeros_like(scores)
    if coverage is None:
        return np.column_stack([scores, standardised])
    covered = np.asarray(coverage, dtype=np.float64).reshape(-1)
    if len(covered) != len(scores):
        raise ValueError(f"{len(covered)} keyword coverages for {len(scores)} scores")
    return np.column_stack([scores, standardised, np.clip(np.nan_to_num(covered), 0.0, 1.0)])


@dataclass(frozen=True)
class LabelledQuery:
    """One query's scores best first, its distribution over the collection, and whether each match is true.

    `has_answer` says whether the collection holds a true match at all (it may rank below the scores kept); left
    None, a query is answerable when one of its kept matches is true. `coverage`, for a query that was also
    searched by keyword, is each match's keyword coverage; its matches are then in the order the answer returns
    them (hybrid: fused), not necessarily by score.
    """

    scores: np.ndarray
    distribution: ScoreDistribution
    labels: np.ndarray
    has_answer: bool | None = None
    coverage: np.ndarray | None = None

    def __post_init__(self) -> None:
        count = len(np.asarray(self.scores).reshape(-1))
        if count != len(np.asarray(self.labels).reshape(-1)):
            raise ValueError("a labelled query needs one label per score")
        if self.coverage is not None and len(np.asarray(self.coverage).reshape(-1)) != count:
            raise ValueError("a labelled query needs one keyword coverage per score")

    @property
    def answerable(self) -> bool:
        return bool(np.any(self.labels)) if self.has_answer is None else self.has_answer


@dataclass(frozen=True)
class Quality:
    """How well a mapping fits its own data: per-match Brier score and expected calibration error, and per query
    the share of answerable ones whose best match is relevant and of unanswerable ones flagged "no good match"."""

    brier: float
    ece: float
    answerable_top_relevant: float | None
    unanswerable_flagged: float | None


@dataclass(frozen=True)
class DirectionMapping:
    """A logistic regression over `features` (SEMANTIC_FEATURES or KEYWORD_FEATURES):
    relevance = sigmoid(intercept + coefficients . features)."""

    coefficients: tuple[float, ...]
    intercept: float
    queries: int
    answerable_queries: int
    pairs: int
    positives: int
    quality: Quality
    features: tuple[str, ...] = SEMANTIC_FEATURES

    @property
    def uses_keywords(self) -> bool:
        return self.features == KEYWORD_FEATURES

    def probabilities(self, scores: np.ndarray, distribution: ScoreDistribution,
                      coverage: np.ndarray | None = None) -> np.ndarray:
        """Each match's relevance; a keyword mapping needs `coverage`, a semantic one ignores it."""
        if self.uses_keywords and coverage is None:
            raise ValueError("a keyword mapping needs the keyword coverage of each match")
        x = features(scores, distribution, coverage if self.uses_keywords else None)
        logits = x @ np.asarray(self.coefficients) + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(logits, -500, 500)))


@dataclass(frozen=True)
class Calibration:
    """A model's relevance mappings, one per direction it was fitted for, and what they were fitted on."""

    model: str
    description: str
    mappings: Mapping[str, DirectionMapping] = field(default_factory=dict)

    def relevance(self, direction: str, scores: np.ndarray, distribution: ScoreDistribution,
                  coverage: np.ndarray | None = None, has_text: np.ndarray | None = None) -> np.ndarray | None:
        """The probability in [0, 1] that each match (scores best first) is a true match; None without a mapping.

        `coverage`: None for a query searched by meaning only; for one also searched by keyword (hybrid, keyword
        mode) each match's keyword coverage in [0, 1], aligned with `scores` (0 where the keyword search did not
        find it). With coverage, the direction's keyword mapping is used when the calibration has one, else its
        semantic mapping. Each value depends only on its own score (and coverage) and the query's distribution,
        so it does not change with the number of matches requested.

        `has_text`: per match, whether the target can hold keyword evidence (a photo with captions); None: all can.
        A match that cannot gets the direction's `+no_text` mapping (else its semantic one), or the keyword
        mapping's value where its coverage is above 0 and that is higher.
        """
        if has_text is not None:
            textful = np.asarray(has_text, dtype=bool).reshape(-1)
            if len(textful) != len(np.asarray(scores).reshape(-1)):
                raise ValueError(f"{len(textful)} has_text values for {len(np.asarray(scores).reshape(-1))} scores")
            if not textful.all():
                return self._relevance_without_text(direction, scores, distribution, coverage, textful)
        if coverage is not None:
            mapping = self.mappings.get(keyword_direction(direction))
            if mapping is not None:
                return mapping.probabilities(scores, distribution, coverage)
        mapping = self.mappings.get(direction)
        if mapping is None:
            return None
        return mapping.probabilities(scores, distribution)

    def _relevance_without_text(self, direction: str, scores: np.ndarray, distribution: ScoreDistribution,
                                coverage: np.ndarray | None, textful: np.ndarray) -> np.ndarray | None:
        """`relevance` when some matches cannot hold keyword evidence (`textful` false): those get the direction's
        `+no_text` mapping (else its semantic one), so a caption they lack is not evidence against; a keyword hit
        they do have (a word of a file or folder name) still counts: where the keyword mapping says more, it is
        used. The others get `relevance` as if every match had text."""
        no_text = self.mappings.get(no_text_direction(direction)) or self.mappings.get(direction)
        if no_text is None:
            return None
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        covered = None if coverage is None else np.asarray(coverage, dtype=np.float64).reshape(-1)
        values = no_text.probabilities(scores, distribution)
        keyword = self.mappings.get(keyword_direction(direction))
        if covered is not None and keyword is not None and (found := covered > 0).any():
            values[found] = np.maximum(values[found],
                                       keyword.probabilities(scores[found], distribution, covered[found]))
        if textful.any():
            with_text = self.relevance(direction, scores[textful], distribution,
                                       None if covered is None else covered[textful])
            if with_text is None:
                return None
            values[textful] = with_text
        return values

    def to_json(self) -> str:
        return json.dumps({
            "format": FORMAT_VERSION,
            "model": self.model,
            "description": self.description,
            "no_good_match_below": NO_GOOD_MATCH_BELOW,
            "directions": {name: _mapping_to_dict(mapping) for name, mapping in self.mappings.items()},
        }, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        """Read format 2, or format 1 (semantic mappings only, one feature list for the file); refuse any other
        format, unknown directions, features that are not the direction's, or a negative coefficient."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") not in READABLE_FORMATS:
            found = data.get("format") if isinstance(data, dict) else None
            raise ValueError(f"calibration format {found!r} is not one this version reads "
                             f"({', '.join(map(str, READABLE_FORMATS))}); it was written by another version: "
                             "run `-t evaluate` again to rewrite it")
        if data["format"] == 1:
            if tuple(data["features"]) != SEMANTIC_FEATURES:
                raise ValueError(f"calibration features {data['features']} are not {list(SEMANTIC_FEATURES)}")
            directions = {name: {**value, "features": data["features"]} for name, value in data["directions"].items()}
        else:
            directions = data["directions"]
        unknown = set(directions) - set(MAPPING_KEYS)
        if unknown:
            raise ValueError(f"unknown directions in calibration: {sorted(unknown)}")
        mappings = {name: _mapping_from_dict(name, value) for name, value in directions.items()}
        return cls(str(data["model"]), str(data["description"]), mappings)


def _mapping_to_dict(mapping: DirectionMapping) -> dict[str, Any]:
    return {
        "features": list(mapping.features),
        "coefficients": list(mapping.coefficients),
        "intercept": mapping.intercept,
        "fitted_on": {"queries": mapping.queries, "answerable_queries": mapping.answerable_queries,
                      "pairs": mapping.pairs, "positives": mapping.positives},
        "quality": vars(mapping.quality),
    }


def _mapping_from_dict(key: str, data: dict[str, Any]) -> DirectionMapping:
    expected = features_of(key)
    if tuple(data["features"]) != expected:
        raise ValueError(f"calibration {key}: features {data['features']} are not {list(expected)}")
    coefficients = tuple(float(value) for value in data["coefficients"])
    if len(coefficients) != len(expected):
        raise ValueError(f"calibration {key}: {len(coefficients)} coefficients for {len(expected)} features")
    intercept = float(data["intercept"])
    if not all(np.isfinite([*coefficients, intercept])) or min(coefficients) < 0:
        raise ValueError(f"calibration {key}: coefficients must be finite and non-negative, got {coefficients}")
    fitted = data["fitted_on"]
    return DirectionMapping(coefficients, intercept, int(fitted["queries"]),
                            int(fitted["answerable_queries"]), int(fitted["pairs"]), int(fitted["positives"]),
                            Quality(**data["quality"]), expected)


def fit_direction(queries: Sequence[LabelledQuery], regularisation: float = 1e4) -> DirectionMapping:
    """Fit one direction's logistic regression (scikit-learn), keeping the coefficients non-negative.

    Over KEYWORD_FEATURES when every query carries its keyword coverage, over SEMANTIC_FEATURES when none does.
    """
    from sklearn.linear_model import LogisticRegression  # scikit-learn loads in ~1 s: only when fitting

    if not queries:
        raise ValueError("no labelled queries to fit")
    with_coverage = sum(q.coverage is not None for q in queries)
    if with_coverage not in (0, len(queries)):
        raise ValueError("either every labelled query of a direction has its keyword coverage or none has")
    names = KEYWORD_FEATURES if with_coverage else SEMANTIC_FEATURES
    x = np.vstack([features(q.scores, q.distribution, q.coverage) for q in queries])
    y = np.concatenate([np.asarray(q.labels, dtype=bool).reshape(-1) for q in queries])
    if y.all() or not y.any():
        raise ValueError("a calibration needs both true and false matches")
    weights = np.concatenate([np.full(len(y_q), w) for y_q, w in zip((q.labels for q in queries),
                                                                         _query_weights(queries))])
    active = list(range(len(names)))
    while True:
        model = LogisticRegression(C=regularisation, max_iter=10_000)
        model.fit(x[:, active], y, sample_weight=weights)
        fitted = model.coef_[0]
        if (fitted >= 0).all() or len(active) == 1:
            break
        active = [column for column, value in zip(active, fitted) if value >= 0] or [active[int(np.argmax(fitted))]]
    coefficients = np.zeros(len(names))
    coefficients[active] = np.maximum(fitted, 0.0)
    intercept = float(model.intercept_[0])
    probabilities = 1.0 / (1.0 + np.exp(-(x @ coefficients + intercept)))
    mapping = DirectionMapping(tuple(float(c) for c in coefficients), intercept, len(queries),
                               sum(q.answerable for q in queries), len(y), int(y.sum()),
                               Quality(0.0, 0.0, None, None), names)
    return replace(mapping, quality=measure(mapping, queries, probabilities, y))


def measure(mapping: DirectionMapping, queries: Sequence[LabelledQuery],
            probabilities: np.ndarray | None = None, labels: np.ndarray | None = None) -> Quality:
    """Brier score, expected calibration error (10 equal-width bins) and the per-query no-good-match rates (a
    query's best relevance over its kept matches: its top-scored one's for a semantic mapping)."""
    if probabilities is None or labels is None:
        probabilities = np.concatenate([mapping.probabilities(q.scores, q.distribution, q.coverage)
                                        for q in queries])
        labels = np.concatenate([np.asarray(q.labels, dtype=bool).reshape(-1) for q in queries])
    top = [float(np.max(mapping.probabilities(q.scores, q.distribution, q.coverage))) for q in queries]
    answerable = [t >= NO_GOOD_MATCH_BELOW for t, q in zip(top, queries) if q.answerable]
    unanswerable = [t < NO_GOOD_MATCH_BELOW for t, q in zip(top, queries) if not q.answerable]
    return Quality(round(float(np.mean((probabilities - labels) ** 2)), 6),
                   round(expected_calibration_error(probabilities, labels), 6),
                   round(float(np.mean(answerable)), 4) if answerable else None,
                   round(float(np.mean(unanswerable)), 4) if unanswerable else None)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = _ECE_BINS) -> float:
    """Count-weighted mean |predicted - observed| over equal-width probability bins."""
    index = np.minimum((np.asarray(probabilities) * bins).astype(int), bins - 1)
    labels = np.asarray(labels, dtype=float)
    error = sum(abs(probabilities[index == b].mean() - labels[index == b].mean()) * np.sum(index == b)
                for b in range(bins) if np.any(index == b))
    return float(error / len(labels))


def _query_weights(queries: Sequence[LabelledQuery]) -> list[float]:
    """Equal total weight for answerable and unanswerable queries when there are both; 1 each otherwise."""
    answerable = sum(q.answerable for q in queries)
    unanswerable = len(queries) - answerable
    if not answerable or not unanswerable:
        return [1.0] * len(queries)
    half = len(queries) / 2
    return [half / answerable if q.answerable else half / unanswerable for q in queries]


def fit_calibration(model_name: str, samples: Mapping[str, Sequence[LabelledQuery]],
                    description: str) -> Calibration:
    """A calibration with one mapping per direction that has labelled queries (see fit_direction).

    `samples` keys are directions ("text->image") or their keyword mappings ("text->image+keywords", whose
    queries carry their keyword coverage)."""
    unknown = set(samples) - set(MAPPING_KEYS)
    if unknown:
        raise ValueError(f"unknown directions: {sorted(unknown)}; expected some of {', '.join(MAPPING_KEYS)}")
    for name, queries in samples.items():
        if any((q.coverage is not None) != (name in KEYWORD_DIRECTIONS) for q in queries):
            raise ValueError(f"{name}: the queries of a keyword mapping, and only those, carry keyword coverage")
    return Calibration(model_name, description,
                       {name: fit_direction(queries) for name, queries in samples.items() if queries})


def calibration_file_name(model_name: str) -> str:
    """`<model>.json`, the model name made safe for a file name (`vsepp:run` -> `vsepp_run.json`)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", model_name) + ".json"


def workspace_calibration_path(workspace: Path, model_name: str) -> Path:
    return Path(workspace) / CALIBRATION_DIR / calibration_file_name(model_name)


def save_calibration(calibration: Calibration, path: Path) -> None:
    """Write atomically: a temporary file beside `path`, fsynced, then renamed over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(calibration.to_json())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_calibration(model_name: str, workspace: Path | None) -> Calibration | None:
    """The workspace's `calibration/<model>.json` (from `-t evaluate`), else the package's own, else None.

    Raises ValueError, naming the file, for a file this version cannot read (another format, unknown directions)."""
    if workspace is not None:
        path = workspace_calibration_path(workspace, model_name)
        if path.is_file():
            return _read(path.read_text(encoding="utf-8"), str(path))
    shipped = importlib.resources.files("crossmodal.calibration") / calibration_file_name(model_name)
    if shipped.is_file():
        return _read(shipped.read_text(encoding="utf-8"), str(shipped))
    return None


def _read(text: str, where: str) -> Calibration:
    try:
        return Calibration.from_json(text)
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"cannot read the relevance calibration {where}: {error}") from error
