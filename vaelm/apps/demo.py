"""The web demo: a Gradio app over [`~vaelm.generation.sentence_vae.SentenceVAE`], and its export as a Hugging Face Space.

Five tabs, each a thin call into `SentenceVAE` (nothing is implemented twice):

- **Sample**: N sentences from the prior, with the decoding options and a seed;
- **Reconstruct**: a sentence → its posterior mean decoded, and a few posterior samples;
- **Interpolate**: the homotopy between two sentences, ends included (steps + 2 lines);
- **Impute**: the missing end of a sentence (`the company said ___`), Bowman et al. 2016 §5.1;
- **Latent map**: posterior means of a corpus sample in 2-D ([`vaelm.evaluation.latent_map`]); hovering shows a sentence, and
  the user's own sentence and a homotopy path are drawn on it.

[`DemoBackend`] holds the tab functions as plain Python (text in, text out; `ValueError` for bad input);
[`build_app`] wires them into `gr.Blocks` (a `ValueError` becomes a `gr.Error` with the same message, shown in
the page and raised by `gradio_client`); [`export_space`] writes `app.py` + `requirements.txt` (and the Space
keys of the README front matter) into a model folder, which then deploys unchanged as a Space.

Gradio and plotly are optional (`pip install "vaelm[demo]"`): they are imported only when an app is built.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard
from transformers import set_seed

from ..evaluation.latent_map import DEMO_INSTALL_HINT, LatentMap, build_latent_map, plotly_figure, read_split
from ..evaluation.settings import DEMO_MAP_SENTENCES as DEFAULT_MAP_SENTENCES
from ..evaluation.settings import PROJECTIONS
from ..generation.decoding import HOMOTOPY_STEPS, INTERPOLATIONS, STRATEGIES, DecodingConfig
from ..generation.sentence_vae import SentenceVAE
from ..pretrained import DEFAULT_MODEL
from ..pretrained.loading import check_model_source
from ..pretrained.model_folder import CARD_FILE, SPACE_APP_FILE, SPACE_FRONT_MATTER
from ..version import __version__

TAB_NAMES = ("Sample", "Reconstruct", "Interpolate", "Impute", "Latent map")
MAX_SAMPLES = 50
MAX_STEPS = 30
# The page's decoding defaults are the library's (the commands', SentenceVAE's, the pipelines').
DECODING = DecodingConfig()
TOP_P_OFF = 1.0  # the top-p slider's value for "no nucleus truncation" (DecodingConfig.top_p None)
# Prior samples of the map are cut at this many words: loops of a greedy decoder would otherwise run to the
# longest training sentence, and cost start-up time for nothing.
MAP_SAMPLE_WORDS = 40
SPACE_FILES = (SPACE_APP_FILE, "requirements.txt")
APP_TEMPLATE = '''"""A Hugging Face Space for a vaelm model (Bowman et al. 2016 sentence VAE): `python app.py` serves `vaelm-demo`.

