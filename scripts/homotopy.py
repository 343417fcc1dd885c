"""Interpolate between two sentences: `python scripts/homotopy.py --model DIR --start S1 --end S2 [--flags]` (same as `vaelm-homotopy`)."""

from vaelm.cli.homotopy import entry_point

if __name__ == "__main__":
    entry_point()
