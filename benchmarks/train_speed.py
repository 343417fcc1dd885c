"""Training speed of vaelm's real training step against a straightforward PyTorch reference, in one run.

What is timed
-------------
- **vaelm**: `VAETrainer.train()` itself, built exactly as `vaelm-train` builds it (`vaelm.cli.train.parse_arguments`
  with the original flags, the PTB tokenizer and `tokenize_splits`, `build_model`, `VAELMCollator`, the default
  `group_by_length` sampler, AdamW(lr 1e-3) with clipping at 5, the linear KL schedule). Each timed window is W
  consecutive optimizer steps of the Trainer's own loop, so the sampler, the collator, `compute_loss`, backward,
  clipping, the optimizer, the LR scheduler and the Trainer's per-step bookkeeping are all inside it. Callbacks
  also split every step into `data_and_trainer` (from one step's end to the next one's start: logging, fetching
  and collating the batch), `forward_backward` (model, loss, backward, clipping) and `optimizer` (Adam).
- **reference**: the straightforward model written below (`nn.Embedding` → `nn.LSTM` encoder over the padded
  batch, its state after each sentence's last word → `Linear` to mu/logvar → `Linear` z → (h0, c0) → `nn.LSTM`
  decoder over the padded batch → `Linear` to the vocabulary at every position → `F.cross_entropy(ignore_index=pad)`,
  Adam(lr 1e-3), clipping at 5) on batches of 64 PTB training sentences in shuffled order, padded to the batch
  maximum (≈57 % padding). `--reference_encoder packed` packs its encoder instead, as the public Sentence-VAE does
  (slower). vaelm's `keep_freed_memory` is process-wide; reference windows put glibc's default thresholds back
  (`--reference_allocator tuned` keeps vaelm's).
- The two alternate: after every vaelm window (run inside `trainer.train()` by a callback), one reference window of
  W steps and a matmul peak measurement run, so both see the same machine load. Figures are medians over windows
  after warm-up; every window's figure is printed too, and tokens per CPU-second beside tokens per second.

Tokens are target tokens only: the n words and `</s>` of each sentence (no padding, no `<s>`). The FLOP limit is
`peak_gflops` / (FLOPs per target token), with 3 × (two LSTMs 2·4H(E+H) each + the softmax 2·H·V) FLOPs per token
(≈17.3 MFLOP for 350/200/10k), and `peak_gflops` the best of three 2048³ fp32 matmuls measured after every window.

Profile (torch.profiler, 30 steps of the real `vaelm-train` step, original configuration, batch 64)
----------------------------------------------------------------------------------------------------
Before this work (packed LSTMs with `enforce_sorted=False`, `F.cross_entropy` on real positions), 2 threads on the
shared machine: 164 s of self CPU time for 30 steps.
- 66 % was the packed CPU LSTM. PyTorch runs a packed sequence step by step: one `addmm` per time step forward,
  and per step `mm`s for the weight gradients, each followed by an `add_` into the full weight gradient and by
  `fill_`/`copy_` of per-step buffers (`mm` 31 %, `add_` 14 %, `copy_` 10 %, `fill_` 8 %, `tanh` 7 %, `sum` 5 %).
- The vocabulary projection, `log_softmax` and NLL (forward + backward): ≈ 12 %.
- Adam (fused) ≈ 2 %; the DataLoader ≈ 3 %, nearly all of it the first batch (sampler set-up).
- Outside the profile: ≈ 35,000 page faults per step (glibc returns every freed block above 128 KiB to the
  kernel, so the gradients and [tokens, vocab] buffers are fresh pages each step): ≈ 17 % of a step's CPU time.
- `compute_loss`'s float64 logging sums and NaN check, and the collator (≈ 0.5 ms per batch), did not show.
After (padded oneDNN LSTMs on length-grouped batches, fused projection + cross-entropy, `keep_freed_memory`),
1 thread: 12.5 s for 30 steps (2,100 target tokens per step on average).
- The vocabulary projection's three matmuls: ≈ 52 % (`mm` 35 %, `addmm` 17 %), i.e. compute-bound.
- oneDNN LSTM forward + backward: ≈ 15 %; in-place softmax and its row maximum: ≈ 4 %.
- The DataLoader's first batch (sampler set-up, once per epoch): ≈ 17 % of these 30 steps; a later batch costs
  ≈ 1.8 ms of Trainer time between steps (1–2 % of a step). Adam ≈ 1 %; grad-norm clipping < 0.2 %.
- What is left above the matmuls is elementwise (LSTM gates, softmax) and memory traffic. On 2 threads the oneDNN
  LSTM synchronises its threads at every time step, so it is the part hurt most when other processes share the
  cores; with libgomp's default spin-waiting, 1 thread was then often faster than 2. vaelm now makes idle OpenMP
  threads wait passively, which removes that cliff (docs/speed.md, "Threads").

Threads: vaelm's default (`vaelm.runtime.threads.configure_threads`: the usable cores minus those other processes keep
busy, `OMP_NUM_THREADS` respected) unless `--threads N`; OpenMP waits passively as in every vaelm command (`vaelm.cli`
is imported before torch). `--device cuda` runs both sides on a GPU (timed windows end with a synchronisation).

Run: `python benchmarks/train_speed.py [--bf16] [--threads N] [--device cpu|cuda] [--windows 5] [--window_steps 12]`;
prints one JSON object.
"""

