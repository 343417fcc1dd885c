"""Speed of the importance-weighted NLL pass, and the projected time of the full PTB test at K = 500.

Builds a randomly initialised model (random weights cost the same as trained ones) of the original configuration
(embedding 350, LSTM 200, latent 13, 10k vocabulary), or with `--model` of that model's configuration (`--model
bundled`: the reference PTB model, 350/960/32 with tied embeddings and z at every step), times
`vaelm.evaluation.metrics.evaluate_sequences` on sentences with PTB test lengths (read from `--ptb_test` when present, else
a fixed synthetic sample with the same mean length), and prints one JSON object:

- `token_samples_per_second`: scored tokens × K per second, the median of `--windows` timed windows (fp32 and
  bf16), with every window's figure;
- `projected_ptb_test_seconds`: 82,430 scored tokens × 500 samples / that rate;
- `cpu_time_token_samples_per_second`: the rate per second of process CPU time divided by the thread count: what
  the cores would give with nobody else on them (`load_average` says how busy they were), and the projection
  from it;
- `flop_limit_token_samples_per_second`: the rate if every FLOP of the pass ran at the matmul peak of these cores
  (a large fp32/bf16 matmul, timed the same way), the limit of this implementation; `fraction_of_flop_limit`
  compares the CPU-time rate with it.

The FLOP count covers the matmuls (vocabulary projection, recurrent and input projections); the log-softmax over
the vocabulary is not FLOP-bound and is left out, so the limit is optimistic.

On a GPU (`--device cuda`) the rates and the matmul peak are wall-clock figures; the CPU-time ones are left out.

Run: `python benchmarks/eval_speed.py [--model bundled|PATH] [--iw_samples 500] [--sentences 8] [--windows 5]
[--chunk_size 512] [--threads N] [--device cpu|cuda]`.
"""

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

import vaelm.cli  # noqa: F401  # isort: skip (before torch: the commands set OpenMP's wait policy first)
import torch

from vaelm import VAELMConfig, VAELMModel
from vaelm.evaluation.metrics import evaluate_sequences
from vaelm.pretrained import DEFAULT_MODEL
from vaelm.runtime.threads import configure_threads

