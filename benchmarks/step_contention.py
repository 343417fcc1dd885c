"""Training steps per second of the original configuration (350/200/13, 10k vocabulary, batch 64 × 24 tokens: forward,
backward, Adam) beside an optional bounded busy-loop process, for one thread setting. A quick stand-in for
`benchmarks/train_speed.py` under load (no data set-up, no reference): `benchmarks/contention.sh` runs it for each
setting.

Run: `python benchmarks/step_contention.py THREADS SECONDS [--busy]`; prints one JSON line. THREADS `default` takes
vaelm's default (`vaelm.runtime.threads.choose_num_threads`), chosen after the busy loop has started, as a command would. The OpenMP wait policy is
whatever the environment says when torch loads (this script imports torch first, so vaelm does not set it): pass
`OMP_WAIT_POLICY=PASSIVE` for vaelm's setting, nothing for libgomp's default spinning.
"""

import json
import os
import subprocess
import sys
import time

# Read before torch loads (importing vaelm below sets OMP_WAIT_POLICY, too late to change this process's OpenMP).
WAIT_POLICY, SPIN_COUNT = os.environ.get("OMP_WAIT_POLICY", ""), os.environ.get("GOMP_SPINCOUNT", "")

import torch  # noqa: E402

from vaelm.configuration_vaelm import VAELMConfig  # noqa: E402
from vaelm.modeling_vaelm import VAELMModel  # noqa: E402
from vaelm.runtime.threads import choose_num_threads  # noqa: E402


def main(argv: list[str]) -> dict:
    seconds, busy = float(argv[1]), "--busy" in argv
    loop = None
    if busy:  # one core kept busy, for at most seconds + 40 s
        loop = subprocess.Popen(
            [sys.executable, "-c", f"import time\nend = time.time() + {seconds + 40}\nwhile time.time() < end: pass"]
        )
        time.sleep(0.5)
    threads = choose_num_threads()[0] if argv[0] == "default" else int(argv[0])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    config = VAELMConfig(vocab_size=10000, embedding_size=350, hidden_size=200, latent_size=13)
    model = VAELMModel(config).train()
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    input_ids = torch.randint(4, 10000, (64, 24))
    input_ids[:, 0], input_ids[:, -1] = config.bos_token_id, config.eos_token_id

    def step():
        model(input_ids, return_logits=False).loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    try:
        for _ in range(2):
            step()
        steps, started, cpu_started = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - started < seconds:
            step()
            steps += 1
        elapsed = time.perf_counter() - started
    finally:
        if loop is not None:
            loop.kill()
            loop.wait()
    report = {
        "setting": argv[0],
        "threads": threads,
        "busy_loop": busy,
        "OMP_WAIT_POLICY": WAIT_POLICY,
        "GOMP_SPINCOUNT": SPIN_COUNT,
        "steps_per_s": round(steps / elapsed, 3),
        "cpu_per_wall": round((time.process_time() - cpu_started) / elapsed, 2),
        "loadavg": [round(value, 2) for value in os.getloadavg()],
    }
    print(json.dumps(report), flush=True)
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
