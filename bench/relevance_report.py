"""Held-out report of the offline model's shipped relevance calibration (issue 12's targets).

    python bench/relevance_report.py

Only held-out data (bench/relevance/heldout_queries.json, and for photo queries the manifest's test captions) is
scored here, with crossmodal/calibration/offline.json as shipped; nothing here is fitted. Prints and writes
results/relevance.json: the share of answerable queries whose best match has relevance >= 0.5 (target >= 85 %), the
share of unanswerable ones flagged no_good_match (target >= 85 %), R@1 of the answerable ones, per direction; the
issue's two example queries; and draws the reliability diagram (predicted relevance against observed precision,
with counts) to docs/reliability.png.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from relevance_data import ROOT, SHIPPED, DemoEncoded, QuerySet, heldout_sets, labelled  # noqa: E402

from crossmodal.relevance import NO_GOOD_MATCH_BELOW, TEXT_TO_IMAGE, Calibration  # noqa: E402

EXAMPLES = ("a dog catching a frisbee", "a man filming with a camera")
BINS = 10


def direction_report(calibration: Calibration, direction: str, answerable: QuerySet,
                     unanswerable: QuerySet) -> dict:
    """The targets' shares, R@1, and the per-query top matches of one direction."""
    def top(query_set: QuerySet) -> list[dict]:
        rows = []
        for name, query in zip(query_set.names, query_set.queries):
            relevance = calibration.relevance(direction, query.scores, query.distribution)
            assert relevance is not None, f"the calibration has no {direction} mapping"
            rows.append({"query": name, "top_score": round(float(query.scores[0]), 4),
                         "top_relevance": round(float(relevance[0]), 4), "top_is_true": bool(query.labels[0])})
        return rows

    answered, unanswered = top(answerable), top(unanswerable)
    relevant = [row["top_relevance"] >= NO_GOOD_MATCH_BELOW for row in answered]
    flagged = [row["top_relevance"] < NO_GOOD_MATCH_BELOW for row in unanswered]
    return {
        "answerable_queries": len(answered),
        "unanswerable_queries": len(unanswered),
        "answerable_top_relevance_at_least_0.5": round(float(np.mean(relevant)), 4),
        "unanswerable_flagged_no_good_match": round(float(np.mean(flagged)), 4),
        "answerable_r_at_1": round(float(np.mean([row["top_is_true"] for row in answered])), 4),
        "answerable_top_true_and_relevant": round(float(np.mean(
            [row["top_is_true"] and ok for row, ok in zip(answered, relevant)])), 4),
        "answerable": answered,
        "unanswerable": unanswered,
    }


def reliability(calibration: Calibration, direction: str, sets: tuple[QuerySet, QuerySet]) -> dict:
    """Predicted relevance against observed precision over every kept match, in BINS equal-width bins."""
    predicted, observed = [], []
    for query_set in sets:
        for query in query_set.queries:
            relevance = calibration.relevance(direction, query.scores, query.distribution)
            assert relevance is not None
            predicted.append(relevance)
            observed.append(query.labels)
    p, y = np.concatenate(predicted), np.concatenate(observed).astype(float)
    index = np.minimum((p * BINS).astype(int), BINS - 1)
    bins = [{"from": b / BINS, "to": (b + 1) / BINS, "count": int(np.sum(index == b)),
             "mean_predicted": round(float(p[index == b].mean()), 4) if np.any(index == b) else None,
             "observed_precision": round(float(y[index == b].mean()), 4) if np.any(index == b) else None}
            for b in range(BINS)]
    return {"matches": len(p), "brier": round(float(np.mean((p - y) ** 2)), 5), "bins": bins}


