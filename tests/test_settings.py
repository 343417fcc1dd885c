"""One source for each setting: the command-line flags are derived from the library's settings and agree with them.

- every command-line default equals its library default (each command's parser, walked flag by flag), and
  vaelm-prepare's data flags equal vaelm-train's;
- vaelm-train's model flags are `VAELMConfig`'s fields, with its defaults (the original script's names are aliases);
- the docstrings state the defaults the fields have;
- the Python API, the commands, both pipelines and the demo decode with the same defaults (no `<unk>`).
"""

import ast
import dataclasses
import importlib
import inspect
import re
from pathlib import Path

import pytest

import vaelm
from vaelm import pipeline_vaelm
from vaelm.configuration_vaelm import CELL_TYPES, SEGMENTATIONS, VAELMConfig
from vaelm.generation import decoding
from vaelm.hub.reproduce import MODEL_FLAGS

# VAELMConfig fields that vaelm-train's model flags set, in --help order.
COMMANDS = ["train", "prepare", "evaluate", "sample", "homotopy", "map", "demo", "push"]


def parser_actions(command: str) -> dict:
    """Each flag's destination and argparse action in `vaelm-<command>`'s parser (a boolean's `--X`, not `--no_X`:
    argparse takes a destination's default from its first action)."""
    parser = importlib.import_module(f"vaelm.cli.{command}").make_parser()
    actions = {}
    for action in parser._actions:
        if action.dest != "help":
            actions.setdefault(action.dest, action)
    return actions


def parser_defaults(command: str) -> dict:
    """Each flag's destination and default in `vaelm-<command>`'s parser."""
    return {dest: action.default for dest, action in parser_actions(command).items()}


def signature_defaults(function, renamed: dict | None = None, only: set | None = None, skip: tuple = ()) -> dict:
    """
    The defaults of `function`'s parameters, under their flag names (`renamed`: parameter -> flag), for the
    parameters in `only` (all when omitted) except those in `skip` (same name, another meaning: `model=None` is the
    bundled model, which the flag names itself).
    """
    renamed = renamed or {}
    return {
        renamed.get(name, name): parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.default is not inspect.Parameter.empty and (only is None or name in only) and name not in skip
    }


def dataclass_defaults(cls) -> dict:
    return {spec.name: spec.default for spec in dataclasses.fields(cls) if spec.default is not dataclasses.MISSING}


def library_defaults(command: str) -> dict:
    """What the library itself does by default, for the flags of `command` that have a library counterpart."""
    from vaelm.apps.demo import build_demo
    from vaelm.apps.map import draw_map
    from vaelm.corpora.preparation import prepare_corpus
    from vaelm.evaluation.metrics import evaluate_sequences
    from vaelm.generation.sentence_vae import SentenceVAE
    from vaelm.hub.push import push_model_folder

    config = dataclass_defaults(VAELMConfig)
    if command == "train":
        model = {name: config[name] for name in MODEL_FLAGS}
        data = {
            "max_length": config["max_sentence_length"],
            "vocab_size": config["vocab_size"],
            "lang": config["lang"],
            "sentence_split": config["sentence_split"],
        }
        return {**model, **data}
    if command == "prepare":
        return signature_defaults(prepare_corpus)
    decoding_defaults = dataclass_defaults(decoding.DecodingConfig)
    if command == "evaluate":
        return signature_defaults(evaluate_sequences)
    if command == "sample":
        # impute's num and mean are the Python call's (the command decides them from --num and --mean).
        return {
            **decoding_defaults,
            **signature_defaults(SentenceVAE.impute, {"steps": "impute_steps"}, only={"steps"}),
        }
    if command == "homotopy":
        return {**decoding_defaults, **signature_defaults(SentenceVAE.homotopy)}
    if command == "map":
        return signature_defaults(draw_map)
    if command == "demo":
        return signature_defaults(build_demo, skip=("model",))
    return signature_defaults(push_model_folder, {"datasets": "dataset"})


