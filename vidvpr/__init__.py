"""vidvpr: video-based visual place recognition datasets from 360° video."""

__version__ = "0.1.0"
