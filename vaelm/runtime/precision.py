"""Whether bfloat16 pays on a device, and the `--bf16` request resolved against it.

vaelm's `--bf16` is a speed option: it moves the figures by a few hundredths of a nat at most (docs/results.md).
CPUs without AVX-512 (AVX2 only, such as many EPYC and older Xeon machines) have no bfloat16 matmul kernels, so
oneDNN emulates them: measured on a 2-core AVX2 EPYC, a [1000, 350] × [350, 10000] bf16 matmul ran at 1.3 GFLOP/s
against 29 in fp32, and training ran 14× slower than in fp32 (README "Speed"). There `--bf16` falls back to fp32,
with a warning, rather than making a run twenty times longer.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import torch

logger = logging.getLogger(__name__)


def native_bf16(device: torch.device | str = "cpu") -> bool:
    """
    Whether bfloat16 matmuls run natively on `device`: always on accelerators, on CPUs with AVX-512 (oneDNN's test,
    `torch.ops.mkldnn._is_mkldnn_bf16_supported`).

    Args:
        device (`torch.device` or `str`, *optional*, defaults to `"cpu"`): the device to ask about.
    """
    if torch.device(device).type != "cpu":
        return True
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return True if check is None else bool(check())
    except RuntimeError:  # a torch build without oneDNN: do not second-guess the request
        return True


def resolve_bf16(requested: bool, device: torch.device | str, command: str) -> bool:
    """
    `requested`, unless bf16 would be emulated on `device`: then `False`, with a warning that names the command.

    Args:
        requested (`bool`): the `--bf16` flag.
        device (`torch.device` or `str`): where the work runs.
        command (`str`): what runs, for the warning (e.g. `"vaelm-evaluate"`).
    """
    if not requested or native_bf16(device):
        return requested
    logger.warning(
        "%s: --bf16 was requested, but this CPU has no native bfloat16 matmuls (no AVX-512), so they would run about "
        "20x slower than fp32; running in fp32 instead (results differ by a few hundredths of a nat at most).",
        command,
    )
    return False


@contextmanager
def full_fp32() -> Iterator[None]:
    """
    Within the block, float32 matmuls and cuDNN's recurrent kernels keep float32's precision on GPUs: TF32 (a 10-bit
    mantissa, which cuDNN uses by default on Ampere and later GPUs) is off, and the settings come back afterwards. The
    evaluation protocol's figures are float32's, so a GPU pass agrees with a CPU pass (`--bf16` asks for less, and says
    so). No effect on CPUs.
    """
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


__all__ = ["full_fp32", "native_bf16", "resolve_bf16"]
