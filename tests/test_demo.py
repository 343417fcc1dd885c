"""The web demo on the bundled model: each tab through `gradio_client` against the app served on 127.0.0.1, then in a
real browser (Playwright driving Debian's chromium, headless), the Space export, `vaelm-push --with_demo`, and the
install hint without Gradio. Screenshots go to `tests/artifacts/` (ignored by git)."""

import os
import runpy
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import free_port
from huggingface_hub import ModelCard

from vaelm import DEFAULT_MODEL
from vaelm.apps.demo import TAB_NAMES, build_demo
from vaelm.cli import run_command
from vaelm.cli.demo import main as demo_main

gr = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")

# Gradio's queue calls pandas options that pandas 3 deprecates: their noise, not ours.
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),
    pytest.mark.filterwarnings("ignore:The copy keyword"),
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
MAP_SENTENCES = 30
START, END = "the market fell sharply", "investors bought more stock"


@pytest.fixture(scope="module")
def app_url():
    """The demo of the bundled model, served on 127.0.0.1 from this process (threads), for the module's tests."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    app = build_demo(map_sentences=MAP_SENTENCES)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    app.close()


@pytest.fixture(scope="module")
def client(app_url):
    return gradio_client.Client(app_url, verbose=False)


def lines(text: str) -> list[str]:
    return text.splitlines()


# ------------------------------------------------------------------------------------------------ API
def test_api_endpoints_are_the_five_tabs(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(endpoints) == {"/sample", "/reconstruct", "/interpolate", "/impute", "/latent_map"}


def test_api_sample_count_and_seed(client):
    greedy = client.predict(4, "greedy", 1.0, 1.0, 4, 7, True, api_name="/sample")
    assert len(lines(greedy)) == 4 and all(line.strip() for line in lines(greedy))
    first = client.predict(6, "sample", 0.9, 0.95, 4, 11, True, api_name="/sample")
    again = client.predict(6, "sample", 0.9, 0.95, 4, 11, True, api_name="/sample")
    other = client.predict(6, "sample", 0.9, 0.95, 4, 12, True, api_name="/sample")
    assert len(lines(first)) == 6 and first == again and first != other
    assert "<unk>" not in first


def test_api_interpolate_gives_steps_plus_two_lines_ends_included(client):
    for steps in (0, 3):
        path = lines(client.predict(START, END, steps, "linear", True, api_name="/interpolate"))
        assert len(path) == steps + 2
    slerp = lines(client.predict(START, END, 4, "slerp", True, api_name="/interpolate"))
    mean_start, _ = client.predict(START, 1, 0, True, api_name="/reconstruct")
    mean_end, _ = client.predict(END, 1, 0, True, api_name="/reconstruct")
    assert len(slerp) == 6 and slerp[0] == mean_start and slerp[-1] == mean_end  # the ends are the posterior means


def test_api_reconstruct_and_impute(client):
    mean, samples = client.predict("the company said it will buy shares", 3, 5, True, api_name="/reconstruct")
    assert mean.strip() and len(lines(samples)) == 3
    completed = lines(client.predict("the company said it will ___", 2, 0, True, api_name="/impute"))
    assert len(completed) == 2 and all(line.startswith("the company said it will") for line in completed)


def test_api_latent_map_draws_the_path(client):
    plot, text = client.predict(START, END, 3, api_name="/latent_map")
    assert len(lines(text)) == 5
    figure = plot["plot"] if isinstance(plot, dict) and "plot" in plot else plot
    assert "homotopy" in str(figure) and "sentences" in str(figure)


@pytest.mark.parametrize(
    "endpoint, arguments, message",
    [
        ("/interpolate", ("", END, 3, "linear", True), "The first sentence is empty"),
        ("/interpolate", (START, "   ", 3, "linear", True), "The second sentence is empty"),
        ("/reconstruct", ("", 3, 0, True), "The sentence to reconstruct is empty"),
        ("/impute", ("", 1, 0, True), "The sentence to complete is empty"),
        ("/impute", ("___ said the company", 1, 0, True), "Only the end of a sentence can be imputed"),
        ("/latent_map", ("", END, 3), "Type the first sentence too"),
    ],
)
def test_api_bad_input_gets_a_clear_message(client, endpoint, arguments, message):
    with pytest.raises(gradio_client.exceptions.AppError, match=message):
        client.predict(*arguments, api_name=endpoint)


# ------------------------------------------------------------------------------------------------ browser
def textbox(page, label: str):
    """The visible textarea whose block label is exactly `label` (Gradio wraps it in a <label>)."""
    return (
        page.locator("label").filter(has=page.get_by_text(label, exact=True)).filter(visible=True).locator("textarea")
    )


def wait_for_lines(page, locator, count: int, timeout: float = 60_000) -> list[str]:
    page.wait_for_function(
        "([el, n]) => el.value.split('\\n').filter(s => s.trim()).length === n",
        arg=[locator.element_handle(), count],
        timeout=timeout,
    )
    return lines(locator.input_value())


def test_in_a_real_browser(app_url):
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium; .ci/run does it).")
    ARTIFACTS.mkdir(exist_ok=True)
    started = time.perf_counter()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(app_url)
        for name in TAB_NAMES:
            sync_api.expect(page.get_by_role("tab", name=name)).to_be_visible()

        # Sample: the button gives N sentences.
        page.get_by_role("tab", name="Sample").click()
        page.get_by_role("button", name="Sample", exact=True).click()
        sampled = wait_for_lines(page, textbox(page, "sentences from z ~ N(0, I)"), 5)
        assert all(sentence.strip() for sentence in sampled)
        page.screenshot(path=ARTIFACTS / "demo_sample.png")

        # Interpolate: two sentences typed, the slider dragged with the mouse; releasing it shows the path.
        page.get_by_role("tab", name="Interpolate").click()
        textbox(page, "first sentence").fill(START)
        textbox(page, "second sentence").fill(END)
        slider = page.get_by_label("range slider for steps between the two")
        box = slider.bounding_box()
        page.mouse.move(box["x"] + 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] / 2, steps=5)
        page.mouse.up()
        steps = int(slider.input_value())
        assert steps != 5  # it moved from its start
        path = wait_for_lines(page, textbox(page, "path (both ends included)"), steps + 2)
        page.screenshot(path=ARTIFACTS / "demo_interpolate.png")

        # Latent map: hovering a point shows its sentence; placing a path adds its trace.
        page.get_by_role("tab", name="Latent map").click()
        points = page.locator(".js-plotly-plot .scatterlayer .trace").first.locator(".point")
        points.first.wait_for(timeout=30_000)
        assert points.count() == MAP_SENTENCES
        box = points.nth(MAP_SENTENCES // 2).bounding_box()  # plotly's drag layer takes the events: move the mouse
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        hover = page.locator(".hoverlayer .hovertext").first
        hover.wait_for(timeout=10_000)
        assert hover.text_content().strip()
        page.screenshot(path=ARTIFACTS / "demo_latent_map.png")
        textbox(page, "your sentence").fill(START)
        textbox(page, "second sentence (optional: draws the path)").fill(END)
        page.get_by_role("button", name="Place on the map").click()
        assert len(wait_for_lines(page, textbox(page, "decoded"), 7)) == 7  # 5 steps (the slider's default) + 2 ends
        page.locator(".js-plotly-plot .legendtext", has_text="homotopy").wait_for(timeout=10_000)
        page.screenshot(path=ARTIFACTS / "demo_latent_map_path.png")
        browser.close()
    elapsed = time.perf_counter() - started
    (ARTIFACTS / "browser_test_seconds.txt").write_text(f"{elapsed:.1f}\n")
    assert path[0] and path[-1]


# ------------------------------------------------------------------------------------------------ Space export
def test_export_writes_a_space_that_builds_and_survives_a_card_rewrite(tiny_model_dir, tmp_path, capsys):
    folder = tmp_path / "space"
    status = run_command(
        "vaelm-demo", demo_main, ["--model", str(tiny_model_dir), "--export", str(folder), "--map_sentences", "12"]
    )
    assert status == 0, capsys.readouterr().err
    assert {"app.py", "requirements.txt", "config.json", "model.safetensors", "tokenizer.json"} <= {
        p.name for p in folder.iterdir()
    }
    assert (folder / "requirements.txt").read_text().startswith("vaelm[demo]==")
    data = ModelCard.load(folder / "README.md").data.to_dict()
    assert data["sdk"] == "gradio" and data["app_file"] == "app.py" and data["sdk_version"] == gr.__version__
    assert data["library_name"] == "transformers"  # the model card's own keys stay

    from vaelm.hub.model_card import write_model_card

    write_model_card(folder)  # vaelm-push rewrites the card: the Space keys must survive
    assert ModelCard.load(folder / "README.md").data.to_dict()["sdk"] == "gradio"
    space = runpy.run_path(str(folder / "app.py"), run_name="space")  # what the Space runs, without launching
    app = space["demo"]
    assert isinstance(app, gr.Blocks)
    tabs = [block.label for block in app.blocks.values() if isinstance(block, gr.Tab)]
    assert tabs == list(TAB_NAMES)


def test_push_with_demo_uploads_the_space_files(tiny_model_dir, tmp_path):
    from hub_server import LoopbackHub

    token = "hf_loopbackSecretToken0123456789"
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    with LoopbackHub(token=token) as hub:
        env = {
            **os.environ,
            "HF_ENDPOINT": hub.endpoint,
            "HF_HOME": str(tmp_path / "hf"),
            "HF_TOKEN": token,
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        }
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "vaelm.cli.push",
                "--model",
                str(folder),
                "--repo_id",
                "org/with-demo",
                "--with_demo",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        files = hub.files("org/with-demo")
    assert {"app.py", "requirements.txt", "latent_map.png", "README.md", "model.safetensors"} <= set(files)
    card = ModelCard(files["README.md"].decode())
    assert card.data.to_dict()["sdk"] == "gradio" and "](latent_map.png)" in card.text


def test_without_gradio_the_command_says_how_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)
    assert run_command("vaelm-demo", demo_main, ["--model", DEFAULT_MODEL]) == 1
    assert 'pip install "vaelm[demo]"' in capsys.readouterr().err


def test_chinese_model_segments_in_and_joins_out(luxun_dir, tmp_path):
    """The tab functions on a (tiny) jieba-segmented Chinese model: raw Chinese in, text without spaces out."""
    from conftest import train_tiny

    from vaelm.apps.demo import DemoBackend
    from vaelm.evaluation.latent_map import build_latent_map
    from vaelm.generation.sentence_vae import SentenceVAE

    corpus = tmp_path / "zh"
    corpus.mkdir()
    texts = (luxun_dir / "train.txt").read_text(encoding="utf-8").splitlines()
    (corpus / "train.txt").write_text("\n".join(texts[:300]) + "\n", encoding="utf-8")
    (corpus / "valid.txt").write_text("\n".join(texts[300:320]) + "\n", encoding="utf-8")
    vae = SentenceVAE.from_pretrained(
        train_tiny(corpus, tmp_path / "zh_model", "--lang", "zh", "--max_steps", "5"), device="cpu"
    )
    sentences = [text.replace(" ", "") for text in texts[300:310]]
    backend = DemoBackend(vae, build_latent_map(vae, sentences), "Lu Xun")
    outputs = [
        backend.sample(3),
        backend.interpolate(sentences[0], sentences[1], 2),
        backend.impute(sentences[2][:4] + "___"),
    ]
    assert len(lines(outputs[0])) == 3 and len(lines(outputs[1])) == 4
    assert lines(outputs[2])[0].startswith(sentences[2][:4])
    assert all(" " not in line for output in outputs for line in lines(output))
    figure, text = backend.map_figure(sentences[0])
    assert len(figure.data) == 2 and " " not in text
