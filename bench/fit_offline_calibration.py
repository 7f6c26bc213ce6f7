"""Rebuild crossmodal/calibration/offline.json, the shipped relevance calibration of the built-in offline model.

    python bench/fit_offline_calibration.py [--output PATH]

Fitted on the calibration set only (bench/relevance/calibration_*.json and leave-one-out negatives; see
relevance_data.py), never on the manifest's test captions or the held-out queries. The keyword mapping
(text->image+keywords) is fitted on the same text queries searched in hybrid mode on a real store of the demo,
whose caption index holds the manifest's captions as the indexed collection (they are what a query's words are
matched against, never queries). The mapping for photos without captions (text->image+no_text) is fitted on the
caption-less calibration set (bench/caption_less_data.py: photos of Debian packages, scikit-image and PIL
compositions; not the demo, not the held-out caption-less set: checked on the pixels before fitting). Deterministic:
the same data and model give the same file.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from caption_less_data import (  # noqa: E402
    CALIBRATION,
    CaptionLessCalibration,
    available,
    caption_less_description,
    overlaps,
    read,
)
from relevance_data import MODEL, SHIPPED, DemoEncoded, calibration_description, calibration_sets  # noqa: E402

from crossmodal.search.relevance import (  # noqa: E402
    TEXT_TO_IMAGE,
    Calibration,
    fit_calibration,
    no_text_direction,
    save_calibration,
)


def description(caption_less: bool = True) -> str:
    """The calibration's description: the demo calibration set's, then (`caption_less`) the caption-less set's."""
    return f"{calibration_description()}; {caption_less_description()}" if caption_less else calibration_description()


def fit(encoded: DemoEncoded, caption_less: CaptionLessCalibration | None) -> Calibration:
    """The calibration of the demo's sets, with the `+no_text` mapping of `caption_less` (None: without it)."""
    sets = calibration_sets(encoded)
    samples = {direction: [q for query_set in query_sets for q in query_set.queries]
               for direction, query_sets in sets.items()}
    if caption_less is not None:
        samples[no_text_direction(TEXT_TO_IMAGE)] = [q for query_set in caption_less.query_sets()
                                                     for q in query_set.queries]
    return fit_calibration(MODEL, samples, description(caption_less is not None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=SHIPPED)
    args = parser.parse_args()
    if not available(CALIBRATION):
        parser.error(f"the caption-less calibration photos are missing: apt-get install "
                     f"{' '.join(read(CALIBRATION)['packages'])}")
    if same := overlaps():
        parser.error(f"the caption-less sets and the demo share photos: {same}")
    encoded = DemoEncoded()
    calibration = fit(encoded, CaptionLessCalibration.encode(encoded.backend))
    save_calibration(calibration, args.output)
    for direction, mapping in calibration.mappings.items():
        print(f"{direction}: {dict(zip(mapping.features, mapping.coefficients))} intercept {mapping.intercept:.4f}; "
              f"{mapping.queries} queries ({mapping.answerable_queries} answerable), {mapping.pairs} pairs; "
              f"{mapping.quality}")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
