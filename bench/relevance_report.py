"""Held-out report of the offline model's shipped relevance calibration (issue 12's targets), semantic and hybrid.

    python bench/relevance_report.py

Only held-out data (bench/relevance/heldout_queries.json, and for photo queries the manifest's test captions) is
scored here, with crossmodal/calibration/offline.json as shipped; nothing here is fitted. Each query returns
HELDOUT_LIMIT (5) matches and is flagged no_good_match when the best relevance among them is below 0.5, as the
gateway does:

- semantic: the matches by cosine, relevance from the semantic mapping (`coverage=None`);
- hybrid (the API's and web page's default): the matches in the fused order (crossmodal.search.ranking.fused_order of
the
  semantic ids and the keyword rankings of a real store of the demo), relevance from the keyword mapping with each
  match's keyword coverage. Photo queries have no words and are ranked by meaning in every mode: text->image only.

Prints and writes results/relevance.json: per mode and direction the share of answerable queries with a match of
relevance >= 0.5 (target >= 85 %), the share of unanswerable ones flagged (target >= 85 %), R@1 and R@5 of the
answerable ones; the issue's two example queries in both modes; and draws the reliability diagram (predicted
relevance against observed precision over every kept match, with counts) to docs/reliability.png.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from relevance_data import (  # noqa: E402
    HELDOUT_LIMIT,
    MODE_SETS,
    ROOT,
    SHIPPED,
    DemoEncoded,
    QuerySet,
    heldout_sets,
    labelled,
    returned_relevance,
)

from crossmodal.search.relevance import NO_GOOD_MATCH_BELOW, TEXT_TO_IMAGE, Calibration  # noqa: E402

EXAMPLES = ("a dog catching a frisbee", "a man filming with a camera")
EXAMPLE_LIMIT = 3
BINS = 10


def direction_report(calibration: Calibration, direction: str, answerable: QuerySet,
                     unanswerable: QuerySet) -> dict:
    """The targets' shares, R@1/R@5, and per query its best returned match."""
    def top(query_set: QuerySet) -> list[dict]:
        rows = []
        for name, query in zip(query_set.names, query_set.queries):
            relevance = returned_relevance(calibration, direction, query)
            best = int(np.argmax(relevance))
            row = {"query": name, "first_score": round(float(query.scores[0]), 4),
                   "first_is_true": bool(query.labels[0]),
                   "true_in_returned": bool(np.any(query.labels[:HELDOUT_LIMIT])),
                   "best_relevance": round(float(relevance[best]), 4),
                   "best_relevance_rank": best + 1, "best_relevance_is_true": bool(query.labels[best])}
            if query.coverage is not None:
                row["best_relevance_keyword_coverage"] = round(float(query.coverage[best]), 4)
            rows.append(row)
        return rows

    answered, unanswered = top(answerable), top(unanswerable)
    relevant = [row["best_relevance"] >= NO_GOOD_MATCH_BELOW for row in answered]
    flagged = [row["best_relevance"] < NO_GOOD_MATCH_BELOW for row in unanswered]
    return {
        "answerable_queries": len(answered),
        "unanswerable_queries": len(unanswered),
        "answerable_top_relevance_at_least_0.5": round(float(np.mean(relevant)), 4),
        "unanswerable_flagged_no_good_match": round(float(np.mean(flagged)), 4),
        "answerable_r_at_1": round(float(np.mean([row["first_is_true"] for row in answered])), 4),
        f"answerable_r_at_{HELDOUT_LIMIT}": round(float(np.mean([row["true_in_returned"] for row in answered])), 4),
        "answerable_best_relevance_true_and_at_least_0.5": round(float(np.mean(
            [row["best_relevance_is_true"] and ok for row, ok in zip(answered, relevant)])), 4),
        "answerable": answered,
        "unanswerable": unanswered,
    }


def reliability(calibration: Calibration, direction: str, sets: tuple[QuerySet, QuerySet]) -> dict:
    """Predicted relevance against observed precision over every kept match, in BINS equal-width bins."""
    predicted, observed = [], []
    for query_set in sets:
        for query in query_set.queries:
            predicted.append(returned_relevance(calibration, direction, query, len(query.scores)))
            observed.append(query.labels)
    p, y = np.concatenate(predicted), np.concatenate(observed).astype(float)
    index = np.minimum((p * BINS).astype(int), BINS - 1)
    bins = [{"from": b / BINS, "to": (b + 1) / BINS, "count": int(np.sum(index == b)),
             "mean_predicted": round(float(p[index == b].mean()), 4) if np.any(index == b) else None,
             "observed_precision": round(float(y[index == b].mean()), 4) if np.any(index == b) else None}
            for b in range(BINS)]
    return {"matches": len(p), "brier": round(float(np.mean((p - y) ** 2)), 5), "bins": bins}


