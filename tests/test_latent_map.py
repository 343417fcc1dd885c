"""Latent maps: `vaelm-map` writes a PNG and an HTML page with one point per sentence asked for; the projection places
further codes on the same map; bad input gets a clear message; a training run's model card shows its map."""

import json
import re
import sys

import pytest
import torch
from PIL import Image

from vaelm.cli import run_command
from vaelm.cli.map import main as map_main
from vaelm.evaluation.latent_map import HTML_DATA_ID, build_latent_map, fit_projection, read_labelled
from vaelm.generation.sentence_vae import SentenceVAE
from vaelm.pretrained.model_folder import LATENT_MAP_FILE

pytest.importorskip("plotly")


@pytest.fixture(scope="module")
def vae(tiny_model_dir):
    return SentenceVAE.from_pretrained(tiny_model_dir, device="cpu")


def html_points(path) -> list[dict]:
    html = path.read_text(encoding="utf-8")
    match = re.search(rf'<script type="application/json" id="{HTML_DATA_ID}">(.*?)</script>', html, flags=re.S)
    assert match, "the HTML map carries its points as JSON"
    assert "Plotly.newPlot" in html and "https://cdn" not in html.split(HTML_DATA_ID)[0][:2000]
    return json.loads(match.group(1))["points"]


def test_vaelm_map_png_and_html_have_one_point_per_sentence(tiny_model_dir, tiny_corpus, tmp_path, capsys):
    for name in ("map.png", "map.html"):
        status = run_command(
            "vaelm-map",
            map_main,
            [
                "--model",
                str(tiny_model_dir),
                "--data_dir",
                str(tiny_corpus),
                "--split",
                "valid",
                "--max_sentences",
                "25",
                "--output",
                str(tmp_path / name),
            ],
        )
        assert status == 0, capsys.readouterr().err
        summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert summary["points"] == 25 and summary["projection"] == "pca" and summary["output"] == str(tmp_path / name)
    with Image.open(tmp_path / "map.png") as image:
        assert image.format == "PNG" and image.size[0] > 300
        assert json.loads(image.text["Description"]) == {"points": 25, "projection": "pca", "color_by": "length"}
    points = html_points(tmp_path / "map.html")
    valid = (tiny_corpus / "valid.txt").read_text().splitlines()[:25]
    assert [point["text"] for point in points] == valid
    assert all(point["length"] == len(text.split()) for point, text in zip(points, valid))


def test_label_column_colours_the_map(tiny_model_dir, tmp_path, capsys):
    rows = (
        ["text,topic"]
        + [f"the company said it will buy {n} shares,buy" for n in range(6)]
        + [f"investors agreed to sell {n} bonds,sell" for n in range(6)]
    )
    data = tmp_path / "labelled.csv"
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    status = run_command(
        "vaelm-map",
        map_main,
        [
            "--model",
            str(tiny_model_dir),
            "--data_file",
            str(data),
            "--label_column",
            "topic",
            "--max_sentences",
            "10",
            "--output",
            str(tmp_path / "m.html"),
        ],
    )
    assert status == 0, capsys.readouterr().err
    points = html_points(tmp_path / "m.html")
    assert len(points) == 10 and [p["label"] for p in points] == ["buy"] * 6 + ["sell"] * 4
    assert '"name":"buy"' in (tmp_path / "m.html").read_text() and '"name":"sell"' in (tmp_path / "m.html").read_text()


def test_projection_is_affine_and_places_new_codes(vae):
    sentences = [
        "the company said it will buy N shares",
        "investors agreed to sell its stock",
        "the bank plans to trade the unit",
        "mr. <unk> expects to issue N million of bonds",
        "the board agreed to sell a stake in the bank",
    ]
    latent_map = build_latent_map(vae, sentences)
    assert latent_map.coordinates.shape == (5, 2)
    assert torch.allclose(
        torch.as_tensor(latent_map.project(latent_map.means)), torch.as_tensor(latent_map.coordinates)
    )
    path = vae.homotopy(sentences[0], sentences[1], steps=4)  # linear: a straight path in z stays straight on the map
    placed = latent_map.project([point["z"] for point in path])
    direction = placed[-1] - placed[0]
    cross = [abs(direction[0] * (p - placed[0])[1] - direction[1] * (p - placed[0])[0]) for p in placed]
    assert max(cross) < 1e-6 * max(1.0, float((direction**2).sum()))
    assert sum(latent_map.projection.explained) <= 1.0 + 1e-9


def test_bad_input_gets_a_clear_message(tiny_model_dir, tiny_corpus, tmp_path, capsys):
    def error(argv):
        assert run_command("vaelm-map", map_main, argv) == 1
        return capsys.readouterr().err

    model = ["--model", str(tiny_model_dir)]
    assert "--output must end in .png or .html" in error(
        [*model, "--data_dir", str(tiny_corpus), "--output", "map.jpg"]
    )
    assert "Give one of --data_dir" in error([*model, "--output", str(tmp_path / "m.png")])
    assert "has no test split" in error([*model, "--data_dir", str(tmp_path), "--output", str(tmp_path / "m.png")])
    bad = tmp_path / "bad.csv"
    bad.write_text("sentence,label\nthe company,a\n", encoding="utf-8")
    assert "has no column 'text'" in error([*model, "--data_file", str(bad), "--output", str(tmp_path / "m.png")])
    with pytest.raises(ValueError, match="at least 2 sentences"):
        fit_projection(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="line 3: the 'text' column is empty"):
        (tmp_path / "gap.csv").write_text('text\nthe company\n""\n', encoding="utf-8")
        read_labelled(tmp_path / "gap.csv")


def test_html_map_without_plotly_says_how_to_install(tiny_model_dir, tiny_corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    status = run_command(
        "vaelm-map",
        map_main,
        ["--model", str(tiny_model_dir), "--data_dir", str(tiny_corpus), "--output", str(tmp_path / "m.html")],
    )
    assert status == 1
    assert 'pip install "vaelm[demo]"' in capsys.readouterr().err


def test_training_run_card_shows_its_latent_map(tiny_model_dir):
    picture = tiny_model_dir / LATENT_MAP_FILE
    with Image.open(picture) as image:
        description = json.loads(image.text["Description"])
    assert description["points"] == 40 and description["projection"] == "pca"  # the tiny corpus' 40 valid sentences
    card = (tiny_model_dir / "README.md").read_text(encoding="utf-8")
    assert f"]({LATENT_MAP_FILE})" in card and card.index("](training_curves.png)") < card.index(
        f"]({LATENT_MAP_FILE})"
    )
