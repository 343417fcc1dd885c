"""Draw a latent map: `python scripts/map.py --model DIR --data_dir DATA --output map.png` (same as `vaelm-map`)."""

from vaelm.cli.map import entry_point

if __name__ == "__main__":
    entry_point()
