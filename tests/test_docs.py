"""The documentation is true: the site builds strictly, the layout page matches the import contract, and every command
and Python block of README.md and docs/ runs.

Each page runs in a fresh folder like a new clone's (the configuration, scripts and benchmarks folders, no runs/),
its blocks in order, so a later block finds what an earlier one trained. Where a page says so, commands run with tiny
settings: `vaelm-train` (also under `accelerate launch`) trains a tiny model for 4 steps on a tiny corpus instead of
`--dataset ptb` or `data/NAME`; `vaelm-evaluate` scores 5 sentences with K = 2; `vaelm-map` maps 20 sentences;
`vaelm-demo` builds its app without serving it; interactive commands read two lines; the test suite's own command
is checked to be the one `.ci/run` runs (running it here would recurse). A console block's output must equal what
its commands print now (`python scripts/docs_figures.py` regenerates it), unless it is marked
`<!-- docs-test: tiny -->`. Commands that read PTB (`--dataset ptb`, `data/ptb`) read a tiny corpus in PTB's format; a console block whose
commands read a corpus is compared with what it prints on the real corpora by `test_quoted_corpus_outputs_are_current`
(marked `corpora`: it runs when `VAELM_SHARED_DATA` is set). A block is left out only when marked `<!-- docs-test: skip CATEGORY: why -->`, CATEGORY hours, network or gpu; `SKIPPED` lists
them all, so a new skip is a visible change here.
"""

from __future__ import annotations

import configparser
import html
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, shared_corpus, write_corpus
from test_readme import TINY_TRAINING as README_TINY_TRAINING


