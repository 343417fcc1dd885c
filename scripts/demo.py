"""Serve the web demo: `python scripts/demo.py [--model DIR] [--port N]` (same as `vaelm-demo`)."""

from vaelm.cli.demo import entry_point

if __name__ == "__main__":
    entry_point()
