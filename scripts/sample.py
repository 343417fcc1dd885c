"""Sample sentences from a VAE language model: `python scripts/sample.py --model DIR [--flags]` (same as `vaelm-sample`)."""

from vaelm.cli.sample import entry_point

if __name__ == "__main__":
    entry_point()