import argparse
import contextlib
import json
import logging
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import vaelm.cli  # noqa: F401  # isort: skip (first: sets OpenMP's wait policy before torch loads it, as every vaelm command does)
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence

# Plain nn.LSTM calls, except that under bf16 autocast on a CPU without a bf16 LSTM kernel (AVX2 only) they run in
# fp32, as vaelm's do; without that the reference would crash there.
from vaelm.modeling_vaelm import run_recurrent

DEFAULT_PTB = Path(__file__).resolve().parents[2] / "shared" / "data" / "ptb"


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the benchmark's flags (`argv`: defaults to `sys.argv[1:]`)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data_dir",
        type=Path,
        default=Path(os.environ.get("VAELM_PTB", DEFAULT_PTB)),
        help="Folder with ptb.train.txt/ptb.valid.txt (or train.txt/valid.txt).",
    )
    parser.add_argument(
        "--bf16", action="store_true", help="bf16 autocast for both vaelm (--bf16 of vaelm-train) and the reference."
    )
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: vaelm's choice).")
    parser.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default=None,
        help="Where both sides train (default: where vaelm-train would, a GPU when there is one).",
    )
    parser.add_argument("--peak_size", type=int, default=2048, help="Matrix size of the matmul peak measurement (CPU).")
    parser.add_argument("--windows", type=int, default=5, help="Timed windows of each kind (medians are reported).")
    parser.add_argument("--window_steps", type=int, default=12, help="Optimizer steps per timed window.")
    parser.add_argument(
        "--warmup_steps", type=int, default=4, help="Untimed steps of each kind before the first window."
    )
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--embedding_size", type=int, default=350)
    parser.add_argument("--num_units", type=int, default=200)
    parser.add_argument("--latent_dim", type=int, default=13)
    parser.add_argument("--vocab_size", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--reference_encoder",
        choices=["padded", "packed"],
        default="padded",
        help="Reference encoder over the padded batch (default) or packed (as the public Sentence-VAE).",
    )
    parser.add_argument(
        "--reference_allocator",
        choices=["default", "tuned"],
        default="default",
        help="Run reference windows with glibc's default malloc thresholds (as a plain script would) or "
        "with vaelm's (keep_freed_memory).",
    )
    parser.add_argument(
        "--extra",
        nargs=argparse.REMAINDER,
        default=[],
        help="Further vaelm-train flags for the vaelm side (everything after --extra).",
    )
    return parser.parse_args(argv)


