"""Evaluate a VAE language model on a split: `python scripts/evaluate.py --model DIR --data_dir DIR` (same as
`vaelm-evaluate`)."""

from vaelm.cli.evaluate import entry_point

if __name__ == "__main__":
    entry_point()
