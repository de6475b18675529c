"""Evaluation: exact (or approximate) faiss nearest-neighbour search and recall@N, as pure functions."""