def load_script(name: str):
    """A module of scripts/ (they are run as files, not installed)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


docs_figures = load_script("docs_figures")
docs_layout = load_script("docs_layout")
PAGES = docs_figures.doc_files()
# README's tiny training flags, with a smaller batch and one thread for the many runs of the pages.
TINY_TRAINING = [*README_TINY_TRAINING, "--batch_size", "16", "--num_threads", "1"]
# Every block the tests leave out, as (file, category). A new one must be added here, with its reason in the page.
SKIPPED = sorted(
    [
        ("README.md", "network"),  # pip install
        ("docs/corpora.md", "hours"),  # the raw-books model: 78 minutes of training, then its samples
        ("docs/demo.md", "network"),  # a Hub model with Gradio's share link
        ("docs/demo.md", "network"),  # hf repo create / hf upload
        ("docs/devices.md", "network"),  # two machines
        ("docs/hub.md", "network"),  # hf auth login, vaelm-push
        ("docs/hub.md", "network"),  # loading a model from the Hub
        ("docs/results.md", "hours"),  # configuration/reproduce_ptb.sh, ablation_ptb.sh
        ("docs/speed.md", "gpu"),  # benchmarks/device_check.sh on the GPU machine
        ("docs/speed.md", "network"),  # benchmarks/device_check.sh --prepare
    ]
)


def all_blocks() -> list:
    return [block for page in PAGES for block in docs_figures.find_blocks(page)]


def relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


# ------------------------------------------------------------------------------------------------- the site
def test_mkdocs_builds_strictly(tmp_path):
    """The site builds strictly, printing nothing but mkdocs' own lines (no theme banner, no jieba), and its API pages
    show transformers' docstring syntax as links and code: no `[<code>` of an unlinked reference, no backtick."""
    site = tmp_path / "site"
    environment = {key: value for key, value in os.environ.items() if key != "NO_MKDOCS_2_WARNING"}
    environment["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    printed = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert all(line.startswith("INFO") for line in printed), "\n".join(printed)
    api = (site / "api" / "configuration" / "index.html").read_text(encoding="utf-8")
    assert "VAELMConfig" in api and "latent_size" in api, "the API reference is built from the docstrings"
    assert "SentenceVAE" in (site / "api" / "generation" / "index.html").read_text(encoding="utf-8")
    layout = (site / "layout" / "index.html").read_text(encoding="utf-8")
    assert "vaelm.training.trainer" in layout
    links = 0
    for page in sorted((site / "api").glob("*/index.html")):
        article = re.search(r"<article.*?</article>", page.read_text(encoding="utf-8"), flags=re.DOTALL)[0]
        assert "[<code>" not in article, f"{page}: an unlinked [`reference`]"
        text = html.unescape(re.sub(r"<[^>]+>", "", re.sub(r"<pre.*?</pre>", "", article, flags=re.DOTALL)))
        stray = [text[max(0, i - 50) : i + 30] for i in range(len(text)) if text[i] == "`"]
        assert not stray, f"{page}: literal backticks, e.g. {stray[:3]}"
        links += article.count('class="autorefs autorefs-internal"')
    assert links >= 100, "transformers' [`X`] references became links"
    model = (site / "api" / "model" / "index.html").read_text(encoding="utf-8")
    forward = re.search(r'Output of <a class="autorefs autorefs-internal"[^>]*href="([^"]+)"', model)
    assert forward and forward[1].endswith("#vaelm.modeling_vaelm.VAELMModel.forward"), "VAELMOutput links to forward"


def test_transformers_docstring_syntax_is_rewritten_for_mkdocstrings():
    import griffe

    docs_crossrefs = load_script("docs_crossrefs")
    package = griffe.load("vaelm", search_paths=[str(REPO)], docstring_parser="google")
    index = docs_crossrefs.Index(package)
    scope = package["modeling_vaelm.VAELMOutput"]
    text = (
        "Output of [`VAELMModel.forward`], see [`~vaelm.generation.SentenceVAE`] and [`~transformers.Trainer`].\n\n"
        "Args:\n    loss (`torch.FloatTensor` of shape `()`, *optional*): the loss.\n"
        "    config ([`VAELMConfig`]): the configuration.\n\nReturns:\n    `dict`: the figures.\n"
    )
    rewritten = docs_crossrefs.rewrite(text, scope, index)
    assert '<autoref identifier="vaelm.modeling_vaelm.VAELMModel.forward" optional>' in rewritten
    assert "<code>VAELMModel.forward</code></autoref>" in rewritten
    assert '<autoref identifier="vaelm.generation.sentence_vae.SentenceVAE" optional><code>SentenceVAE</code>' in (
        rewritten
    )
    assert "`Trainer`" in rewritten and "transformers" not in rewritten, "a name outside the package becomes code"
    assert "    loss (torch.FloatTensor of shape (), optional): the loss." in rewritten
    assert "    config (VAELMConfig): the configuration." in rewritten
    assert "    dict: the figures." in rewritten


def test_mkdocs_strict_fails_on_a_broken_link(tmp_path):
    """The strict build is not vacuous: a page linking to a missing page fails it."""
    docs = tmp_path / "docs"
    shutil.copytree(REPO / "docs", docs, ignore=shutil.ignore_patterns("api"))
    (docs / "api").mkdir()
    for page in (REPO / "docs" / "api").glob("*.md"):
        (docs / "api" / page.name).write_text(f"# {page.stem}\n", encoding="utf-8")
    (docs / "training.md").write_text(
        (docs / "training.md").read_text(encoding="utf-8") + "\n[x](missing.md)\n", encoding="utf-8"
    )
    config = (REPO / "mkdocs.yml").read_text(encoding="utf-8").replace("docs_dir: docs", f"docs_dir: {docs}")
    (tmp_path / "mkdocs.yml").write_text(config, encoding="utf-8")
    (tmp_path / "scripts").symlink_to(REPO / "scripts")  # the hook and the docstring extension mkdocs.yml names
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "s")],
        cwd=tmp_path,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode != 0 and "missing.md" in result.stdout + result.stderr


def test_docs_extras_install_the_site_tools():
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg", encoding="utf-8")
    extras = parser["options.extras_require"]
    assert "mkdocs-material" in extras["docs"] and "mkdocstrings[python]" in extras["docs"]
    assert re.search(r"vaelm\[[\w,]*\bdocs\b", extras["test"]), "the test extra includes the docs extra"


def test_readme_is_a_front_page():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 300
    headings = re.findall(r"^## (.+)$", readme, flags=re.MULTILINE)
    for heading in ("Install", "The two commands", "Quick start", "Documentation"):
        assert heading in headings, heading
    assert any(heading.startswith("Results") for heading in headings)
    assert readme.index("configuration/ptb-quick.yaml") < readme.index("configuration/ptb.yaml"), "quick recipe first"
    assert "python -m pytest tests -q" in readme and "python -m pytest tests -q" in (REPO / ".ci" / "run").read_text()
    assert "PLACEHOLDER" not in readme