# ------------------------------------------------------------------------------------------------ the reference
class ReferenceVAE(nn.Module):
    """A straightforward Bowman-style LSTM VAE: softmax at every decoder position, padding ignored by the loss."""

    def __init__(
        self,
        vocab_size: int,
        embedding_size: int,
        hidden_size: int,
        latent_size: int,
        pad_id: int,
        packed_encoder: bool = False,
    ):
        super().__init__()
        self.pad_id = pad_id
        self.packed_encoder = packed_encoder
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=pad_id)
        self.encoder = nn.LSTM(embedding_size, hidden_size, batch_first=True)
        self.to_posterior = nn.Linear(hidden_size, 2 * latent_size)
        self.to_state = nn.Linear(latent_size, 2 * hidden_size)
        self.decoder = nn.LSTM(embedding_size, hidden_size, batch_first=True)
        self.to_vocab = nn.Linear(hidden_size, vocab_size)

    def forward(self, input_ids: torch.Tensor, beta: float) -> torch.Tensor:
        lengths = (input_ids != self.pad_id).sum(1)
        embedded = self.embedding(input_ids)
        if self.packed_encoder:
            packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
            _, (h, _) = run_recurrent(self.encoder, packed)
            summary = h[-1]
        else:  # the padded batch as it is; the state after each sentence's last word
            outputs, _ = run_recurrent(self.encoder, embedded)
            summary = outputs[torch.arange(input_ids.size(0)), lengths - 1]
        mu, logvar = self.to_posterior(summary).chunk(2, dim=-1)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        h0, c0 = self.to_state(z).unsqueeze(0).chunk(2, dim=-1)
        outputs, _ = run_recurrent(self.decoder, embedded[:, :-1], (h0.contiguous(), c0.contiguous()))
        logits = self.to_vocab(outputs)
        rec = F.cross_entropy(
            logits.reshape(-1, logits.size(-1)), input_ids[:, 1:].reshape(-1), ignore_index=self.pad_id, reduction="sum"
        ) / input_ids.size(0)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(-1).mean()
        return rec + beta * kl


def reference_batches(rows: list[list[int]], batch_size: int, pad_id: int, seed: int):
    """Endless shuffled batches padded to the batch maximum: `(input_ids, target_tokens, positions)`."""
    rng = random.Random(seed)
    order = list(range(len(rows)))
    while True:
        rng.shuffle(order)
        for start in range(0, len(order) - batch_size + 1, batch_size):
            batch = [rows[i] for i in order[start : start + batch_size]]
            width = max(len(row) for row in batch)
            input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            for i, row in enumerate(batch):
                input_ids[i, : len(row)] = torch.tensor(row)
            yield input_ids, sum(len(row) - 1 for row in batch), len(batch) * (width - 1)


