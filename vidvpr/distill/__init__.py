"""Distillation for low-quality queries: the ICKD, descriptor-MSE and triplet losses (pure torch functions)."""
