"""transformers pipelines on saved folders, in a process that cannot import vaelm: `text-generation` continues a
prompt, and the `sentence-vae` custom pipeline (saved with the model) encodes, reconstructs, samples, interpolates.
No warning may be printed; `vaelm-sample --num 5` on the bundled model prints no line made mostly of `<unk>`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import vaelm
from conftest import REPO

# Runs in a fresh interpreter where `import vaelm` fails: only transformers and the folder's own files are used.
SCRIPT = r"""
import json, sys, warnings
sys.modules["vaelm"] = None  # the package cannot be imported in this process
warnings.simplefilter("always")
import torch
from transformers import pipeline, set_seed

folder = sys.argv[1]
prompt = "the company said"
generator = pipeline("text-generation", model=folder, trust_remote_code=True)
set_seed(0)
first = generator(prompt)[0]["generated_text"]
set_seed(0)
again = generator(prompt)[0]["generated_text"]
z = torch.zeros(1, generator.model.config.latent_size)
given = [generator(prompt, z=z, do_sample=False, max_new_tokens=8)[0]["generated_text"] for _ in range(2)]
sampled = generator(prompt, do_sample=True, top_p=0.9, max_new_tokens=8, num_return_sequences=2)

vae = pipeline("sentence-vae", model=folder, trust_remote_code=True)
sentence = "the company said it will buy shares"
print(json.dumps({
    "first": first, "again": again, "given": given, "sampled": [row["generated_text"] for row in sampled],
    "encode": vae(sentence, mode="encode"),
    "reconstruct": vae(sentence),
    "sample": vae(3, mode="sample", seed=0),
    "sample_again": vae(3, mode="sample", seed=0),
    "interpolate": vae({"start": sentence, "end": "investors are worried"}, mode="interpolate", steps=3),
    "latent_size": vae.model.config.latent_size,
    "vaelm_importable": "vaelm" in sys.modules and sys.modules["vaelm"] is not None,
}))
"""


def run_without_vaelm(folder: Path, tmp_path: Path) -> tuple[dict, str]:
    script = tmp_path / "no_vaelm.py"
    script.write_text(SCRIPT)
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run([sys.executable, str(script), str(folder)], capture_output=True, text=True,
                            env={**environment, "HF_HUB_OFFLINE": "1"}, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


def check_pipelines(outputs: dict, stderr: str) -> None:
    assert not outputs["vaelm_importable"]
    noisy = [line for line in stderr.splitlines() if "warn" in line.lower() or "Traceback" in line]
    assert not noisy, "\n".join(noisy)
    for text in [outputs["first"], *outputs["given"], *outputs["sampled"]]:
        assert text.startswith("the company said"), text  # the prompt, then a continuation (a tiny model may stop)
        assert text == "the company said" or text.startswith("the company said "), text
    assert outputs["first"] == outputs["again"], "set_seed makes the prior draw of z reproducible"
    assert outputs["given"][0] == outputs["given"][1], "a given z decodes the same way each time"
    assert len(outputs["encode"]["mu"]) == len(outputs["encode"]["logvar"]) == outputs["latent_size"]
    assert isinstance(outputs["reconstruct"]["text"], str) and outputs["reconstruct"]["text"].split()
    assert len(outputs["sample"]) == 3 and outputs["sample"] == outputs["sample_again"]
    assert all(len(row["z"]) == outputs["latent_size"] for row in outputs["sample"])
    path = outputs["interpolate"]
    assert len(path) == 5 and path[0]["z"] != path[-1]["z"]
    for row in [*outputs["sample"], *path]:
        assert "<unk>" not in row["text"].split(), "the saved generation config suppresses <unk>"


def test_pipelines_on_the_bundled_model(tmp_path):
    outputs, stderr = run_without_vaelm(Path(vaelm.DEFAULT_MODEL), tmp_path)
    check_pipelines(outputs, stderr)
    assert all(len(text.split()) > 4 for text in [outputs["first"], *outputs["given"], *outputs["sampled"]])
    # The bundled model reconstructs this sentence's gist.
    assert outputs["reconstruct"]["text"].startswith("the company said it")


def test_pipelines_on_a_freshly_trained_folder(tiny_model_dir, tmp_path):
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["custom_pipelines"]["sentence-vae"]["impl"] == "pipeline_vaelm.SentenceVAEPipeline"
    assert (tiny_model_dir / "pipeline_vaelm.py").read_text() == (REPO / "vaelm" / "pipeline_vaelm.py").read_text()
    check_pipelines(*run_without_vaelm(tiny_model_dir, tmp_path))


def test_bundled_pipeline_file_is_current():
    assert (Path(vaelm.DEFAULT_MODEL) / "pipeline_vaelm.py").read_text() == (REPO / "vaelm" / "pipeline_vaelm.py").read_text()


def test_sentence_vae_pipeline_rejects_bad_input():
    from transformers import pipeline

    vae = pipeline("sentence-vae", model=vaelm.DEFAULT_MODEL, trust_remote_code=True)
    with pytest.raises(ValueError, match="mode='sample' takes the number"):
        vae("three", mode="sample")
    with pytest.raises(ValueError, match="Unknown mode"):
        vae("a sentence", mode="decode")


def test_default_samples_are_not_runs_of_unk():
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    for strategy in ("greedy", "beam"):
        result = subprocess.run([sys.executable, "-W", "always", "-m", "vaelm.cli.sample", "--num", "5",
                                 "--strategy", strategy, "--seed", "0"],
                                capture_output=True, text=True, env=environment, timeout=300, cwd=REPO)
        assert result.returncode == 0, result.stderr[-2000:]
        lines = result.stdout.strip().splitlines()
        assert len(lines) == 5
        assert all("<unk>" not in line.split() for line in lines), lines
        assert "warn" not in result.stderr.lower(), result.stderr[-2000:]