def test_the_quick_recipe_has_one_measured_time():
    """docs/training.md holds the measurement; README, the recipe and the training page's tables round it."""
    training = (REPO / "docs" / "training.md").read_text(encoding="utf-8")
    measured = re.search(r"\*\*(\d+) min (\d+) s\*\* in all", training)
    assert measured, "docs/training.md gives the quick recipe's measured time"
    minutes = round(int(measured[1]) + int(measured[2]) / 60)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "docs/training.md#how-long-the-quick-recipe-takes" in readme
    for path in (REPO / "README.md", REPO / "configuration" / "ptb-quick.yaml", REPO / "docs" / "training.md"):
        assert f"about {minutes} min" in path.read_text(encoding="utf-8"), path
    for page in PAGES:
        if page.name != "training.md":
            assert measured[0].strip("*") not in page.read_text(encoding="utf-8"), f"{relative(page)} repeats it"


@pytest.mark.parametrize("page", PAGES, ids=relative)
def test_links_stay_inside_the_repository_and_resolve(page):
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        path = target.split("#")[0]
        assert not (page.parent / path).resolve().is_relative_to(REPO.parent / "shared"), target
        assert (page.parent / path).resolve().is_relative_to(REPO), f"{relative(page)} links outside the repo: {target}"
        assert not path or (page.parent / path).exists(), f"{relative(page)}: broken link {target}"
    assert "../shared" not in text, f"{relative(page)} names ../shared, outside the repository"


# ----------------------------------------------------------------------------------------------- the layout
def test_layout_page_is_generated_from_the_contract():
    text = (REPO / "docs" / "layout.md").read_text(encoding="utf-8")
    assert docs_layout.updated_page(text, docs_layout.render()) == text, "run python scripts/docs_layout.py"


def test_layout_page_lists_every_module_in_its_contract_layer():
    """Checked against the package itself, so a module added, moved or removed shows up here."""
    text = (REPO / "docs" / "layout.md").read_text(encoding="utf-8")
    layers = docs_layout.contract_layers()
    sections = re.split(r"^### Layer (\d+): (.*)$", text, flags=re.MULTILINE)
    listed: dict[str, int] = {}
    titles = []
    for number, title, body in zip(sections[1::3], sections[2::3], sections[3::3]):
        titles.append(re.findall(r"`([\w.]+)`", title))
        for module in re.findall(r"^\| `([\w.]+)` \|", body, flags=re.MULTILINE):
            assert module not in listed, f"{module} is listed twice"
            listed[module] = int(number) - 1
    assert titles == layers, "the page's layers are the contract's, top to bottom"
    modules = set(docs_layout.package_modules()) - {"vaelm"}
    import pkgutil

    import vaelm

    assert modules == {info.name for info in pkgutil.walk_packages(vaelm.__path__, prefix="vaelm.")}
    assert set(listed) == modules, f"missing: {sorted(modules - set(listed))}; stale: {sorted(set(listed) - modules)}"
    for module, index in listed.items():
        names = layers[index]
        assert any(module == name or module.startswith(name + ".") for name in names), (module, names)
    for names in layers:  # every layer's packages are on the page
        for name in names:
            assert name in listed, name


def test_a_module_outside_the_layers_stops_the_generator(tmp_path):
    shutil.copytree(REPO / "vaelm", tmp_path / "vaelm", ignore=shutil.ignore_patterns("pretrained", "__pycache__"))
    shutil.copy(REPO / "setup.cfg", tmp_path / "setup.cfg")
    (tmp_path / "vaelm" / "stray.py").write_text('"""A module no layer names."""\n', encoding="utf-8")
    with pytest.raises(SystemExit, match=r"vaelm.stray"):
        docs_layout.render(tmp_path)


# ---------------------------------------------------------------------------------- the blocks are all run
def test_every_block_is_run_or_explicitly_skipped():
    blocks = all_blocks()
    skipped = sorted((relative(block.file), block.category) for block in blocks if block.kind == "skip")
    assert skipped == SKIPPED, "a block was skipped or unskipped: update SKIPPED (and say why in the page)"
    for block in blocks:
        assert block.language, f"{block.where}: give the code block a language (bash, console, python, text, ...)"
        if block.kind == "skip":
            assert block.category in docs_figures.SKIP_CATEGORIES and block.reason, block.where
        if block.language not in docs_figures.RUNNABLE:
            assert not re.search(r"^\$ |^(vaelm-|python |accelerate )", block.text, flags=re.MULTILINE), (
                f"{block.where}: a {block.language} block holds commands; make it bash or console"
            )
    runnable = [block for block in blocks if block.language in docs_figures.RUNNABLE and block.kind != "skip"]
    assert len(runnable) >= 25 and len(skipped) <= 10
    print(f"\n{len(runnable)} blocks run, {len(skipped)} skipped:")
    for block in blocks:
        if block.kind == "skip":
            print(f"  {block.where} ({block.category}: {block.reason})")


