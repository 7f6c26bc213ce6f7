"""Ranking a query's answers: the semantic and keyword rankings fused (`fusion`, `ranking`), queries composed of
parts (`composition`), and relevance, the calibrated chance that a match is right (`relevance`, with the shipped
calibrations in `crossmodal/calibration/`).

Over the index and the models' vectors: it imports `crossmodal.index` and never `serving/` or Jina.
"""
