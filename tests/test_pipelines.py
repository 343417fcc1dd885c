"""transformers pipelines on saved folders, in a process that cannot import vaelm: `text-generation` continues a
prompt, and the `sentence-vae` custom pipeline (saved with the model) encodes, reconstructs, samples, interpolates.
No warning may be printed; `vaelm-sample --num 5` on the bundled model prints no line made mostly of `<unk>`."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

import vaelm

# What a bare environment lacks: vaelm itself (installed here, editable) and jieba. A finder at the front of
# sys.meta_path makes their imports fail as they fail where they are not installed.
BARE = r"""
import importlib.abc, sys

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("vaelm", "jieba"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())

def importable(name):
    try:
        __import__(name)
        return True
    except ImportError:
        return False
"""

# Runs in a fresh, isolated interpreter (`python -I`, a temporary working directory, a copy of the model folder) in
# which `import vaelm` and `import jieba` fail: only transformers and the folder's own files are used.
SCRIPT = (
    BARE
    + r"""
import json, warnings
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
    "sample_z": vae(3, mode="sample", seed=0, return_z=True),
    "interpolate_z": vae({"start": sentence, "end": "investors"}, mode="interpolate", steps=3, return_z=True),
    "empty_prompt": generator("", max_new_tokens=5)[0]["generated_text"],
    "latent_size": vae.model.config.latent_size,
    "vaelm_importable": importable("vaelm"),
    "jieba_importable": importable("jieba"),
}))
"""
)


def run_bare(script_text: str, folder: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run `script_text` on a copy of `folder` with `python -I` from an empty working directory, without vaelm and
    jieba (see `BARE`), stdin closed (a prompt would fail)."""
    work = tmp_path / "bare"
    work.mkdir()
    copy = shutil.copytree(folder, work / "model")
    (work / "script.py").write_text(script_text)
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    return subprocess.run(
        [sys.executable, "-I", "script.py", str(copy)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**environment, "HF_HUB_OFFLINE": "1"},
        cwd=work,
        timeout=600,
        check=False,
    )


def run_without_vaelm(folder: Path, tmp_path: Path) -> tuple[dict, str]:
    result = run_bare(SCRIPT, folder, tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


def check_pipelines(outputs: dict, stderr: str) -> None:
    assert not outputs["vaelm_importable"] and not outputs["jieba_importable"]
    noisy = [
        line
        for line in stderr.splitlines()
        if any(word in line.lower() for word in ("warn", "traceback", "jieba", "custom code", "exception"))
    ]
    assert not noisy, "\n".join(noisy)
    for text in [outputs["first"], *outputs["given"], *outputs["sampled"]]:
        assert text.startswith("the company said"), text  # the prompt, then a continuation (a tiny model may stop)
        assert text == "the company said" or text.startswith("the company said "), text
    assert outputs["first"] == outputs["again"], "set_seed makes the prior draw of z reproducible"
    assert outputs["given"][0] == outputs["given"][1], "a given z decodes the same way each time"
    assert len(outputs["encode"]["mu"]) == len(outputs["encode"]["logvar"]) == outputs["latent_size"]
    assert isinstance(outputs["reconstruct"]["text"], str) and outputs["reconstruct"]["text"].split()
    assert len(outputs["sample"]) == 3 and outputs["sample"] == outputs["sample_again"]
    assert all(set(row) == {"text"} for row in [*outputs["sample"], *outputs["interpolate"]]), "z only when asked"
    assert [row["text"] for row in outputs["sample_z"]] == [row["text"] for row in outputs["sample"]]
    assert all(len(row["z"]) == outputs["latent_size"] for row in outputs["sample_z"])
    path = outputs["interpolate_z"]
    assert len(path) == 5 and path[0]["z"] != path[-1]["z"]
    assert outputs["empty_prompt"] == outputs["empty_prompt"].lstrip(), "an empty prompt's text starts with a word"
    assert len(outputs["interpolate"]) == 5
    for row in [*outputs["sample"], *path]:
        assert "<unk>" not in row["text"].split(), "the saved generation config suppresses <unk>"


def test_pipelines_on_the_bundled_model(tmp_path):
    outputs, stderr = run_without_vaelm(Path(vaelm.DEFAULT_MODEL), tmp_path)
    check_pipelines(outputs, stderr)
    assert all(len(text.split()) > 4 for text in [outputs["first"], *outputs["given"], *outputs["sampled"]])
    # The bundled model reconstructs this sentence's gist.
    assert outputs["reconstruct"]["text"].startswith("the company said it")
    assert len(outputs["empty_prompt"].split()) >= 2 and not outputs["empty_prompt"].startswith(" ")


def test_pipelines_on_a_freshly_trained_folder(tiny_model_dir, tmp_path):
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["custom_pipelines"]["sentence-vae"]["impl"] == "pipeline_vaelm.SentenceVAEPipeline"
    assert (tiny_model_dir / "pipeline_vaelm.py").read_text() == (REPO / "vaelm" / "pipeline_vaelm.py").read_text()
    check_pipelines(*run_without_vaelm(tiny_model_dir, tmp_path))


def test_bundled_pipeline_file_is_current():
    assert (Path(vaelm.DEFAULT_MODEL) / "pipeline_vaelm.py").read_text() == (
        REPO / "vaelm" / "pipeline_vaelm.py"
    ).read_text()


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
        result = subprocess.run(
            [
                sys.executable,
                "-W",
                "always",
                "-m",
                "vaelm.cli.sample",
                "--num",
                "5",
                "--strategy",
                strategy,
                "--seed",
                "0",
            ],
            capture_output=True,
            text=True,
            env=environment,
            timeout=300,
            cwd=REPO,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        lines = result.stdout.strip().splitlines()
        assert len(lines) == 5
        assert all("<unk>" not in line.split() for line in lines), lines
        assert "warn" not in result.stderr.lower(), result.stderr[-2000:]


CHINESE_SCRIPT = (
    BARE
    + r"""
from transformers import pipeline
try:
    pipeline("sentence-vae", model=sys.argv[1], trust_remote_code=True)
except ImportError as error:
    print("ImportError:", error)
"""
)


def test_a_chinese_model_without_jieba_says_so(tmp_path):
    """A model that segments with jieba needs it; where jieba is missing, the pipeline says so and how to fix it."""
    folder = tmp_path / "zh"
    shutil.copytree(vaelm.DEFAULT_MODEL, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "lang": "zh", "segmentation": "jieba"}))
    result = run_bare(CHINESE_SCRIPT, folder, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ImportError: This model cuts Chinese text into words with jieba" in result.stdout, result.stdout
    assert "pip install jieba" in result.stdout
