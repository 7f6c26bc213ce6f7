"""Calibrations shipped with the package, one JSON per model (`<model>.json`, read by crossmodal.search.relevance)."""