# Flags whose counterpart must be found (a test that matched nothing would pass vacuously).
EXPECTED_MATCHES = {
    "train": {
        "embedding_size",
        "hidden_size",
        "latent_size",
        "word_dropout",
        "bow_loss_weight",
        "cell_type",
        "max_length",
        "vocab_size",
        "lang",
    },
    "prepare": {"text_column", "sentence_split", "lang", "segmentation", "lowercase", "max_length", "seed"},
    "evaluate": {"iw_samples", "batch_size", "chunk_size", "seed"},
    "sample": {"strategy", "suppress_unk", "num_beams", "max_new_tokens", "impute_steps"},
    "homotopy": {"strategy", "suppress_unk", "steps", "mode"},
    "map": {"split", "max_sentences", "projection", "text_column"},
    "demo": {"map_split", "map_sentences", "projection"},
    "push": {"private", "keep_card", "license", "revision"},
}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_line_default_equals_its_library_default(command):
    flags, library = parser_defaults(command), library_defaults(command)
    shared = set(flags) & set(library)
    assert EXPECTED_MATCHES[command] <= shared, (
        f"vaelm-{command}: no library counterpart for {EXPECTED_MATCHES[command] - shared}"
    )
    # An empty list flag (nargs "+") and a library's None both mean "none".
    differing = {
        name: (flags[name], library[name])
        for name in shared
        if flags[name] != library[name] and not (flags[name] == [] and library[name] is None)
    }
    assert not differing, f"vaelm-{command}: flag default != library default: {differing}"


def test_prepare_flags_are_vaelm_trains_data_flags():
    # vaelm-prepare's --help reads no torch, so it cannot import vaelm-train's settings: its copies are held equal
    # here. --max_length is the one exception: prepare keeps every sentence unless told, train drops long ones.
    prepare, train = parser_actions("prepare"), parser_actions("train")
    shared = (set(prepare) & set(train)) - {"max_length", "num_threads"}
    assert {
        "data_dir",
        "dataset",
        "text_column",
        "sentence_split",
        "lang",
        "segmentation",
        "lowercase",
        "seed",
    } <= shared
    for name in shared:
        assert (prepare[name].default, prepare[name].choices) == (train[name].default, train[name].choices), name


def test_model_arguments_are_the_config_fields_with_their_defaults():
    from vaelm.training.settings import ModelArguments

    config = dataclass_defaults(VAELMConfig)
    fields = {spec.name: spec for spec in dataclasses.fields(ModelArguments)}
    # The reproduce command writes every model flag, in --help order.
    assert tuple(name for name in fields if name in config) == MODEL_FLAGS
    assert {name: fields[name].default for name in MODEL_FLAGS} == {name: config[name] for name in MODEL_FLAGS}
    for name in MODEL_FLAGS:
        assert fields[name].type == VAELMConfig.__dataclass_fields__[name].type, name
    assert ModelArguments().config_values() == {name: config[name] for name in MODEL_FLAGS}


def train_config(*flags: str) -> VAELMConfig:
    from vaelm.cli.train import parse_arguments

    return parse_arguments([*flags, "--output_dir", "unused"])[0].config


def test_the_original_flags_are_aliases_of_the_fields():
    assert train_config("--latent_size", "8").to_dict() == train_config("--latent_dim", "8").to_dict()
    assert train_config("--hidden_size", "12").to_dict() == train_config("--num_units", "12").to_dict()
    assert train_config("--keep_prob", "0.75").word_dropout == pytest.approx(0.25)
    config = train_config(
        *("--embedding_size", "8", "--num_units", "12", "--latent_dim", "0", "--keep_prob", "0.6"),
        *("--cell_type", "gru"),
    )
    assert (config.embedding_size, config.hidden_size, config.latent_size, config.cell_type) == (8, 12, 0, "gru")
    assert config.word_dropout == pytest.approx(0.4) and not config.has_latent
    assert train_config("--keep_prob", "0.6", "--word_dropout", "0.4").word_dropout == pytest.approx(0.4)
    with pytest.raises(ValueError, match="disagree"):
        train_config("--keep_prob", "0.6", "--word_dropout", "0.1")