def draw(diagrams: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(diagrams), figsize=(5.5 * len(diagrams), 5))
    for axis, (direction, diagram) in zip(np.atleast_1d(axes), diagrams.items()):
        filled = [b for b in diagram["bins"] if b["count"]]
        x = [b["mean_predicted"] for b in filled]
        y = [b["observed_precision"] for b in filled]
        axis.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
        axis.plot(x, y, "o-", color="tab:blue", label="held-out matches")
        for b, xi, yi in zip(filled, x, y):
            axis.annotate(f"n={b['count']}", (xi, yi), textcoords="offset points", xytext=(4, -12), fontsize=8)
        axis.axvline(NO_GOOD_MATCH_BELOW, color="tab:red", linewidth=0.8, label="no good match below")
        axis.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted relevance (bin mean)", ylabel="observed precision",
                 title=f"offline, {direction}: {diagram['matches']} matches, Brier {diagram['brier']:.3f}")
        axis.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def examples(calibration: Calibration, encoded: DemoEncoded) -> list[dict]:
    rows = []
    for text, vector in zip(EXAMPLES, encoded.texts(list(EXAMPLES))):
        query = labelled(vector, encoded.images, [False] * len(encoded.photos))
        relevance = calibration.relevance(TEXT_TO_IMAGE, query.scores, query.distribution)
        assert relevance is not None
        order = np.argsort(-(encoded.images @ vector), kind="stable")[:3]
        rows.append({"query": text, "distribution": vars(query.distribution),
                     "matches": [{"photo": encoded.photos[i], "score": round(float(s), 4),
                                  "relevance": round(float(r), 4)}
                                 for i, s, r in zip(order, query.scores[:3], relevance[:3])],
                     "no_good_match": bool(relevance[0] < NO_GOOD_MATCH_BELOW)})
    return rows


def main() -> None:
    calibration = Calibration.from_json(SHIPPED.read_text(encoding="utf-8"))
    encoded = DemoEncoded()
    sets = heldout_sets(encoded)
    report = {"model": calibration.model, "calibration": str(SHIPPED.relative_to(ROOT)),
              "calibration_fit": {d: {"fitted_on": {"queries": m.queries, "answerable_queries": m.answerable_queries,
                                                    "pairs": m.pairs}, "quality": vars(m.quality)}
                                  for d, m in calibration.mappings.items()},
              "targets": {"answerable_top_relevance_at_least_0.5": 0.85, "unanswerable_flagged_no_good_match": 0.85},
              "heldout": {d: direction_report(calibration, d, *s) for d, s in sets.items()},
              "reliability": {d: reliability(calibration, d, s) for d, s in sets.items()},
              "examples": examples(calibration, encoded)}
    draw(report["reliability"], ROOT / "docs" / "reliability.png")
    output = ROOT / "results" / "relevance.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for direction, fit in report["calibration_fit"].items():
        print(f"calibration fit {direction}: {fit['fitted_on']}, {fit['quality']}")
    for direction, result in report["heldout"].items():
        print(f"held-out {direction}: answerable top relevance >= 0.5: "
              f"{result['answerable_top_relevance_at_least_0.5']:.0%} of {result['answerable_queries']} "
              f"(target 85%); unanswerable flagged: {result['unanswerable_flagged_no_good_match']:.0%} of "
              f"{result['unanswerable_queries']} (target 85%); R@1 {result['answerable_r_at_1']:.0%}; "
              f"top true and relevant {result['answerable_top_true_and_relevant']:.0%}")
    for direction, diagram in report["reliability"].items():
        print(f"reliability {direction} (Brier {diagram['brier']}): " + ", ".join(
            f"[{b['from']:.1f},{b['to']:.1f}) n={b['count']} p={b['observed_precision']}"
            for b in diagram["bins"] if b["count"]))
    for example in report["examples"]:
        print(f"{example['query']!r}: " + ", ".join(f"{m['photo']} {m['score']:.3f} -> {m['relevance']:.3f}"
                                                     for m in example["matches"])
              + f"; no_good_match {example['no_good_match']}")
    print(f"wrote {output.relative_to(ROOT)} and docs/reliability.png")


if __name__ == "__main__":
    main()
