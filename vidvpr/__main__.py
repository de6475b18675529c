"""`python -m vidvpr`: the same command line as the `vidvpr` script."""

from vidvpr.cli import run

run()
