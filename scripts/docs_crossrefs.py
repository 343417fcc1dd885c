"""The API reference in transformers' docstring syntax, rendered as links and code: a griffe extension for mkdocstrings,
and a mkdocs hook that keeps the build's output quiet.

vaelm's docstrings are written as transformers' are: a cross-reference is "[`VAELMModel.forward`]" (or
"[`~vaelm.generation.SentenceVAE`]", shown as its last name), and an argument's type is written in backticks,
"logits (`torch.FloatTensor` of shape `(batch, length, vocab)`)". mkdocstrings reads neither: the first would show its
brackets, the second its backticks inside the type column. [`TransformersSyntax`] rewrites each docstring of the
package once it is loaded:

- a reference that names an object of the package becomes an optional autoref (a link to where the object is
  rendered; plain code where it is not rendered), one that names nothing of the package (transformers' classes)
  becomes code;
- the types of `Args:`, `Attributes:`, `Returns:`, `Raises:` and `Yields:` entries lose their backticks, brackets and
  emphasis, so that mkdocstrings shows them as code, and links the ones that are plain names.

`mkdocs.yml` loads the extension (`extensions:` of the python handler) and this file as a hook: material's search
plugin segments the Chinese text of the pages with jieba, whose log lines ("Building prefix dict …") the hook turns off.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import griffe

# [`X`], [`~a.b.X`], not followed by "(" or "[" (a Markdown link or a reference whose target is already given).
REFERENCE = re.compile(r"\[`(?P<tilde>~?)(?P<name>[\w.]+)(?P<call>\(\))?`\](?![(\[])")
# `name (type): description` at the start of an entry of a section that lists typed items.
TYPED_ENTRY = re.compile(r"^(?P<indent>\s+)(?P<name>\*{0,2}\w+) \((?P<type>.*?)\):(?P<rest>\s|$)")
# `type: description` entries of Returns/Raises/Yields.
TYPE_FIRST_ENTRY = re.compile(r"^(?P<indent>\s+)(?P<type>[^\s:][^:]*?):(?P<rest>\s|$)")
SECTION = re.compile(r"^(?P<indent>\s*)(?P<title>[A-Z][\w ]*):\s*$")
NAMED_SECTIONS = {
    "Args",
    "Arguments",
    "Parameters",
    "Attributes",
    "Keyword Args",
    "Keyword Arguments",
    "Other Parameters",
}
TYPED_SECTIONS = {"Returns", "Raises", "Yields", "Warns"}


def plain_type(text: str) -> str:
    """A type written in transformers' syntax as plain text: `(`int`, *optional*)` → `int, optional`.

    Args:
        text (`str`): the type as written between the parentheses of an entry.
    """
    text = REFERENCE.sub(lambda match: match["name"].split(".")[-1] if match["tilde"] else match["name"], text)
    text = text.replace("`", "")
    return re.sub(r"\*{1,2}([^*]+)\*{1,2}", r"\1", text).strip()


class Index:
    """The objects of a package by full path, and by every dotted suffix of it (`VAELMModel.forward`)."""

    def __init__(self, package: griffe.Module) -> None:
        self.paths: set[str] = set()
        self.suffixes: dict[str, list[str]] = {}
        self._add(package)

    def _add(self, obj: griffe.Object | griffe.Alias) -> None:
        if obj.is_alias:
            return  # re-exports: the object is indexed where it is defined
        self.paths.add(obj.path)
        parts = obj.path.split(".")
        for start in range(1, len(parts)):
            self.suffixes.setdefault(".".join(parts[start:]), []).append(obj.path)
        for member in obj.members.values():
            self._add(member)

    def resolve(self, name: str, scope: griffe.Object) -> str | None:
        """
        The full path that `name` means in the docstring of `scope`: itself if it is one, else a member of `scope` or
        of its parents, else the one object of the package whose path ends with it (or, for a stale module path,
        with its last two names).

        Args:
            name (`str`): the name as written (`VAELMModel.forward`, `vaelm.x.Y`).
            scope (`griffe.Object`): the object whose docstring names it.
        """
        if name in self.paths:
            return name
        owner: Any = scope
        while owner is not None:
            if f"{owner.path}.{name}" in self.paths:
                return f"{owner.path}.{name}"
            owner = owner.parent
        for key in (name, ".".join(name.split(".")[-2:]), name.split(".")[-1]):
            found = self.suffixes.get(key, [])
            if len(found) == 1:
                return found[0]
            if found and key == name:  # several: the one nearest to the docstring's module
                module = scope.module.path if hasattr(scope, "module") else ""
                return min(found, key=lambda path: (not path.startswith(module), len(path)))
        return None


def rewrite(text: str, scope: griffe.Object, index: Index) -> str:
    """
    A docstring in transformers' syntax, rewritten for mkdocstrings (see the module's docstring).

    Args:
        text (`str`): the docstring.
        scope (`griffe.Object`): the object it documents (references are resolved from it).
        index ([`Index`]): the package's objects.
    """
    lines, section = [], None
    for line in text.split("\n"):
        heading = SECTION.match(line)
        if heading:
            section = heading["title"]
        elif section in NAMED_SECTIONS and (entry := TYPED_ENTRY.match(line)):
            line = f"{entry['indent']}{entry['name']} ({plain_type(entry['type'])}):{line[entry.end() - len(entry['rest']) :]}"
        elif section in TYPED_SECTIONS and (entry := TYPE_FIRST_ENTRY.match(line)) and "`" in entry["type"]:
            line = f"{entry['indent']}{plain_type(entry['type'])}:{line[entry.end() - len(entry['rest']) :]}"
        elif line.strip() == "" or not line.startswith((" ", "\t")):
            section = None if line.strip() and not heading else section
        lines.append(line)

    def reference(match: re.Match) -> str:
        name = match["name"]
        shown = (name.split(".")[-1] if match["tilde"] else name) + (match["call"] or "")
        target = index.resolve(name, scope)
        if target is None:
            return f"`{shown}`"
        return f'<autoref identifier="{target}" optional><code>{shown}</code></autoref>'

    return REFERENCE.sub(reference, "\n".join(lines))


class TransformersSyntax(griffe.Extension):
    """Rewrites the docstrings of each loaded package (see the module's docstring)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        index = Index(pkg)
        self._rewrite_all(pkg, index)

    def _rewrite_all(self, obj: griffe.Object, index: Index) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj.docstring.value, obj, index)
        for member in obj.members.values():
            if not member.is_alias:
                self._rewrite_all(member, index)


# ------------------------------------------------------------------------------------------------ the mkdocs hook
def on_config(config: Any, **kwargs: Any) -> Any:
    """mkdocs hook: jieba (material's search plugin segments Chinese text with it) logs nothing below warnings."""
    logging.getLogger("jieba").setLevel(logging.WARNING)
    return config