Written by `vaelm-demo --export` / `vaelm-push --with_demo`; the model is {model_note}.
"""

from vaelm.apps.demo import build_demo

demo = build_demo({model_expression}, map_sentences={map_sentences})

if __name__ == "__main__":
    demo.launch()
'''


def require_gradio():
    """Import gradio, or say how to install it."""
    try:
        import gradio
    except ImportError:
        raise ImportError(
            f"The demo needs Gradio, which is not installed. Install it with: {DEMO_INSTALL_HINT}"
        ) from None
    return gradio


def _lines(results: list[dict]) -> str:
    return "\n".join(result["text"] for result in results)


class DemoBackend:
    """
    The demo's tab functions, over one [`~vaelm.generation.sentence_vae.SentenceVAE`].

    Calls are serialised by a lock: torch's global generator is seeded per call, so that a seed always gives the
    same output even when several visitors use the app at once.

    Args:
        vae ([`~vaelm.generation.sentence_vae.SentenceVAE`]): the model.
        latent_map ([`~vaelm.evaluation.latent_map.LatentMap`]): the map of the Latent map tab.
        map_source (`str`): what the map's sentences are (shown above the map).
    """

    def __init__(self, vae: SentenceVAE, latent_map: LatentMap, map_source: str) -> None:
        self.vae = vae
        self.latent_map = latent_map
        self.map_source = map_source
        self._lock = threading.Lock()

    def _seeded(self, seed: float | None, call: Callable[[], Any]) -> Any:
        with self._lock:
            if seed is not None and seed >= 0:
                set_seed(int(seed))
            return call()

    @staticmethod
    def decoding(
        strategy: str = DECODING.strategy,
        temperature: float = DECODING.temperature,
        top_p: float = DECODING.top_p or TOP_P_OFF,
        num_beams: int = DECODING.num_beams,
        suppress_unk: bool = DECODING.suppress_unk,
    ) -> DecodingConfig:
        """The decoding options of the page as a [`~vaelm.generation.decoding.DecodingConfig`] (sampling knobs only for sampling)."""
        if strategy not in STRATEGIES:
            raise ValueError(f"Unknown decoding strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}.")
        sampling = strategy == "sample"
        return DecodingConfig(
            strategy=strategy,
            temperature=float(temperature) if sampling else 1.0,
            top_p=float(top_p) if sampling and top_p is not None and top_p < TOP_P_OFF else None,
            num_beams=int(num_beams),
            suppress_unk=bool(suppress_unk),
        )

    @staticmethod
    def _sentence(text: str | None, what: str) -> str:
        if text is None or not str(text).strip():
            raise ValueError(f"The {what} is empty: type a sentence first.")
        return str(text).strip()

    @staticmethod
    def _count(value: float | None, what: str, largest: int) -> int:
        if value is None or int(value) != value or not 1 <= value <= largest:
            raise ValueError(f"The number of {what} must be a whole number from 1 to {largest}, got {value}.")
        return int(value)

    def sample(
        self,
        num: float = 5,
        strategy: str = DECODING.strategy,
        temperature: float = DECODING.temperature,
        top_p: float = DECODING.top_p or TOP_P_OFF,
        num_beams: float = DECODING.num_beams,
        seed: float | None = 0,
        suppress_unk: bool = DECODING.suppress_unk,
    ) -> str:
        """`num` sentences from z ~ N(0, I), one per line."""
        num = self._count(num, "sentences", MAX_SAMPLES)
        decoding = self.decoding(strategy, temperature, top_p, int(num_beams), suppress_unk)
        return _lines(self._seeded(seed, lambda: self.vae.sample_prior(num, decoding)))

    def reconstruct(
        self, sentence: str, num_samples: float = 3, seed: float | None = 0, suppress_unk: bool = DECODING.suppress_unk
    ) -> tuple[str, str]:
        """The posterior mean of `sentence` decoded greedily, and `num_samples` greedy decodings of z ~ q(z|x)."""
        sentence = self._sentence(sentence, "sentence to reconstruct")
        num = self._count(num_samples, "posterior samples", MAX_SAMPLES)
        decoding = self.decoding(suppress_unk=suppress_unk)

        def run():
            mean = self.vae.sample_posterior(sentence, 1, mean=True, decoding=decoding)
            return _lines(mean), _lines(self.vae.sample_posterior(sentence, num, decoding=decoding))

        return self._seeded(seed, run)

    def interpolate(
        self,
        start: str,
        end: str,
        steps: float = HOMOTOPY_STEPS,
        mode: str = INTERPOLATIONS[0],
        suppress_unk: bool = DECODING.suppress_unk,
    ) -> str:
        """The homotopy from `start` to `end`: `steps + 2` lines, both ends included."""
        start, end = self._sentence(start, "first sentence"), self._sentence(end, "second sentence")
        if steps is None or int(steps) != steps or not 0 <= steps <= MAX_STEPS:
            raise ValueError(f"The number of steps must be a whole number from 0 to {MAX_STEPS}, got {steps}.")
        if mode not in INTERPOLATIONS:
            raise ValueError(f"Unknown interpolation {mode!r}: choose one of {', '.join(INTERPOLATIONS)}.")
        decoding = self.decoding(suppress_unk=suppress_unk)
        return _lines(self._seeded(None, lambda: self.vae.homotopy(start, end, int(steps), mode, decoding)))

    def impute(
        self, text: str, num: float = 1, seed: float | None = 0, suppress_unk: bool = DECODING.suppress_unk
    ) -> str:
        """Completions of a sentence whose end is marked missing (`___`), one per line."""
        text = self._sentence(text, "sentence to complete")
        num = self._count(num, "completions", MAX_SAMPLES)
        decoding = self.decoding(suppress_unk=suppress_unk)
        return _lines(self._seeded(seed, lambda: self.vae.impute(text, num=num, mean=num == 1, decoding=decoding)))

    def map_figure(
        self,
        sentence: str | None = None,
        end: str | None = None,
        steps: float = HOMOTOPY_STEPS,
        mode: str = INTERPOLATIONS[0],
    ):
        """
        The latent map, with the posterior mean of `sentence` on it, and with `end` the homotopy path between them.

        Returns:
            `(figure, text)`: the plotly figure, and the decoded path (or the reconstruction) as lines.
        """
        has_start, has_end = bool(sentence and sentence.strip()), bool(end and end.strip())
        if has_end and not has_start:
            raise ValueError("Type the first sentence too: the path goes from the first sentence to the second.")
        traces, text = [], ""
        if has_start and has_end:
            path = self.vae.homotopy(sentence.strip(), end.strip(), int(steps), mode, self.decoding())
            texts = [point["text"] for point in path]
            traces.append(
                {
                    "name": "homotopy",
                    "codes": [point["z"] for point in path],
                    "texts": texts,
                    "mode": "lines+markers",
                    "size": 9,
                    "symbol": "diamond",
                    "color": "crimson",
                }
            )
            text = "\n".join(texts)
        elif has_start:
            with self._lock:
                mu, _ = self.vae.encode([sentence.strip()])
                text = self.vae.decode(mu, self.decoding())[0]
            traces.append(
                {
                    "name": "your sentence",
                    "codes": mu.float().cpu().tolist(),
                    "texts": [sentence.strip()],
                    "mode": "markers",
                    "size": 16,
                    "symbol": "star",
                    "color": "crimson",
                }
            )
        return plotly_figure(self.latent_map, traces), text


def map_sentences_for(
    vae: SentenceVAE, map_data: str | None, map_split: str, map_sentences: int
) -> tuple[list[str], str]:
    """
    The sentences of the latent map: the first `map_sentences` of a corpus split, or without `map_data` as many
    greedy decodings of prior samples (seed 0), so that a bundled or downloaded model needs no corpus.
    """
    if map_data:
        return read_split(
            map_data, map_split, map_sentences
        ), f"the first {map_sentences} sentences of {map_data} ({map_split})"
    set_seed(0)
    texts = [
        result["text"]
        for result in vae.sample_prior(map_sentences, DecodingConfig(max_new_tokens=MAP_SAMPLE_WORDS + 1))
    ]
    return [text for text in texts if text.strip()], f"{map_sentences} sentences decoded from prior samples (seed 0)"


def build_app(backend: DemoBackend, title: str = "vaelm: a sentence VAE"):
    """
    The Gradio Blocks app over `backend`: five tabs, each also an API endpoint (`/sample`, `/reconstruct`,
    `/interpolate`, `/impute`, `/latent_map`) for `gradio_client`.
    """
    gr = require_gradio()

    def shown(function: Callable) -> Callable:
        """Bad input raises `gr.Error` with our message (shown in the page, sent to API clients) instead of "Error"."""

        @functools.wraps(function)
        def wrapper(*args):
            try:
                return function(*args)
            except ValueError as error:
                raise gr.Error(str(error)) from None

        return wrapper

    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(
            f"# {title}\nA sentence-level variational auto-encoder (Bowman et al. 2016): an LSTM encoder maps a "
            "sentence to q(z|x), an LSTM decoder turns a latent code z back into words."
        )
        with gr.Tab(TAB_NAMES[0]):
            with gr.Row():
                num = gr.Slider(1, MAX_SAMPLES, value=5, step=1, label="sentences")
                strategy = gr.Radio(list(STRATEGIES), value=DECODING.strategy, label="decoding")
                seed = gr.Number(value=0, precision=0, label="seed (-1: random)")
            with gr.Row():
                temperature = gr.Slider(0.1, 2.0, value=DECODING.temperature, step=0.05, label="temperature (sample)")
                top_p = gr.Slider(0.05, TOP_P_OFF, value=DECODING.top_p or TOP_P_OFF, step=0.05, label="top-p (sample)")
                num_beams = gr.Slider(1, 10, value=DECODING.num_beams, step=1, label="beams (beam)")
                suppress_unk = gr.Checkbox(value=DECODING.suppress_unk, label="no <unk>")
            sample_button = gr.Button("Sample", variant="primary")
            samples = gr.Textbox(label="sentences from z ~ N(0, I)", lines=8, buttons=["copy"])
            sample_button.click(
                shown(backend.sample),
                [num, strategy, temperature, top_p, num_beams, seed, suppress_unk],
                samples,
                api_name="sample",
            )
        with gr.Tab(TAB_NAMES[1]):
            sentence = gr.Textbox(label="sentence", value="the company said it will buy shares")
            with gr.Row():
                num_posterior = gr.Slider(1, 20, value=3, step=1, label="posterior samples")
                posterior_seed = gr.Number(value=0, precision=0, label="seed (-1: random)")
            reconstruct_button = gr.Button("Reconstruct", variant="primary")
            mean_text = gr.Textbox(label="posterior mean, decoded")
            posterior_texts = gr.Textbox(label="samples of z ~ q(z|x), decoded", lines=5)
            reconstruct_button.click(
                shown(backend.reconstruct),
                [sentence, num_posterior, posterior_seed, suppress_unk],
                [mean_text, posterior_texts],
                api_name="reconstruct",
            )
        with gr.Tab(TAB_NAMES[2]):
            with gr.Row():
                start = gr.Textbox(label="first sentence", value="the market fell sharply")
                end = gr.Textbox(label="second sentence", value="investors bought more stock")
            with gr.Row():
                steps = gr.Slider(0, MAX_STEPS, value=HOMOTOPY_STEPS, step=1, label="steps between the two")
                mode = gr.Radio(list(INTERPOLATIONS), value=INTERPOLATIONS[0], label="interpolation")
            path = gr.Textbox(label="path (both ends included)", lines=8)
            inputs = [start, end, steps, mode, suppress_unk]
            gr.Button("Interpolate", variant="primary").click(
                shown(backend.interpolate), inputs, path, api_name="interpolate"
            )
            steps.release(shown(backend.interpolate), inputs, path, api_visibility="private")
        with gr.Tab(TAB_NAMES[3]):
            masked = gr.Textbox(label="sentence with its end missing (___)", value="the company said it will ___")
            with gr.Row():
                num_completions = gr.Slider(1, 10, value=1, step=1, label="completions")
                impute_seed = gr.Number(value=0, precision=0, label="seed (-1: random)")
            completions = gr.Textbox(label="completed", lines=5)
            gr.Button("Impute", variant="primary").click(
                shown(backend.impute),
                [masked, num_completions, impute_seed, suppress_unk],
                completions,
                api_name="impute",
            )
        with gr.Tab(TAB_NAMES[4]):
            gr.Markdown(
                f"Posterior means of {len(backend.latent_map)} sentences ({backend.map_source}), projected to 2-D "
                f"by {backend.latent_map.projection.method.upper()}. Hover a point to read its sentence. Type a "
                "sentence to place it on the map; add a second one to draw the homotopy path between them."
            )
            with gr.Row():
                map_start = gr.Textbox(label="your sentence", value="")
                map_end = gr.Textbox(label="second sentence (optional: draws the path)", value="")
                map_steps = gr.Slider(0, MAX_STEPS, value=HOMOTOPY_STEPS, step=1, label="steps")
            place_button = gr.Button("Place on the map", variant="primary")
            plot = gr.Plot(value=plotly_figure(backend.latent_map), label="latent map")
            map_text = gr.Textbox(label="decoded", lines=4)
            place_button.click(
                shown(backend.map_figure), [map_start, map_end, map_steps], [plot, map_text], api_name="latent_map"
            )
    return app


def build_demo(
    model: str | None = None,
    map_data: str | None = None,
    map_split: str = "test",
    map_sentences: int = DEFAULT_MAP_SENTENCES,
    projection: str = PROJECTIONS[0],
    device: str | None = None,
):
    """
    Load a model and build its Gradio app (what `vaelm-demo` serves and a Space's `app.py` calls).

    Args:
        model (`str`, *optional*): a model folder or Hub id; the bundled PTB model by default.
        map_data (`str`, *optional*): a corpus folder whose `map_split` fills the latent map; prior samples otherwise.
        map_split (`str`, *optional*, defaults to `"test"`): the split of `map_data`.
        map_sentences (`int`, *optional*, defaults to 200): points on the map.
        projection (`str`, *optional*, defaults to `"pca"`): `"pca"` or `"umap"`.
        device (`str`, *optional*): where to run the model.
    """
    require_gradio()  # fail before the model loads
    if map_sentences < 2:
        raise ValueError(f"The latent map needs at least 2 sentences, got map_sentences={map_sentences}.")
    vae = SentenceVAE.from_pretrained(model or DEFAULT_MODEL, device=device)
    sentences, source = map_sentences_for(vae, map_data, map_split, map_sentences)
    backend = DemoBackend(vae, build_latent_map(vae, sentences, projection=projection), source)
    name = Path(str(model)).name if model else "the bundled PTB model"
    return build_app(backend, title=f"vaelm: {name}")


# ------------------------------------------------------------------------------------------------ Space export
def serve(app, host: str = "127.0.0.1", port: int | None = None, share: bool = False) -> None:
    """
    Serve `app` until Ctrl-C, saying where in `vaelm-demo`'s words: Gradio's own hint names its `launch()` argument
    (`share=True`), which a command-line user cannot pass; this names the `--share` flag instead.

    Args:
        app (`gradio.Blocks`): the demo ([`build_demo`]).
        host (`str`, *optional*, defaults to `"127.0.0.1"`): the address to serve on.
        port (`int`, *optional*): the port (default: Gradio's 7860, or the next free one).
        share (`bool`, *optional*, defaults to `False`): also open a temporary public gradio.live link.
    """
    app.launch(server_name=host, server_port=port, share=share, quiet=True, prevent_thread_lock=True)
    print(f"* Running on local URL:  {app.local_url}", flush=True)
    if not share:  # with --share, Gradio prints the public URL (or why it could not make one) itself
        print("* To create a temporary public link (gradio.live), rerun with --share.", flush=True)
    app.block_thread()


def export_space(
    model: str, folder: str | Path, requirement: str | None = None, map_sentences: int = DEFAULT_MAP_SENTENCES
) -> list[Path]:
    """
    Write `app.py` and `requirements.txt` into a model folder, so that the folder deploys unchanged as a Gradio Space.

    A local `model` that is not `folder` is copied into it first (weights, tokenizer, code, card, plots); a Hub id
    is loaded by id from the Space. The README front matter gets the Space keys (`sdk: gradio`, `app_file: app.py`,
    `sdk_version`), which model repositories ignore; `vaelm-push` keeps them in the card it renders for the upload.

    Args:
        model (`str`): the model folder or Hub id.
        folder (`str` or `Path`): the folder to write into.
        requirement (`str`, *optional*): how the Space installs vaelm (default `vaelm[demo]==VERSION`; a
            `git+https://…` URL works too).
        map_sentences (`int`, *optional*, defaults to 200): points on the Space's latent map.

    Returns:
        `list[Path]`: the files written.
    """
    folder = Path(folder)
    source = check_model_source(model)
    local = Path(source).is_dir()
    if local and Path(source).resolve() != folder.resolve():
        shutil.copytree(source, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("checkpoint-*", "runs", "_*"))
    folder.mkdir(parents=True, exist_ok=True)
    if local:
        expression, note = "str(__import__('pathlib').Path(__file__).resolve().parent)", "the folder this file is in"
    else:
        expression, note = repr(source), f"the Hub repository {source}"
    app = folder / SPACE_APP_FILE
    app.write_text(
        APP_TEMPLATE.format(model_expression=expression, model_note=note, map_sentences=map_sentences), encoding="utf-8"
    )
    requirements = folder / "requirements.txt"
    requirements.write_text(f"{requirement or f'vaelm[demo]=={__version__}'}\n", encoding="utf-8")

    card_path = folder / CARD_FILE
    card = (
        ModelCard.load(card_path)
        if card_path.is_file()
        else ModelCard(f"---\nlibrary_name: transformers\n---\n\n# {folder.resolve().name}\n")
    )
    keys = dict(SPACE_FRONT_MATTER)
    with contextlib.suppress(ImportError):
        keys["sdk_version"] = require_gradio().__version__
    for key, value in keys.items():
        setattr(card.data, key, value)
    card.save(card_path)
    return [app, requirements, card_path]


__all__ = [
    "TAB_NAMES",
    "DemoBackend",
    "build_app",
    "build_demo",
    "export_space",
    "map_sentences_for",
    "require_gradio",
    "serve",
]
