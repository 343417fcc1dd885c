"""`--bf16` where bfloat16 is emulated: the commands fall back to fp32 and say so; elsewhere the request stands."""

import json
import logging
import shutil

import pytest
import torch
from conftest import train_tiny
from safetensors.torch import load_file

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


@pytest.mark.parametrize("stored", [torch.float16, torch.bfloat16])
def test_weights_stored_in_half_precision_load_in_float32_and_evaluate(
    stored, tiny_model_dir, tiny_corpus, tmp_path, capsys
):
    """A model saved in float16 or bfloat16 (half the download) is widened as it loads and evaluates like the original."""
    from vaelm.pretrained.loading import load_model

    original = load_model(tiny_model_dir)
    half = tmp_path / "half"
    shutil.copytree(tiny_model_dir, half)
    load_model(tiny_model_dir).to(stored).save_pretrained(half)
    assert json.loads((half / "config.json").read_text(encoding="utf-8"))["dtype"] == str(stored).removeprefix("torch.")
    assert {tensor.dtype for tensor in load_file(half / "model.safetensors").values()} == {stored}, "the file is half"
    widened = load_model(half)
    assert widened.dtype == torch.float32
    for name, parameter in original.state_dict().items():
        torch.testing.assert_close(widened.state_dict()[name], parameter.to(stored).float(), rtol=0, atol=0)

    summaries = {}
    for label, folder in (("original", tiny_model_dir), ("half", half)):
        output = tmp_path / f"{label}.json"
        argv = ["--model", str(folder), "--data_dir", str(tiny_corpus), "--split", "test", "--iw_samples", "3"]
        argv += ["--max_sentences", "8", "--seed", "0", "--no_progress", "true", "--output", str(output)]
        assert run_command("vaelm-evaluate", evaluate_main, argv) == 0, capsys.readouterr().err[-2000:]
        summaries[label] = json.loads(output.read_text(encoding="utf-8"))
    assert summaries["half"]["nll"] == pytest.approx(summaries["original"]["nll"], abs=0.05), (
        "rounding moves NLL little"
    )
