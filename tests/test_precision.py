"""`--bf16` where bfloat16 is emulated: the commands fall back to fp32 and say so; elsewhere the request stands."""

import json
import logging

import pytest
import torch
from conftest import train_tiny

from vaelm import precision
from vaelm.cli import run_command
from vaelm.cli.evaluate import main as evaluate_main


def test_native_bf16_follows_onednn_on_cpu_and_trusts_accelerators():
    assert precision.native_bf16("cpu") == bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert precision.native_bf16(torch.device("cuda")) and precision.native_bf16("mps")


@pytest.mark.parametrize("native", [True, False])
def test_resolve_bf16_keeps_the_request_only_where_bf16_is_native(native, monkeypatch, caplog):
    monkeypatch.setattr(precision, "native_bf16", lambda device="cpu": native)
    with caplog.at_level(logging.WARNING, logger="vaelm.runtime.precision"):
        assert precision.resolve_bf16(False, "cpu", "vaelm-evaluate") is False
        assert not caplog.records, "nothing to say when bf16 was not asked for"
        assert precision.resolve_bf16(True, "cpu", "vaelm-evaluate") is native
    if native:
        assert not caplog.records
    else:
        assert "vaelm-evaluate" in caplog.text and "fp32" in caplog.text and "AVX-512" in caplog.text


def test_commands_fall_back_to_fp32_where_bf16_is_emulated(tiny_model_dir, tiny_corpus, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(precision, "native_bf16", lambda device="cpu": False)
    output = tmp_path / "metrics.json"
    status = run_command(
        "vaelm-evaluate",
        evaluate_main,
        [
            "--model",
            str(tiny_model_dir),
            "--data_dir",
            str(tiny_corpus),
            "--split",
            "test",
            "--iw_samples",
            "2",
            "--max_sentences",
            "5",
            "--bf16",
            "true",
            "--no_progress",
            "true",
            "--output",
            str(output),
        ],
    )
    assert status == 0, capsys.readouterr().err[-2000:]
    assert json.loads(output.read_text(encoding="utf-8"))["bf16"] is False, "the summary records what ran"
    trained = train_tiny(tiny_corpus, tmp_path / "model", "--max_steps", "2", "--bf16", "true")
    arguments = torch.load(trained / "training_args.bin", weights_only=False)
    assert arguments.bf16 is False and arguments.mixed_precision == "no", "the Accelerator's autocast is off too"
