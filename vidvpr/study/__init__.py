"""`vidvpr study`: recall against bitrate across one or several evaluations of one dataset.

Pure maths in `curves` (recall–rate curves), `bjontegaard` (BD-rate and BD-recall with the
`bjontegaard` package) and `pareto` (the front and the best cell under a budget); `inputs` reads
and checks eval folders, `plots` draws, `records` defines study.json/study.csv, and `stage` runs it.
"""