# ------------------------------------------------------------------------------------------------ helpers
def flops_per_target_token(embedding_size: int, hidden_size: int, vocab_size: int) -> float:
    """Forward + backward (×3) FLOPs of one target token: encoder and decoder LSTM steps and the softmax."""
    lstm = 2 * 4 * hidden_size * (embedding_size + hidden_size)
    return 3.0 * (2 * lstm + 2 * hidden_size * vocab_size)


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that a clock read afterwards includes it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(dtype: torch.dtype, size: int = 2048, repeats: int = 3, device: torch.device | str = "cpu") -> float:
    """Best of `repeats` size³ matmuls, in GFLOP/s (on a GPU, a larger matrix: a 2048³ one is over in microseconds)."""
    device = torch.device(device)
    size = 8192 if device.type == "cuda" else size
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    torch.mm(a, b)
    synchronize(device)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def default_malloc_thresholds() -> None:
    """Put glibc's mmap/trim thresholds back to their defaults (128 KiB; a fresh mapping for every big block)."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 128 * 1024)  # M_TRIM_THRESHOLD
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def summary(values: list[float]) -> dict:
    """Median, min, max and every value, rounded."""
    return {
        "median": round(statistics.median(values), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
        "windows": [round(v, 1) for v in values],
    }


# ------------------------------------------------------------------------------------------------ the benchmark
def main(argv: list[str] | None = None) -> dict:
    args = parse_arguments(argv)
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    os.environ.setdefault("TQDM_DISABLE", "1")
    import datasets
    from transformers import TrainerCallback, set_seed

    datasets.disable_progress_bars()
    from vaelm.cli.train import parse_arguments as train_arguments
    from vaelm.corpora.data import VAELMCollator, tokenize_splits
    from vaelm.corpora.sources import load_text_splits
    from vaelm.runtime.allocator import keep_freed_memory
    from vaelm.runtime.threads import configure_threads
    from vaelm.training.job import build_model, prepare_tokenizer
    from vaelm.training.trainer import VAETrainer

    configure_threads(args.threads)

    load_start = os.getloadavg()
    output_dir = tempfile.mkdtemp(prefix="vaelm-train-speed-")
    total_steps = args.warmup_steps + args.windows * args.window_steps + 1
    flags = [
        "--data_dir",
        str(args.data_dir),
        "--output_dir",
        output_dir,
        "--embedding_size",
        str(args.embedding_size),
        "--num_units",
        str(args.num_units),
        "--latent_dim",
        str(args.latent_dim),
        "--batch_size",
        str(args.batch_size),
        "--vocab_size",
        str(args.vocab_size),
        "--learning_rate",
        "1e-3",
        "--kl_schedule",
        "linear",
        "--annealing_pivot",
        "600",
        "--max_steps",
        str(total_steps),
        "--save_strategy",
        "no",
        "--eval_strategy",
        "no",
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
        "--seed",
        str(args.seed),
        *(["--bf16", "true"] if args.bf16 else []),
        *(["--use_cpu", "true"] if args.device == "cpu" else []),
        *args.extra,
    ]
    model_args, data_args, training_args = train_arguments(flags)
    set_seed(training_args.seed)
    keep_freed_memory()  # as train() does; process-wide, so the reference gets it too
    raw = load_text_splits(data_dir=data_args.data_dir, splits=("train", "valid"))
    tokenizer = prepare_tokenizer(model_args, data_args, raw["train"]["text"])
    tokenized = tokenize_splits(raw, tokenizer, data_args.segmentation, data_args.max_length, data_args.truncate_long)
    model = build_model(model_args, data_args, tokenizer)
    config = model.config

    # The Trainer's own collator, wrapped only to count each batch's target tokens and positions in order.
    batch_log: list[tuple[int, int]] = []
    collator = VAELMCollator(tokenizer.pad_token_id)

    def counting_collator(features):
        batch = collator(features)
        mask = batch["attention_mask"]
        batch_log.append((int(mask.sum()) - mask.size(0), mask.size(0) * (mask.size(1) - 1)))
        return batch

    trainer = VAETrainer(
        model=model,
        args=training_args,
        train_dataset=tokenized["train"],
        eval_dataset=tokenized["valid"],
        data_collator=counting_collator,
        processing_class=tokenizer,
    )

    # Collator cost alone, on batches of the training set.
    collated = max(1, min(20, len(tokenized["train"]) // args.batch_size))  # a tiny corpus has fewer batches
    sample = [tokenized["train"][i] for i in range(min(len(tokenized["train"]), args.batch_size * collated))]
    start = time.perf_counter()
    for i in range(collated):
        collator(sample[i * args.batch_size : (i + 1) * args.batch_size])
    collator_ms = (time.perf_counter() - start) / collated * 1e3

    torch.manual_seed(args.seed)
    reference = ReferenceVAE(
        config.vocab_size,
        config.embedding_size,
        config.hidden_size,
        config.latent_size,
        tokenizer.pad_token_id,
        packed_encoder=args.reference_encoder == "packed",
    )
    reference.to(training_args.device)
    reference_optimizer = torch.optim.Adam(reference.parameters(), lr=1e-3)
    device = training_args.device
    batches = reference_batches(tokenized["train"]["input_ids"], args.batch_size, tokenizer.pad_token_id, args.seed)
    autocast = torch.autocast(training_args.device.type, dtype=torch.bfloat16, enabled=args.bf16)

    def reference_steps(steps: int) -> tuple[float, float, int, int]:
        if args.reference_allocator == "default":
            default_malloc_thresholds()
        tokens = positions = 0
        synchronize(device)
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(steps):
            input_ids, batch_tokens, batch_positions = next(batches)
            input_ids = input_ids.to(training_args.device)
            with autocast:
                loss = reference(input_ids, beta=0.5)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(reference.parameters(), 5.0)
            reference_optimizer.step()
            reference_optimizer.zero_grad(set_to_none=True)
            tokens += batch_tokens
            positions += batch_positions
        synchronize(device)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        if args.reference_allocator == "default":
            keep_freed_memory()
        return elapsed, cpu, tokens, positions

    results = {
        "vaelm": [],
        "vaelm_seconds": [],
        "reference": [],
        "peak": [],
        "peak_bf16": [],
        "parts": [],
        "vaelm_cpu": [],
        "reference_cpu": [],
        "pad": [0, 0],
        "reference_pad": [0, 0],
    }

    class Alternate(TrainerCallback):
        """Times windows of the Trainer's own steps and runs a reference window after each."""

        def __init__(self):
            self.window_start = None
            self.window_first_step = None
            self.marks = {}

        def on_step_begin(self, *_, **__):
            self.marks["begin"] = time.perf_counter()

        def on_pre_optimizer_step(self, *_, **__):
            self.marks["pre_optimizer"] = time.perf_counter()

        def on_optimizer_step(self, *_, **__):
            self.marks["optimizer"] = time.perf_counter()

        def on_step_end(self, _args, state, control, **__):
            at_window_end = (
                self.window_start is not None and state.global_step - self.window_first_step == args.window_steps
            )
            if state.global_step == args.warmup_steps or at_window_end:
                synchronize(device)  # a window's time includes its queued GPU work (a no-op on CPU)
            now = time.perf_counter()
            step = state.global_step
            if "end" in self.marks and self.window_start is not None:
                m = self.marks
                results["parts"].append(
                    (
                        m["begin"] - m["end"],
                        m["pre_optimizer"] - m["begin"],
                        m["optimizer"] - m["pre_optimizer"],
                        now - m["optimizer"],
                    )
                )
            if step == args.warmup_steps:
                reference_steps(args.warmup_steps)  # warm-up of the reference
                self.start_window(step)
            elif self.window_start is not None and step - self.window_first_step == args.window_steps:
                elapsed = now - self.window_start
                cpu = time.process_time() - self.window_cpu_start
                counted = batch_log[self.window_first_step : step]
                tokens = sum(t for t, _ in counted)
                results["pad"][0] += sum(p - t for t, p in counted)
                results["pad"][1] += sum(p for _, p in counted)
                results["vaelm"].append(tokens / elapsed)
                results["vaelm_seconds"].append(elapsed)
                results["vaelm_cpu"].append(tokens / cpu)
                seconds, cpu_seconds, ref_tokens, ref_positions = reference_steps(args.window_steps)
                results["reference"].append(ref_tokens / seconds)
                results["reference_cpu"].append(ref_tokens / cpu_seconds)
                results["reference_pad"][0] += ref_positions - ref_tokens
                results["reference_pad"][1] += ref_positions
                results["peak"].append(matmul_gflops(torch.float32, args.peak_size, device=device))
                if args.bf16:
                    results["peak_bf16"].append(matmul_gflops(torch.bfloat16, args.peak_size, device=device))
                if len(results["vaelm"]) == args.windows:
                    control.should_training_stop = True
                self.start_window(step)
            self.marks["end"] = time.perf_counter()

        def start_window(self, step):
            self.window_start, self.window_cpu_start = time.perf_counter(), time.process_time()
            self.window_first_step = step

    trainer.add_callback(Alternate())
    with contextlib.redirect_stdout(sys.stderr):  # the Trainer prints its logs; stdout carries only the JSON
        trainer.train()

    flops = flops_per_target_token(config.embedding_size, config.hidden_size, config.vocab_size)
    vaelm_rate = statistics.median(results["vaelm"])
    reference_rate = statistics.median(results["reference"])
    peak = statistics.median(results["peak"])
    limit = peak * 1e9 / flops
    parts = list(zip(*results["parts"])) if results["parts"] else [[0.0]] * 4
    step_ms = {
        name: round(statistics.median(values) * 1e3, 2)
        for name, values in zip(
            ("data_and_trainer", "forward_backward_clip", "optimizer", "scheduler_zero_grad"), parts
        )
    }
    total_ms = sum(step_ms.values())
    report = {
        "vaelm_tokens_per_s": round(vaelm_rate, 1),
        "reference_tokens_per_s": round(reference_rate, 1),
        "ratio": round(vaelm_rate / reference_rate, 3),
        "ratio_per_window": [round(v / r, 3) for v, r in zip(results["vaelm"], results["reference"])],
        "peak_gflops": round(peak, 1),
        "flop_limit_tokens_per_s": round(limit, 1),
        "fraction_of_limit": round(vaelm_rate / limit, 3),
        "pad_fraction": round(results["pad"][0] / max(1, results["pad"][1]), 4),
        "reference_pad_fraction": round(results["reference_pad"][0] / max(1, results["reference_pad"][1]), 4),
        "vaelm_steps_per_s": round(
            args.window_steps * len(results["vaelm_seconds"]) / sum(results["vaelm_seconds"]), 3
        ),
        "projected_ptb_epoch_s": round(sum(length - 1 for length in tokenized["train"]["length"]) / vaelm_rate, 1),
        "vaelm_tokens_per_cpu_s": round(statistics.median(results["vaelm_cpu"]), 1),
        "reference_tokens_per_cpu_s": round(statistics.median(results["reference_cpu"]), 1),
        "ratio_cpu_time": round(
            statistics.median(results["vaelm_cpu"]) / statistics.median(results["reference_cpu"]), 3
        ),
        "vaelm": summary(results["vaelm"]),
        "reference": summary(results["reference"]),
        "peak_gflops_windows": summary(results["peak"]),
        "vaelm_step_ms_median": step_ms,
        "trainer_overhead_fraction": round(step_ms["data_and_trainer"] / total_ms, 3) if total_ms else None,
        "collator_ms_per_batch": round(collator_ms, 3),
        "mflop_per_target_token": round(flops / 1e6, 2),
        "config": {
            "embedding_size": config.embedding_size,
            "hidden_size": config.hidden_size,
            "latent_size": config.latent_size,
            "vocab_size": config.vocab_size,
            "batch_size": args.batch_size,
            "bf16": args.bf16,
            "threads": torch.get_num_threads(),
            "windows": args.windows,
            "window_steps": args.window_steps,
            "warmup_steps": args.warmup_steps,
            "sampler": training_args.train_sampling_strategy,
            "extra_flags": args.extra,
            "reference_encoder": args.reference_encoder,
            "reference_allocator": args.reference_allocator,
        },
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "device": str(training_args.device),
            "torch": torch.__version__,
            "loadavg_start": [round(x, 2) for x in load_start],
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        },
    }
    if args.bf16:
        peak_bf16 = statistics.median(results["peak_bf16"])
        report["peak_gflops_bf16"] = round(peak_bf16, 1)
        report["flop_limit_tokens_per_s_bf16"] = round(peak_bf16 * 1e9 / flops, 1)
        report["fraction_of_bf16_limit"] = round(vaelm_rate / (peak_bf16 * 1e9 / flops), 3)
        report["fp32_equivalent_fraction_of_limit"] = report["fraction_of_limit"]
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