def test_the_seed_command_and_a_recipe_with_the_original_names_still_train_the_same_model(tmp_path):
    from vaelm.cli.train import parse_arguments

    seed = "--embedding_size 350 --num_units 200 --learning_rate 2e-4 --latent_dim 13 --batch_size 64 "
    seed += "--max_steps 100000 --annealing_pivot 60000 --keep_prob 0.75 --output_dir unused"
    model_args, _, training_args = parse_arguments(seed.split())
    assert model_args.config.to_dict() == VAELMConfig().to_dict()
    assert (training_args.max_steps, training_args.annealing_pivot) == (100000, 60000)
    recipe = tmp_path / "original.yaml"
    recipe.write_text("latent_dim: 8\nnum_units: 64\nkeep_prob: 0.5\noutput_dir: unused\n", encoding="utf-8")
    config = parse_arguments([str(recipe)])[0].config
    assert (config.latent_size, config.hidden_size, config.word_dropout) == (8, 64, 0.5)


def test_train_help_lists_each_field_once():
    from vaelm.cli.train import make_parser

    text = make_parser().format_help()
    for name in MODEL_FLAGS:
        assert len(re.findall(rf"^  --{name}\b", text, re.MULTILINE)) == 1, name
    assert "--latent_dim" in text and "--num_units" in text and "--keep_prob" in text
    assert "--no_no_" not in text


def test_model_flags_take_their_choices_from_the_config():
    actions = parser_actions("train")
    assert tuple(actions["cell_type"].choices) == CELL_TYPES
    assert tuple(actions["segmentation"].choices) == SEGMENTATIONS
    with pytest.raises(ValueError, match="cell_type must be 'lstm' or 'gru'"):
        VAELMConfig(cell_type="rnn")
    with pytest.raises(ValueError, match="--latent_size -1 is impossible"):
        train_config("--latent_dim", "-1")


@pytest.mark.parametrize(("cls", "least"), [(VAELMConfig, 20), (decoding.DecodingConfig, 6)])
def test_docstrings_state_the_field_defaults(cls, least):
    stated = dict(re.findall(r"^\s+(\w+) \(`[^`]+`, \*optional\*, defaults to ([^)]+?)\):", cls.__doc__, re.MULTILINE))
    defaults = dataclass_defaults(cls)
    assert len(stated) >= least
    for name, text in stated.items():
        assert ast.literal_eval(text.strip("`")) == defaults[name], f"{cls.__name__}.{name}: docstring says {text}"


def test_has_latent_is_the_one_test_of_a_plain_language_model():
    assert VAELMConfig().has_latent and not VAELMConfig(latent_size=0).has_latent
    package = Path(vaelm.__path__[0])
    # Every file but the rule's home (configuration_vaelm.py) and the bundled model's copy of it.
    sources = {
        path: path.read_text(encoding="utf-8")
        for path in package.rglob("*.py")
        if "ptb" not in path.parts and path.name != "configuration_vaelm.py"
    }
    for pattern in (r"latent_size\)? == 0", r"not [\w.]*latent_size\b", r"latent_size\)? > 0"):
        found = [str(path.relative_to(package)) for path, text in sources.items() if re.search(pattern, text)]
        assert not found, f"{pattern!r} in {found}: use VAELMConfig.has_latent"