PTB_TEST_SENTENCES = 3761
PTB_TEST_SCORED_TOKENS = 82430  # words + </s>
REPORT_IW_SAMPLES = 500
DEFAULT_PTB_TEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "ptb" / "ptb.test.txt"


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """
    Parse the benchmark's flags.

    Args:
        argv (`list[str]`, *optional*): the flags; `sys.argv[1:]` when omitted.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iw_samples", type=int, default=REPORT_IW_SAMPLES, help="K per sentence in each window.")
    parser.add_argument("--sentences", type=int, default=8, help="Sentences per timed window.")
    parser.add_argument("--windows", type=int, default=5, help="Timed windows per precision (the median is reported).")
    parser.add_argument("--chunk_size", type=int, default=512, help="Rows per decoder call.")
    parser.add_argument("--batch_size", type=int, default=64, help="Sentences per encoder batch.")
    parser.add_argument(
        "--model",
        default=None,
        help="Time this model's configuration (a folder or Hub id; 'bundled' for vaelm's reference PTB model) "
        "instead of the size flags below.",
    )
    parser.add_argument("--vocab_size", type=int, default=10000)
    parser.add_argument("--embedding_size", type=int, default=350)
    parser.add_argument("--hidden_size", type=int, default=200)
    parser.add_argument("--latent_size", type=int, default=13)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: vaelm's choice).")
    parser.add_argument("--device", default="cpu", help="cpu or cuda.")
    parser.add_argument("--peak_size", type=int, default=1024, help="Matrix size of the matmul peak measurement (CPU).")
    parser.add_argument("--ptb_test", type=Path, default=DEFAULT_PTB_TEST, help="PTB test file, for its lengths.")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    return parser.parse_args(argv)


def sentence_lengths(ptb_test: Path, count: int, seed: int = 0) -> list[int]:
    """
    Words per sentence for the timed windows: `count` lengths drawn from the PTB test file when it is readable
    (so windows have PTB's length mix), else around PTB's mean of 20.9 words.

    Args:
        ptb_test (`Path`): the PTB test file.
        count (`int`): how many lengths.
        seed (`int`, *optional*, defaults to 0): seed of the draw.
    """
    rng = random.Random(seed)
    if ptb_test.is_file():
        lengths = [len(line.split()) for line in ptb_test.read_text(encoding="utf-8").splitlines() if line.split()]
        return [rng.choice(lengths) for _ in range(count)]
    return [max(1, round(rng.gauss(20.9, 10.0))) for _ in range(count)]


def matmul_peak_gflops(dtype: torch.dtype, size: int = 1024, repeats: int = 5, device: str = "cpu") -> float:
    """
    GFLOP/s of a square matmul of `size` in `dtype` on all torch threads, from the median process CPU time per
    thread (so that other processes on the cores do not lower it): the peak the FLOP limit is measured against.

    Args:
        dtype (`torch.dtype`): float32 or bfloat16.
        size (`int`, *optional*, defaults to 1024): matrix size.
        repeats (`int`, *optional*, defaults to 5): timed repetitions.
        device (`str`, *optional*, defaults to `"cpu"`): on a GPU, the best wall time of an 8192² matmul instead.
    """
    if torch.device(device).type == "cuda":
        a, b = (torch.randn(8192, 8192, device=device).to(dtype) for _ in range(2))
        times = []
        for _ in range(repeats + 1):
            torch.cuda.synchronize(device)
            started = time.perf_counter()
            a @ b
            torch.cuda.synchronize(device)
            times.append(time.perf_counter() - started)
        return 2 * 8192**3 / min(times[1:]) / 1e9
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    a @ b
    times = []
    for _ in range(repeats):
        started = time.process_time()
        a @ b
        times.append((time.process_time() - started) / torch.get_num_threads())
    return 2 * size**3 / statistics.median(times) / 1e9


def flops_per_token_sample(config: VAELMConfig, average_tokens: float, iw_samples: int) -> dict[str, float]:
    """
    Multiply-add FLOPs per scored token and latent sample of the IW pass as `DecoderScorer` runs it.

    The vocabulary projection (after the hidden-to-embedding projection of tied models) and the recurrent matmul run
    for every token of every sample; the first layer's word-input projection once per sentence token (shared by the
    K samples); z's share of the decoder input (z at every step) and the initial state once per sample; the encoder
    once per sentence.

    Args:
        config ([`VAELMConfig`]): model sizes.
        average_tokens (`float`): mean scored tokens per sentence.
        iw_samples (`int`): K.
    """
    hidden, embedding, vocab, latent = config.hidden_size, config.embedding_size, config.vocab_size, config.latent_size
    is_lstm = config.cell_type == "lstm"
    gates = (4 if is_lstm else 3) * hidden
    tied_projection = config.tie_word_embeddings and hidden != embedding
    head_input = embedding if config.tie_word_embeddings else hidden
    # The scorer carries the vocabulary bias as an extra input row (evaluation.DecoderScorer): inner size + 1.
    projection = 2 * (head_input + 1) * vocab + (2 * hidden * embedding if tied_projection else 0)
    recurrent = 2 * hidden * gates * config.num_layers + 2 * hidden * gates * (config.num_layers - 1)
    shared_per_token = 2 * embedding * gates  # decoder word inputs and encoder inputs are alike in size
    encoder = 2 * (embedding + hidden) * gates * (2 if config.bidirectional_encoder else 1)
    state_parts = 2 if is_lstm else 1
    per_sample = 2 * latent * state_parts * hidden * config.num_layers + (
        2 * latent * gates if config.latent_to_every_step else 0
    )
    per_sample_state = per_sample / average_tokens
    amortised = (shared_per_token + encoder) / iw_samples
    return {
        "vocabulary_projection": projection,
        "recurrent": recurrent,
        "amortised_over_samples": amortised + per_sample_state,
        "total": projection + recurrent + amortised + per_sample_state,
    }


def time_windows(
    model: VAELMModel, sequences: list[list[int]], arguments: argparse.Namespace, bf16: bool
) -> tuple[list[float], list[float]]:
    """
    Token-samples per second of each timed window (after one untimed warm-up window), by wall time and by process
    CPU time per thread.

    Args:
        model ([`VAELMModel`]): the model.
        sequences (`list[list[int]]`): all windows' sentences, `arguments.sentences` per window.
        arguments (`argparse.Namespace`): the benchmark's flags.
        bf16 (`bool`): bfloat16 vocabulary projection.
    """
    per_window = arguments.sentences
    rates, cpu_rates = [], []
    for window in range(arguments.windows + 1):
        batch = sequences[window * per_window : (window + 1) * per_window]
        cpu_started = time.process_time()
        result = evaluate_sequences(
            model,
            batch,
            iw_samples=arguments.iw_samples,
            batch_size=arguments.batch_size,
            chunk_size=arguments.chunk_size,
            seed=window,
            bf16=bf16,
        )
        cpu_seconds = time.process_time() - cpu_started
        if window > 0:  # window 0 warms up allocators and kernels
            work = int(result.tokens.sum()) * arguments.iw_samples
            rates.append(work / result.seconds)
            cpu_rates.append(work / (cpu_seconds / torch.get_num_threads()))
            print(f"{'bf16' if bf16 else 'fp32'} window {window}: {rates[-1]:,.0f} token-samples/s", file=sys.stderr)
    return rates, cpu_rates


def main(argv: list[str] | None = None) -> dict:
    """
    Run the benchmark and print its JSON report.

    Args:
        argv (`list[str]`, *optional*): the flags.
    """
    arguments = parse_arguments(argv)
    configure_threads(arguments.threads)
    torch.manual_seed(0)
    if arguments.model:
        config = VAELMConfig.from_pretrained(DEFAULT_MODEL if arguments.model == "bundled" else arguments.model)
    else:
        config = VAELMConfig(
            vocab_size=arguments.vocab_size,
            embedding_size=arguments.embedding_size,
            hidden_size=arguments.hidden_size,
            latent_size=arguments.latent_size,
        )
    model = VAELMModel(config).eval().to(arguments.device)
    on_gpu = torch.device(arguments.device).type == "cuda"
    total = arguments.sentences * (arguments.windows + 1)
    rng = random.Random(1)
    sequences = [
        [config.bos_token_id] + [rng.randrange(4, config.vocab_size) for _ in range(words)] + [config.eos_token_id]
        for words in sentence_lengths(arguments.ptb_test, total)
    ]
    average_tokens = PTB_TEST_SCORED_TOKENS / PTB_TEST_SENTENCES
    flops = flops_per_token_sample(config, average_tokens, arguments.iw_samples)
    report = {
        "config": {
            "embedding_size": config.embedding_size,
            "hidden_size": config.hidden_size,
            "latent_size": config.latent_size,
            "vocab_size": config.vocab_size,
            "cell_type": config.cell_type,
            "tie_word_embeddings": config.tie_word_embeddings,
            "latent_to_every_step": config.latent_to_every_step,
        },
        "iw_samples": arguments.iw_samples,
        "sentences_per_window": arguments.sentences,
        "windows": arguments.windows,
        "chunk_size": arguments.chunk_size,
        "torch_threads": torch.get_num_threads(),
        "device": str(next(model.parameters()).device),
        "flops_per_token_sample": {key: round(value) for key, value in flops.items()},
        "ptb_test": {
            "sentences": PTB_TEST_SENTENCES,
            "scored_tokens": PTB_TEST_SCORED_TOKENS,
            "iw_samples": REPORT_IW_SAMPLES,
        },
    }
    work = PTB_TEST_SCORED_TOKENS * REPORT_IW_SAMPLES
    for precision in arguments.precisions:
        bf16 = precision == "bf16"
        rates, cpu_rates = time_windows(model, sequences, arguments, bf16)
        median, cpu_median = statistics.median(rates), statistics.median(cpu_rates)
        peak = matmul_peak_gflops(
            torch.bfloat16 if bf16 else torch.float32, size=arguments.peak_size, device=arguments.device
        )
        limit = peak * 1e9 / flops["total"]
        report[precision] = {
            "token_samples_per_second": round(median),
            "window_token_samples_per_second": [round(rate) for rate in rates],
            "projected_ptb_test_seconds": round(work / median),
            "cpu_time_token_samples_per_second": round(cpu_median),
            "projected_ptb_test_seconds_by_cpu_time": round(work / cpu_median),
            "matmul_peak_gflops": round(peak, 1),
            "achieved_gflops_by_cpu_time": round(cpu_median * flops["total"] / 1e9, 1),
            "flop_limit_token_samples_per_second": round(limit),
            "fraction_of_flop_limit": round((median if on_gpu else cpu_median) / limit, 3),
            "projected_ptb_test_seconds_at_flop_limit": round(work / limit),
        }
    report["load_average"] = [round(value, 2) for value in os.getloadavg()]
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
