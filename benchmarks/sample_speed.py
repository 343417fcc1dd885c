"""Sampling speed: seconds to decode 100 prior samples of PTB length with the original configuration.

The model has the original sizes (embedding 350, LSTM 200, latent 13, vocabulary 10k) and random weights, which
decode exactly as fast as trained ones. Every sentence is forced to the mean PTB training length (21.1 words, so
22 tokens with `</s>`; `min_new_tokens` = `max_new_tokens`), so that no run ends early. Each figure is the median
(wall-clock and process CPU seconds) of `--repeats` timed runs after one warm-up run, for the whole `SentenceVAE.sample_prior` path (z ~ N(0, I),
`model.generate`, ids → text) and, for comparison, a bare argmax loop over `decode_step` (what `generate` adds on
top of the network itself). Prints one JSON object.

    python benchmarks/sample_speed.py [--num 100] [--repeats 7] [--threads N] [--data_dir /path/to/ptb]
"""

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from vaelm import VAELMConfig, VAELMModel
from vaelm.generation.decoding import DecodingConfig
from vaelm.generation.sentence_vae import SentenceVAE

PTB_MEAN_TOKENS = 22  # 21.1 words per ptb.train.txt sentence, plus </s>


class _IdsOnly:
    """Tokenizer stand-in: a random-weight model has no vocabulary, so ids are shown as their numbers."""

    def convert_ids_to_tokens(self, ids):
        return [str(i) for i in ids]


def mean_tokens(data_dir: str | None) -> int:
    """Mean sentence length in tokens (words + `</s>`) of `ptb.train.txt` in `data_dir`, or PTB's 22."""
    if not data_dir:
        return PTB_MEAN_TOKENS
    lines = (Path(data_dir) / "ptb.train.txt").read_text(encoding="utf-8").splitlines()
    lines = [line.split() for line in lines if line.strip()]
    return round(sum(len(words) for words in lines) / len(lines)) + 1


def median_seconds(run, repeats: int) -> dict:
    """
    Median wall time and median CPU time (all threads of this process) of `run()` over `repeats` runs, after one
    warm-up run. On a shared, busy machine the CPU time is the steadier figure; with `--threads 1` it is the wall
    time an idle core would take.
    """
    run()
    wall, cpu = [], []
    for _ in range(repeats):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return {"wall": round(statistics.median(wall), 4), "cpu": round(statistics.median(cpu), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num", type=int, default=100, help="Prior samples per run.")
    parser.add_argument("--repeats", type=int, default=7, help="Timed runs (the median is reported).")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")
    parser.add_argument("--data_dir", default=None, help="PTB folder to measure the mean sentence length from.")
    parser.add_argument("--device", default="cpu", help="cpu or cuda.")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    config = VAELMConfig(vocab_size=10000, embedding_size=350, hidden_size=200, latent_size=13)
    model = VAELMModel(config).to(args.device).eval()
    vae = SentenceVAE(model, _IdsOnly())
    length = mean_tokens(args.data_dir)
    strategies = {
        "greedy": DecodingConfig("greedy", max_new_tokens=length),
        "sample": DecodingConfig("sample", max_new_tokens=length),
        "sample_top_p_0.9": DecodingConfig("sample", top_p=0.9, max_new_tokens=length),
        "beam_4": DecodingConfig("beam", num_beams=4, max_new_tokens=length),
    }

    def prior_samples(decoding: DecodingConfig):
        def run():
            z = vae.prior(args.num)
            ids = model.generate(
                torch.full((args.num, 1), config.bos_token_id, device=model.device),
                z=z,
                max_new_tokens=length,
                min_new_tokens=length,
                **decoding.generate_kwargs(),
            )
            assert ids.shape == (args.num, length + 1)
            return [vae.to_text(row) for row in ids[:, 1:].tolist()]

        return run

    @torch.no_grad()
    def bare_loop():
        z = vae.prior(args.num)
        tokens = torch.full((args.num, 1), config.bos_token_id, device=model.device)
        state, out = None, []
        for _ in range(length):
            logits, state = model.decode_step(tokens, z, state)
            tokens = logits[:, -1].argmax(-1, keepdim=True)
            out.append(tokens)
        return torch.cat(out, 1)

    results = {name: median_seconds(prior_samples(d), args.repeats) for name, d in strategies.items()}
    results["bare_decode_step_argmax_loop"] = median_seconds(bare_loop, args.repeats)
    print(
        json.dumps(
            {
                "benchmark": "seconds for prior samples of PTB length (median)",
                "num_samples": args.num,
                "tokens_per_sample": length,
                "config": {"embedding_size": 350, "hidden_size": 200, "latent_size": 13, "vocab_size": 10000},
                "device": args.device,
                "torch_threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "cpu": platform.processor() or platform.machine(),
                "repeats": args.repeats,
                "seconds": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
