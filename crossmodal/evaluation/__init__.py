"""Retrieval quality: the metrics (R@K, median and mean rank, rsum) and the published numbers printed beside them.

Data and arithmetic only: it imports no model, index or `serving/` (the model specs import `published` to declare
their rows).
"""
