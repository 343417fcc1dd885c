"""Push a saved model folder to the Hub: `python scripts/push_to_hub.py --model DIR --repo_id ORG/NAME` (same as `vaelm-push`)."""

from vaelm.cli.push import entry_point

if __name__ == "__main__":
    entry_point()