def test_the_travelling_pipeline_has_the_library_defaults():
    from vaelm.training.job import default_generation_config

    assert pipeline_vaelm.UNSPACED_SEGMENTATIONS == decoding.UNSPACED_SEGMENTATIONS
    assert pipeline_vaelm.HOMOTOPY_STEPS == decoding.HOMOTOPY_STEPS
    assert (
        inspect.signature(pipeline_vaelm.SentenceVAEPipeline.preprocess).parameters["steps"].default
        == decoding.HOMOTOPY_STEPS
    )
    assert decoding.INTERPOLATIONS[0] == "linear"  # the pipeline's default, slerp=False
    # Both pipelines decode with the model's generation_config: greedy, whole sentences, <unk> as DecodingConfig says.
    config = VAELMConfig()
    generation = default_generation_config(config)
    library = decoding.DecodingConfig().generate_kwargs(config.unk_token_id)
    assert generation.suppress_tokens == library["suppress_tokens"] == [config.unk_token_id]
    assert (library["do_sample"], library["num_beams"]) == (False, 1)  # greedy, which is also transformers' default:
    assert generation.do_sample in (None, False) and generation.num_beams in (None, 1)
    assert generation.max_new_tokens == config.max_sentence_length + 1


def test_the_demo_decodes_with_the_library_defaults():
    from vaelm.apps.demo import DemoBackend

    assert DemoBackend.decoding() == decoding.DecodingConfig()
    page = inspect.signature(DemoBackend.interpolate).parameters
    assert (page["steps"].default, page["mode"].default) == (decoding.HOMOTOPY_STEPS, decoding.INTERPOLATIONS[0])


def test_python_api_samples_of_the_bundled_model_suppress_unk():
    from transformers import set_seed

    from vaelm.generation.sentence_vae import SentenceVAE

    vae = SentenceVAE.from_pretrained(vaelm.DEFAULT_MODEL, device="cpu")
    set_seed(0)
    texts = [result["text"] for result in vae.sample_prior(5)]
    assert len(texts) == 5 and all(text.split() for text in texts)
    assert not any("<unk>" in text.split() for text in texts), texts
    path = vae.homotopy("the company said it will buy shares", "investors are worried about the market", steps=3)
    assert not any("<unk>" in point["text"].split() for point in path)
    # The raw model does emit <unk> (so the test above can fail): it is the default that suppresses it.
    set_seed(0)
    raw = [result["text"] for result in vae.sample_prior(20, decoding.DecodingConfig(suppress_unk=False))]
    assert any("<unk>" in text.split() for text in raw)


def test_the_cards_reproduce_command_rebuilds_the_model_flags_from_the_same_table(tmp_path):
    from vaelm.cli.train import parse_arguments
    from vaelm.hub.reproduce import model_flags, training_command

    config = VAELMConfig(
        embedding_size=64,
        hidden_size=96,
        latent_size=8,
        num_layers=2,
        cell_type="gru",
        bidirectional_encoder=True,
        word_dropout=0.4,
        weight_drop=0.1,
        tie_word_embeddings=True,
    ).to_dict()
    flags = model_flags(config)
    assert list(flags) == [
        "embedding_size",
        "hidden_size",
        "latent_size",
        "num_layers",
        "cell_type",
        "bidirectional_encoder",
        "word_dropout",
        "weight_drop",
        "tie_word_embeddings",
    ]
    assert "output_dropout" not in flags and "locked_dropout" not in flags  # defaults are left out
    record = {"datasets": ["ptb-text-only/ptb_text_only"], "training_arguments": {"learning_rate": 0.001, "seed": 1}}
    command = training_command(config, record)
    assert command.startswith(
        "vaelm-train --dataset ptb --embedding_size 64 --hidden_size 96 --latent_size 8 --num_layers 2 "
        "--cell_type gru --bidirectional_encoder true --word_dropout 0.4 --weight_drop 0.1 "
        "--tie_word_embeddings true "
    )
    # What the command says, vaelm-train parses back into the same model.
    argv = [*command.split()[1:], "--output_dir", str(tmp_path)]
    model_args, _, _ = parse_arguments(argv)
    rebuilt = model_args.config_values()
    assert rebuilt == {name: config[name] for name in rebuilt}
