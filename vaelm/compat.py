"""Old import paths, listed in one place: each module that moved into a subpackage stays importable under its old
name (the same module object, so `monkeypatch` and `isinstance` see one module), and the lazy re-exports that let a
package name its public objects without importing them.

New code imports from the new homes; these names are kept for users' scripts and notebooks.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import types
from collections.abc import Callable

# old module path -> its home since architecture v2 (issue 25)
MOVED_MODULES = {
    "vaelm.allocator": "vaelm.runtime.allocator",
    "vaelm.checkpoints": "vaelm.pretrained.checkpoints",
    "vaelm.data": "vaelm.corpora.data",
    "vaelm.evaluation_progress": "vaelm.evaluation.progress",
    "vaelm.interruption": "vaelm.training.interruption",
    "vaelm.jobs.demo": "vaelm.apps.demo",
    "vaelm.jobs.evaluate": "vaelm.evaluation.job",
    "vaelm.jobs.map": "vaelm.apps.map",
    "vaelm.jobs.push": "vaelm.hub.job",
    "vaelm.jobs.train": "vaelm.training.job",
    "vaelm.kl_schedules": "vaelm.training.kl_schedules",
    "vaelm.latent_map": "vaelm.evaluation.latent_map",
    "vaelm.loading": "vaelm.pretrained.loading",
    "vaelm.precision": "vaelm.runtime.precision",
    "vaelm.sentences": "vaelm.corpora.sentences",
    "vaelm.streaming": "vaelm.corpora.streaming",
    "vaelm.threads": "vaelm.runtime.threads",
    "vaelm.trainer": "vaelm.training.trainer",
    "vaelm.weight_averaging": "vaelm.training.weight_averaging",
    "vaelm.word_ids": "vaelm.corpora.word_ids",
}
# old packages that only held moved modules
EMPTY_OLD_PACKAGES = ("vaelm.jobs",)


class _AliasLoader(importlib.abc.Loader):
    def create_module(self, spec):
        if spec.name in EMPTY_OLD_PACKAGES:
            package = types.ModuleType(spec.name, f"Old package: its modules moved (see {__name__}).")
            package.__path__ = []
            return package
        return importlib.import_module(MOVED_MODULES[spec.name])

    def exec_module(self, module):
        pass


class _OldPaths(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name in MOVED_MODULES or name in EMPTY_OLD_PACKAGES:
            return importlib.util.spec_from_loader(name, _AliasLoader(), is_package=name in EMPTY_OLD_PACKAGES)
        return None


def install() -> None:
    """Make the old paths importable (idempotent)."""
    if not any(isinstance(finder, _OldPaths) for finder in sys.meta_path):
        sys.meta_path.append(_OldPaths())


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """
    `__getattr__` and `__dir__` for a package that names its public objects without importing them (PEP 562).

    Args:
        package (`str`): the package's `__name__`.
        exports (`dict[str, str]`): public name -> the submodule (relative to `package`) that defines it.
    """

    def __getattr__(name: str) -> object:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name], package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__