class Runner:
    """Runs one page's blocks in a fresh folder, with the substitutions the module docstring lists."""

    def __init__(self, folder: Path, tiny_corpus: Path, data_root: Path, monkeypatch):
        """
        Args:
            folder: the fresh folder the page's commands run in.
            tiny_corpus: the corpus every `vaelm-train` reads instead of the one it names.
            data_root: the folder whose subfolders `data/NAME` and `--dataset ptb` name (a tiny `ptb/` in tests).
            monkeypatch: pytest's, to stop the demo from serving.
        """
        self.folder, self.tiny_corpus, self.data_root, self.monkeypatch = folder, tiny_corpus, data_root, monkeypatch
        self.ran: list[str] = []

    def training_argv(self, argv: list[str]) -> list[str]:
        out, index = [], 0
        while index < len(argv):
            if argv[index] in ("--dataset", "--data_dir") and index + 1 < len(argv):
                out += ["--data_dir", str(self.tiny_corpus)]
                index += 2
                continue
            out.append(argv[index])
            index += 1
        if "--data_dir" not in out:
            out += ["--data_dir", str(self.tiny_corpus)]
        return out + TINY_TRAINING

    def data_argv(self, argv: list[str]) -> list[str]:
        argv = docs_figures.with_data_root(argv, self.data_root)
        out, index = [], 0
        while index < len(argv):
            if argv[index] == "--dataset" and argv[index + 1] == "ptb":
                out += ["--data_dir", str(self.data_root / "ptb")]
                index += 2
                continue
            out.append(argv[index])
            index += 1
        return out

    def run_vaelm(self, program: str, argv: list[str], tiny: bool) -> str:
        stdin = None
        if program == "vaelm-train":
            argv = self.training_argv(argv)
        else:
            argv = self.data_argv(argv)
        if tiny and program == "vaelm-evaluate":
            argv = [*argv, "--max_sentences", "5", "--iw_samples", "2"]
        if tiny and program == "vaelm-map":
            argv = [*argv, "--max_sentences", "20"]
        if program == "vaelm-demo":
            import gradio

            launched = []
            self.monkeypatch.setattr(gradio.Blocks, "launch", lambda app, **kwargs: launched.append(kwargs))
            if "--export" not in argv:
                argv = [*argv, "--map_sentences", "20"]
        if program in ("vaelm-sample", "vaelm-homotopy") and not argv:
            stdin = "the company said it will buy back shares\ninvestors are worried about the market\n"
        status, out, err = docs_figures.run_program(program, argv, stdin=stdin)
        assert status == 0, f"{program} {shlex.join(argv)}:\n{err[-3000:]}"
        if program == "vaelm-demo" and "--export" not in argv:
            assert launched and "server_name" in launched[0], "the demo command builds its app and launches it"
        return out

    def run_shell(self, line: str, tiny: bool) -> str:
        argv = shlex.split(line, comments=True)
        program, rest = docs_figures.program_of(argv)
        if program:
            return self.run_vaelm(program, rest, tiny)
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        if argv[:3] == ["python", "-m", "pytest"] and tiny:  # the suite itself: the command CI runs, not rerun here
            assert line in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines(), "README's test command"
            return ""
        if argv[:2] == ["pip", "install"] and tiny:  # the extra it names exists
            extra = re.fullmatch(r"\.\[(\w+)\]", argv[-1])
            parser = configparser.ConfigParser()
            parser.read(REPO / "setup.cfg", encoding="utf-8")
            assert extra and extra[1] in parser["options.extras_require"], line
            return ""
        if argv[:2] == ["mkdocs", "serve"] and tiny:  # test_mkdocs_builds_strictly builds the site
            return ""
        if argv[:2] == ["accelerate", "launch"]:
            script = next(i for i, arg in enumerate(argv) if arg.endswith(".py"))
            command = [
                sys.executable,
                "-m",
                "accelerate.commands.launch",
                *argv[2 : script + 1],
                *self.training_argv(argv[script + 1 :]),
            ]
            result = subprocess.run(
                command, cwd=self.folder, env=environment, capture_output=True, text=True, timeout=600, check=False
            )
            assert result.returncode == 0, result.stderr[-3000:]
            return result.stdout
        raise AssertionError(f"no way to run {line!r}: teach tests/test_docs.py, or mark the block")

    def run_block(self, block) -> None:
        started = time.monotonic()
        tiny = block.kind == "tiny"
        if block.language == "python":
            exec(compile(block.text, block.where, "exec"), {"__name__": "__docs__"})
        elif block.language == "bash":
            for line in docs_figures.logical_lines(block.text):
                self.run_shell(line, tiny=True)
        elif block.language == "console":
            for command, _, expected in docs_figures.console_steps(block.text):
                printed = self.run_shell(command, tiny=tiny)
                if not tiny and not reads_a_corpus(command):
                    assert printed.rstrip("\n").split("\n") == expected, (
                        f"{block.where}: `{command}` prints something else now; run python scripts/docs_figures.py"
                    )
        self.ran.append(block.where)
        print(f"{block.where}: {time.monotonic() - started:.1f} s")