def draw(diagrams: dict[str, dict[str, dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(mode, direction, diagram) for mode, by_direction in diagrams.items()
              for direction, diagram in by_direction.items()]
    figure, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 5))
    colours = {"semantic": "tab:blue", "hybrid": "tab:green"}
    for axis, (mode, direction, diagram) in zip(np.atleast_1d(axes), panels):
        filled = [b for b in diagram["bins"] if b["count"]]
        x = [b["mean_predicted"] for b in filled]
        y = [b["observed_precision"] for b in filled]
        axis.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
        axis.plot(x, y, "o-", color=colours.get(mode, "tab:blue"), label=f"held-out matches, {mode}")
        for b, xi, yi in zip(filled, x, y):
            axis.annotate(f"n={b['count']}", (xi, yi), textcoords="offset points", xytext=(4, -12), fontsize=8)
        axis.axvline(NO_GOOD_MATCH_BELOW, color="tab:red", linewidth=0.8, label="no good match below")
        axis.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted relevance (bin mean)", ylabel="observed precision",
                 title=f"offline {mode}, {direction}: {diagram['matches']} matches, Brier {diagram['brier']:.3f}")
        axis.title.set_fontsize(10)
        axis.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def examples(calibration: Calibration, encoded: DemoEncoded) -> list[dict]:
    """The issue's two queries in both modes: their first EXAMPLE_LIMIT matches and no_good_match over them."""
    rows = []
    for text, vector in zip(EXAMPLES, encoded.texts(list(EXAMPLES))):
        semantic = labelled(vector, encoded.images, [False] * len(encoded.photos))
        semantic_photos = [encoded.photos[i] for i in np.argsort(-(encoded.images @ vector), kind="stable")]
        hybrid = encoded.keywords.hybrid(text, vector, set())
        hybrid_photos = [encoded.keywords.photo_of_id[doc_id] for doc_id in encoded.keywords.fused_ids(text, vector)]
        row = {"query": text, "distribution": vars(semantic.distribution), "modes": {}}
        for mode, query, photos in (("semantic", semantic, semantic_photos), ("hybrid", hybrid, hybrid_photos)):
            relevance = returned_relevance(calibration, TEXT_TO_IMAGE, query, EXAMPLE_LIMIT)
            matches = []
            for i, (photo, score, value) in enumerate(zip(photos, query.scores, relevance)):
                match = {"photo": photo, "score": round(float(score), 4), "relevance": round(float(value), 4)}
                if query.coverage is not None:
                    match["keyword_coverage"] = round(float(query.coverage[i]), 4)
                matches.append(match)
            row["modes"][mode] = {"matches": matches,
                                  "no_good_match": bool(np.max(relevance) < NO_GOOD_MATCH_BELOW)}
        rows.append(row)
    return rows


def main() -> None:
    calibration = Calibration.from_json(SHIPPED.read_text(encoding="utf-8"))
    encoded = DemoEncoded()
    sets = heldout_sets(encoded)
    report = {"model": calibration.model, "calibration": str(SHIPPED.relative_to(ROOT)),
              "calibration_fit": {d: {"features": list(m.features), "coefficients": list(m.coefficients),
                                      "intercept": m.intercept,
                                      "fitted_on": {"queries": m.queries, "answerable_queries": m.answerable_queries,
                                                    "pairs": m.pairs}, "quality": vars(m.quality)}
                                  for d, m in calibration.mappings.items()},
              "targets": {"answerable_top_relevance_at_least_0.5": 0.85, "unanswerable_flagged_no_good_match": 0.85},
              "returned_matches_per_query": HELDOUT_LIMIT,
              "heldout": {mode: {d: direction_report(calibration, d, *sets[key]) for d, key in keys.items()}
                          for mode, keys in MODE_SETS.items()},
              "reliability": {mode: {d: reliability(calibration, d, sets[key]) for d, key in keys.items()}
                              for mode, keys in MODE_SETS.items()},
              "examples": examples(calibration, encoded)}
    draw(report["reliability"], ROOT / "docs" / "reliability.png")
    output = ROOT / "results" / "relevance.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for direction, fit in report["calibration_fit"].items():
        coefficients = {f: round(c, 3) for f, c in zip(fit['features'], fit['coefficients'])}
        print(f"calibration fit {direction}: {coefficients} "
              f"intercept {fit['intercept']:.3f}; {fit['fitted_on']}, {fit['quality']}")
    for mode, by_direction in report["heldout"].items():
        for direction, result in by_direction.items():
            print(f"held-out {mode} {direction}: answerable with relevance >= 0.5: "
                  f"{result['answerable_top_relevance_at_least_0.5']:.0%} of {result['answerable_queries']} "
                  f"(target 85%); unanswerable flagged: {result['unanswerable_flagged_no_good_match']:.0%} of "
                  f"{result['unanswerable_queries']} (target 85%); R@1 {result['answerable_r_at_1']:.0%}, "
                  f"R@{HELDOUT_LIMIT} {result[f'answerable_r_at_{HELDOUT_LIMIT}']:.0%}; best relevance true and "
                  f">= 0.5 {result['answerable_best_relevance_true_and_at_least_0.5']:.0%}")
    for mode, by_direction in report["reliability"].items():
        for direction, diagram in by_direction.items():
            print(f"reliability {mode} {direction} (Brier {diagram['brier']}): " + ", ".join(
                f"[{b['from']:.1f},{b['to']:.1f}) n={b['count']} p={b['observed_precision']}"
                for b in diagram["bins"] if b["count"]))
    for example in report["examples"]:
        for mode, answer in example["modes"].items():
            print(f"{example['query']!r} {mode}: " + ", ".join(
                f"{m['photo']} {m['score']:.3f}" + (f" cov {m['keyword_coverage']:.2f}" if "keyword_coverage" in m
                                                    else "") + f" -> {m['relevance']:.3f}"
                for m in answer["matches"]) + f"; no_good_match {answer['no_good_match']}")
    print(f"wrote {output.relative_to(ROOT)} and docs/reliability.png")


if __name__ == "__main__":
    main()
