"""Precision: `--bf16` where bfloat16 is emulated falls back to fp32 and says so (elsewhere the request stands), and
weights stored in float16 or bfloat16 load and compute in float32."""

import json
import logging
import shutil

import pytest
import torch
from conftest import train_tiny
from safetensors.torch import load_file

from vaelm.cli import run_command
from vaelm.cli.evaluate import main as evaluate_main
from vaelm.runtime import precision


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


def test_evaluation_runs_without_tf32_and_restores_the_settings(tiny_model_dir, tiny_corpus, monkeypatch):
    """The likelihoods and the reconstructions run with TF32 off, whoever calls them (vaelm-evaluate, a training run's
    final evaluation, the benchmarks), and the caller's settings come back."""
    from vaelm.evaluation import job, metrics, reconstruction
    from vaelm.evaluation.settings import EvaluationArguments

    seen = {}

    def spy(module, name):
        real = getattr(module, name)

        def recorded(*args, **kwargs):
            seen[name] = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, recorded)

    spy(metrics, "length_sorted_batches")  # called inside evaluate_sequences
    spy(reconstruction, "DecodingConfig")  # called inside reconstruct_sequences
    arguments = EvaluationArguments(
        model=str(tiny_model_dir),
        data_dir=str(tiny_corpus),
        split="test",
        iw_samples=2,
        max_sentences=3,
        no_progress=True,
        reconstruction_sentences=2,
    )
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True  # a caller that allows TF32
    try:
        job.run_evaluation(arguments)
        after = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
    assert seen == {"length_sorted_batches": (False, False), "DecodingConfig": (False, False)}, (
        "cuDNN's default TF32 would give GPU figures other than the CPU's"
    )
    assert after == (True, True), "the caller's settings come back"


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


def test_store_weights_casts_every_shard_and_keeps_float32_compute(tiny_model_dir, tmp_path):
    """A sharded folder stored in bfloat16: every shard cast, the index's size halved, config.json still float32."""
    from vaelm.pretrained.loading import load_model
    from vaelm.pretrained.storage import store_weights, stored_dtype

    model = load_model(tiny_model_dir)
    sharded = tmp_path / "sharded"
    shutil.copytree(tiny_model_dir, sharded)
    (sharded / "model.safetensors").unlink()
    model.save_pretrained(sharded, max_shard_size="20KB")
    shards = sorted(path.name for path in sharded.glob("model-*.safetensors"))
    assert len(shards) > 1 and stored_dtype(sharded) == "float32"

    stored = tmp_path / "stored"
    written = store_weights(sharded, stored, "bfloat16")
    assert sorted(written) == sorted([*shards, "model.safetensors.index.json", "config.json"])
    assert stored_dtype(stored) == "bfloat16" and stored_dtype(sharded) == "float32", "the source is only read"
    index = {
        name: json.loads((folder / "model.safetensors.index.json").read_text())
        for name, folder in (("before", sharded), ("after", stored))
    }
    assert index["after"]["weight_map"] == index["before"]["weight_map"]
    assert index["after"]["metadata"]["total_size"] * 2 == index["before"]["metadata"]["total_size"]
    assert json.loads((stored / "config.json").read_text())["dtype"] == "float32"

    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        shutil.copy(sharded / name, stored / name)
    widened = load_model(stored)
    assert widened.dtype == torch.float32
    for name, parameter in model.state_dict().items():
        torch.testing.assert_close(widened.state_dict()[name], parameter.bfloat16().float(), rtol=0, atol=0)


def test_store_weights_refuses_what_float16_cannot_hold(tiny_model_dir, tmp_path):
    from vaelm.pretrained.loading import load_model
    from vaelm.pretrained.storage import store_weights

    large = tmp_path / "large"
    shutil.copytree(tiny_model_dir, large)
    model = load_model(tiny_model_dir)
    with torch.no_grad():
        model.get_input_embeddings().weight[5, 0] = 1e6  # beyond float16's 65504
    model.save_pretrained(large)
    with pytest.raises(
        ValueError, match=r"large/model.safetensors: the weight .*embed.* beyond float16's range .*bfloat16"
    ):
        store_weights(large, tmp_path / "half", "float16")
    assert not (tmp_path / "half" / "model.safetensors").exists()
    store_weights(large, tmp_path / "bf16", "bfloat16")  # float32's range: fine
    with pytest.raises(ValueError, match="choose one of float32, float16, bfloat16"):
        store_weights(large, tmp_path / "x", "int8")
    with pytest.raises(ValueError, match="another folder than the model's own"):
        store_weights(large, large, "float16")
