"""Stage 4a: frames of a video → cached descriptors of a model (`vidvpr eval` computes them)."""