def reads_a_corpus(command: str) -> bool:
    """Whether a command reads a corpus (`data/NAME`, `--dataset`, `--map_data`): its output depends on the corpus."""
    argv = shlex.split(command)
    return "--dataset" in argv or any(arg.startswith("data/") for arg in argv)


@pytest.fixture()
def fresh_clone(tmp_path, monkeypatch):
    """A working directory like a fresh clone's: configuration, scripts, benchmarks and docs, no runs/."""
    for name in ("configuration", "scripts", "benchmarks", "tests"):
        (tmp_path / name).symlink_to(REPO / name)
    (tmp_path / "docs").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VAELM_CACHE", str(tmp_path / "cache"))  # nothing is downloaded: the tests substitute
    return tmp_path


@pytest.mark.parametrize(
    "page",
    [
        page
        for page in PAGES
        if any(
            block.language in docs_figures.RUNNABLE and block.kind != "skip" for block in docs_figures.find_blocks(page)
        )
    ],
    ids=relative,
)
def test_page_blocks_run(page, fresh_clone, tiny_model_dir, tiny_data_root, tmp_path_factory, monkeypatch, capsys):
    blocks = [
        block
        for block in docs_figures.find_blocks(page)
        if block.language in docs_figures.RUNNABLE and block.kind != "skip"
    ]
    code = "".join(block.text for block in blocks)
    if "runs/ptb-quick" in code and "vaelm-train configuration/ptb-quick.yaml" not in code:
        shutil.copytree(tiny_model_dir, fresh_clone / "runs" / "ptb-quick")  # "a tiny model trained as runs/ptb-quick"
    tiny_corpus = write_corpus(tmp_path_factory.mktemp("corpus"))
    runner = Runner(fresh_clone, tiny_corpus, tiny_data_root, monkeypatch)
    for block in blocks:
        runner.run_block(block)
    assert runner.ran == [block.where for block in blocks]


CORPUS_PAGES = [
    page
    for page in PAGES
    for block in docs_figures.find_blocks(page)
    if block.language == "console"
    and block.kind == "run"
    and any(reads_a_corpus(command) for command, _, _ in docs_figures.console_steps(block.text))
]


def test_some_quoted_outputs_read_a_corpus():
    """The pages' corpus outputs are checked by the test below; the list of their pages is not empty by accident."""
    assert relative(REPO / "docs" / "demo.md") in [relative(page) for page in CORPUS_PAGES]


@pytest.mark.corpora
@pytest.mark.parametrize("page", CORPUS_PAGES, ids=relative)
def test_quoted_corpus_outputs_are_current(page, tmp_path, monkeypatch):
    """What a console block that reads a real corpus quotes is what it prints on that corpus now."""
    (tmp_path / "docs").mkdir()
    monkeypatch.chdir(tmp_path)  # the commands write their figures under docs/
    new, ran = docs_figures.regenerate(page, shared_corpus())
    assert ran and new == page.read_text(encoding="utf-8"), f"{relative(page)}: run python scripts/docs_figures.py"
