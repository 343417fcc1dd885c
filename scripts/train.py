"""Train a VAE language model: `python scripts/train.py [config.yaml] [--flags]` (same as `vaelm-train`)."""

from vaelm.cli.train import entry_point

if __name__ == "__main__":
    entry_point()
