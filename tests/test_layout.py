"""The code layout stays true: import layers (import-linter, string imports included) and no import cycle.

See README, "How the code is laid out", and the `[importlinter]` contracts in setup.cfg.
"""

import ast
import configparser
import importlib.util
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import grimp

import vaelm

ROOT = Path(__file__).resolve().parent.parent
SETUP_CFG = ROOT / "setup.cfg"
LINT_IMPORTS = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))


def lint_imports(*arguments: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache", *arguments], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


def layer_modules() -> list[str]:
    parser = configparser.ConfigParser()
    parser.read(SETUP_CFG, encoding="utf-8")
    layers = parser["importlinter:contract:layers"]["layers"].split("\n")
    return [name.strip() for layer in layers if layer.strip() for name in layer.split("|")]


def package_modules() -> list[str]:
    """Every module of the vaelm package, except the model files bundled as data in vaelm/pretrained/*/."""
    return ["vaelm"] + [info.name for info in pkgutil.walk_packages(vaelm.__path__, prefix="vaelm.")]


def test_import_contracts_are_kept():
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout and "3 kept" in result.stdout


def test_layers_cover_every_module_of_the_package():
    # A contract over names that do not exist would pass vacuously; a new module outside the layers is unchecked.
    named = layer_modules()
    for name in named:
        assert importlib.util.find_spec(name) is not None, f"setup.cfg names {name}, which does not exist"
    for module in package_modules():
        if module == "vaelm":
            continue
        assert any(module == name or module.startswith(name + ".") for name in named), (
            f"{module} is in no layer of the [importlinter:contract:layers] contract in setup.cfg; add it"
        )


def test_a_broken_layer_order_is_reported(tmp_path):
    # The same tool with the model below its configuration must fail: the contract sees the real imports.
    config = tmp_path / "reversed.ini"
    config.write_text(
        "[importlinter]\nroot_package = vaelm\n\n[importlinter:contract:reversed]\nname = reversed\ntype = layers\n"
        "layers =\n    vaelm.configuration_vaelm\n    vaelm.modeling_vaelm\n",
        encoding="utf-8",
    )
    result = lint_imports("--config", str(config))
    assert result.returncode != 0 and "BROKEN" in result.stdout
    assert "vaelm.modeling_vaelm -> vaelm.configuration_vaelm" in result.stdout


def string_imports(source: str, module: str) -> list[str]:
    """
    The vaelm modules that `source` (the text of `module`) imports by name: `importlib.import_module("vaelm.x")` or
    `import_module(".x", __name__)` with a literal string, imports that grimp and import-linter cannot see.
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
            continue
        function = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        name = node.args[0].value
        if function != "import_module" or not isinstance(name, str):
            continue
        if name.startswith("."):
            package = module if module.endswith("__init__") else module.rpartition(".")[0]
            name = importlib.util.resolve_name(name, package.removesuffix(".__init__"))
        if name == "vaelm" or name.startswith("vaelm."):
            found.append(name)
    return found


def import_graph() -> grimp.ImportGraph:
    """The package's import graph: grimp's (TYPE_CHECKING and lazy imports inside functions included), plus the
    string imports of [`string_imports`]."""
    graph = grimp.build_graph("vaelm", exclude_type_checking_imports=False)
    for module in package_modules():
        spec = importlib.util.find_spec(module)
        for imported in string_imports(Path(spec.origin).read_text(encoding="utf-8"), module):
            graph.add_import(importer=module, imported=imported)
    return graph


def test_string_imports_are_found():
    source = 'import importlib\nimportlib.import_module("vaelm.corpora.vocabulary")\nimport_module(".x", __name__)\n'
    assert string_imports(source, "vaelm.tokenization_vaelm") == ["vaelm.corpora.vocabulary", "vaelm.x"]
    assert string_imports('importlib.import_module("umap")', "vaelm.evaluation.latent_map") == []


def test_import_graph_has_no_cycle():
    graph = import_graph()
    visiting, done = [], set()

    def visit(module: str) -> None:
        if module in done:
            return
        assert module not in visiting, f"import cycle: {' -> '.join([*visiting[visiting.index(module) :], module])}"
        visiting.append(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported.startswith("vaelm."):
                visit(imported)
        visiting.pop()
        done.add(module)

    for module in sorted(graph.modules):
        visit(module)
    assert "vaelm.cli.train" in done and "vaelm.configuration_vaelm" in done


def test_string_imports_point_down_the_layers():
    # import-linter sees no string import: check them against the same layers.
    parser = configparser.ConfigParser()
    parser.read(SETUP_CFG, encoding="utf-8")
    layers = [line.split("|") for line in parser["importlinter:contract:layers"]["layers"].split("\n") if line.strip()]
    rank = {name.strip(): index for index, layer in enumerate(layers) for name in layer}

    def layer(module: str) -> int | None:
        owners = [name for name in rank if module == name or module.startswith(name + ".")]
        return rank[max(owners, key=len)] if owners else None

    for module in package_modules():
        spec = importlib.util.find_spec(module)
        for imported in string_imports(Path(spec.origin).read_text(encoding="utf-8"), module):
            if module == "vaelm" or layer(module) is None or layer(imported) is None:
                continue  # the package root names the public objects of every layer
            same_package = module.split(".")[:2] == imported.split(".")[:2]
            assert same_package or layer(imported) > layer(module), f"{module} imports {imported}, a layer above"
