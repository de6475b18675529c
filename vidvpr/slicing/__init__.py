"""Stage 1: 360° equirectangular video → perspective view videos (`vidvpr slice`)."""
