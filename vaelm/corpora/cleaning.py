"""Running text -> the paragraphs of the story: Project Gutenberg books, headings, contents, labels out.

Every word that is dropped is counted under its reason in a [`PreparationReport`] (see
[`vaelm.corpora.report.REASONS`]).

- **Books.** Each `*** START OF … ***` / `*** END OF … ***` pair delimits one book, so a file holding several books
  one after another (what `cat` of Gutenberg files makes) keeps all of them. The licence header before a START
  marker (from "The Project Gutenberg eBook of …", or the metadata lines "Title:", "Author:" …) and the licence
  footer after an END marker (up to "… to hear about new eBooks.", the licence's last sentence) are dropped. Text
  outside any pair that is not licence text is kept: mirrors strip the licence, and a file without markers is
  kept whole.
- **Headings.** Chapter, book, part, volume, stave, letter, section, canto, act and scene headings with Roman or
  Arabic numerals or number words ("CHAPTER III.", "Chapter 3", "BOOK THE FIRST", "Part One.", "STAVE I: …"),
  with or without a title on the same line; bare numerals ("IV", "12."); "Contents", "Preface", "The End" …; a
  short title paragraph right after a heading; and ALL-CAPS lines that are not quoted speech ("“TOM!”" stays).
- **Contents.** Tables of contents: the paragraphs after a "Contents" heading until the story starts, indented
  blocks, and paragraphs whose lines are mostly headings or end in page numbers.
- **Speaker labels** of dramatic text ("HAMLET. To be…", "MRS. HIGGINS [rising]. …"): the label goes, the speech
  stays.
- Short lines (at most ten words) that do not end like a sentence, `[Illustration…]`/`[Footnote…]` blocks, and
  `_italic_` underscores. One-word sentences of the story ("Yes.", "Oh!") are kept.
"""

import re
from collections.abc import Iterable, Iterator

from .report import PreparationReport

GUTENBERG_START = re.compile(r"^\s*\*{3} ?START OF (THE|THIS) PROJECT GUTENBERG", re.IGNORECASE)
GUTENBERG_END = re.compile(r"^\s*\*{3} ?END OF (THE|THIS) PROJECT GUTENBERG", re.IGNORECASE)
# Where a licence header starts, and lines that belong to one (or to the footer).
_HEADER_START = re.compile(r"^\s*(the )?project gutenberg('s)? (e-?book|etext)|^\s*project gutenberg's", re.IGNORECASE)
_LICENCE_LINE = re.compile(
    r"gutenberg|licen[cs]e|^\s*(title|author|release date|language|credits|produced by|character set encoding|posting date|"
    r"most recently updated|last updated|translator|illustrator|editor|e-?text prepared by):|"
    r"updated editions will replace|this e-?book is for the use of anyone|^\s*\*\*\* ?(start|end) of",
    re.IGNORECASE,
)
_LICENCE_LAST = re.compile(r"hear about new e-?books", re.IGNORECASE)  # the licence's last sentence
FOOTER_LOOKAHEAD = 40  # non-blank lines after an END marker in which licence text must begin to be a footer

_BRACKET_BLOCK = re.compile(r"^\[(Illustration|Footnote|Sidenote)", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?…。！？:;”’\"')\]」』]$")
_NUMBER_WORD = (
    r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
    r"sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|"
    r"first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|last|final)"
)
_NUMERAL = rf"(?:(?-i:[IVXLCDM]+)|\d+|(?:the\s+)?{_NUMBER_WORD}(?:[-\s]+(?:and[-\s]+)?{_NUMBER_WORD})*)"
_HEADING_WORD = r"(?:chapter|chap|book|part|volume|vol|stave|letter|section|canto|act|scene|adventure|episode|fit)"
# "CHAPTER III.", "Chapter 3: The Title", "BOOK THE FIRST", "PART ONE--The Old Buccaneer", "Chapter I.]"
_HEADING = re.compile(rf"^{_HEADING_WORD}\.?\s+{_NUMERAL}(?![\w'’])(?P<rest>.*)$", re.IGNORECASE)
# "IV", "12.", "XVI.  NARRATIVE CONTINUED …", "I. A Scandal in Bohemia"
_NUMBERED_TITLE = re.compile(r"^(?:(?-i:[IVXLCDM]+)|\d+)\.?(?:\s+(?P<rest>.*))?$")
_STANDALONE = re.compile(
    r"^(?:(?:the\s+)?(?:table\s+of\s+)?contents|preface|prologue|epilogue|introduction|conclusion|postscript|"
    r"afterword|foreword|appendix|finis|the\s+end|list\s+of\s+illustrations|illustrations|dedication)\W*$",
    re.IGNORECASE,
)
_CONTENTS = re.compile(r"^(?:(?:the\s+)?table\s+of\s+)?contents\W*$", re.IGNORECASE)
_PAGE_NUMBER = re.compile(r"(?:\.\s*){3,}\s*\d*\s*$|\s{2,}\d+\s*$")  # ". . . . 11" or "   17" ending a line
# "HAMLET. To be …", "MRS. HIGGINS. Well …", "FIRST WITCH: …": an upper-case label of one to four words.
_SPEAKER_LABEL = re.compile(
    r"^(?P<label>(?-i:[A-Z][A-Z'’\-]+\.?(?:\s+[A-Z][A-Z'’\-]*\.?){0,3}))[.:]\s+(?=[“\"‘(\[A-Z])"
)
# Titles after which a period never ends a sentence in fiction ("Mr. Holmes"), lower-cased, without the period.
TITLES = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "messrs",
        "m",
        "mme",
        "mlle",
        "dr",
        "st",
        "mt",
        "prof",
        "rev",
        "capt",
        "col",
        "gen",
        "lt",
        "sgt",
        "maj",
        "gov",
        "sen",
        "rep",
        "hon",
        "jr",
        "sr",
        "fr",
    ]
)
_SMALL_WORDS = frozenset(
    ["a", "an", "and", "as", "at", "but", "by", "for", "from", "in", "into", "of", "on", "or", "the", "to", "with"]
)
_CHINESE_HEADING = re.compile(r"^第[一二三四五六七八九十百千零〇两\d]+[回章节卷部篇幕]")
HEADING_WORDS = 25  # a paragraph that opens with a heading and has at most this many words is all heading
TITLE_WORDS = 12  # longest title paragraph after a heading


def _words(text: str) -> int:
    return len(text.split())


def gutenberg_books(lines: Iterable[str], report: PreparationReport | None = None) -> list[list[str]]:
    """
    The books of a file: the lines of each `*** START OF` / `*** END OF` pair, and the text outside the pairs
    that is not licence text (the whole file when it has no marker). Licence lines go to `report` as `licence`.

    Args:
        lines (`Iterable[str]`): the file's lines (a BOM on the first one is ignored).
        report ([`PreparationReport`], *optional*): counts the licence words and the books.

    Returns:
        `list[list[str]]`: the lines of each book (or block of text outside the markers), in file order.
    """
    report = report if report is not None else PreparationReport()
    lines = [line.lstrip("\ufeff").rstrip("\r\n") for line in lines]
    books: list[list[str]] = []
    outside: list[str] = []  # text read outside a pair, not yet known to be a header
    index = 0

    def licence(part: list[str]) -> None:
        text = "\n".join(part)
        if text.strip():
            report.drop("licence", text)

    def keep_outside(part: list[str]) -> None:
        if any(line.strip() for line in part):
            books.append(part)

    while index < len(lines):
        line = lines[index]
        if GUTENBERG_START.match(line):
            cut = _header_start(outside)
            keep_outside(outside[:cut])
            licence([*outside[cut:], line])
            outside = []
            end = next((i for i in range(index + 1, len(lines)) if GUTENBERG_END.match(lines[i])), len(lines))
            body = lines[index + 1 : end]
            # "End of the Project Gutenberg EBook of …" closes some bodies right before the END marker.
            tail = len(body)
            while tail and (
                not body[tail - 1].strip()
                or re.match(r"^\s*end of (the )?project gutenberg", body[tail - 1], re.IGNORECASE)
            ):
                tail -= 1
            licence(body[tail:])
            books.append(body[:tail])
            index = end
            continue
        if GUTENBERG_END.match(line):  # an END without its START: what precedes it is a book
            cut = _header_start(outside)
            keep_outside(outside[:cut])
            licence(outside[cut:])
            outside = []
        if GUTENBERG_END.match(line):
            footer_end = _footer_end(lines, index)
            licence(lines[index:footer_end])
            index = footer_end
            continue
        outside.append(line)
        index += 1
    cut = _header_start(outside) if books else len(outside)  # a file without markers is kept whole
    keep_outside(outside[:cut])
    licence(outside[cut:])
    report.books += len(books)
    return books


def gutenberg_body(lines: Iterable[str]) -> list[str]:
    """The lines of every book of a file (see [`gutenberg_books`]), a blank line after each."""
    return [line for book in gutenberg_books(lines) for line in [*book, ""]]


def _header_start(outside: list[str]) -> int:
    """Where the licence header at the end of `outside` (text before a START marker) begins; `len` if none."""
    starts = [i for i, line in enumerate(outside) if _HEADER_START.match(line)]
    if starts:
        return starts[-1]
    # No "The Project Gutenberg eBook of" line: drop the trailing paragraphs made of licence lines only.
    cut = len(outside)
    for start, end in reversed(_blocks(outside)):
        if all(_LICENCE_LINE.search(line) for line in outside[start:end]):
            cut = start
        else:
            break
    return cut


def _footer_end(lines: list[str], end_marker: int) -> int:
    """The line after the licence footer that follows the END marker at `end_marker` (itself part of it)."""
    seen, licence_begins = 0, False
    for i in range(end_marker + 1, len(lines)):
        if GUTENBERG_START.match(lines[i]) or _HEADER_START.match(lines[i]):
            return i  # the next book's header is dropped with its START marker
        if lines[i].strip():
            seen += 1
            if _LICENCE_LINE.search(lines[i]):
                licence_begins = True
            if seen >= FOOTER_LOOKAHEAD and not licence_begins:
                break
        if licence_begins and _LICENCE_LAST.search(lines[i]):
            j = i + 1
            while (
                j < len(lines)
                and lines[j].strip()
                and not GUTENBERG_START.match(lines[j])
                and not _HEADER_START.match(lines[j])
            ):  # the rest of that paragraph (the next file may follow)
                j += 1
            return j
    if not licence_begins:
        return end_marker + 1  # no licence after the marker: the text that follows is kept
    return len(lines)


def _blocks(lines: list[str]) -> list[tuple[int, int]]:
    """(start, end) of each run of non-blank lines."""
    blocks, start = [], None
    for i, line in enumerate([*lines, ""]):
        if line.strip() and start is None:
            start = i
        elif not line.strip() and start is not None:
            blocks.append((start, i))
            start = None
    return blocks


def is_heading(line: str) -> bool:
    """
    Whether one line is a heading: "CHAPTER III.", "Chapter 3: A Title", "Part One.", "BOOK THE FIRST", "IV",
    "XII. THE TITLE", "Contents", "The End" … ("Chapter two was found." is a sentence, not a heading).

    Args:
        line (`str`): the line, stripped or not.
    """
    line = " ".join(line.replace("_", " ").split())
    if not line:
        return False
    if _STANDALONE.match(line):
        return True
    match = _HEADING.match(line)
    if match:
        rest = match.group("rest").strip()
        rest = rest.lstrip(".:;,—–-]) ").strip()
        # A title after the number starts with a capital, a quote or a digit; "Chapter two was found" goes on.
        return not rest or (not rest[0].islower() and _words(line) <= HEADING_WORDS)
    match = _NUMBERED_TITLE.match(line)
    if match:
        rest = (match.group("rest") or "").strip()
        if not rest:
            return True
        if rest[0].islower() or line.startswith(("I ", "I\t")):  # "I said: …" is the pronoun
            return False
        return _is_title(rest) or _PAGE_NUMBER.search(rest) is not None
    return False


def _is_title(text: str, longest: int = TITLE_WORDS) -> bool:
    """Title case or upper case, short, and not quoted speech: "The Old Sea-dog at the Admiral Benbow"."""
    text = _PAGE_NUMBER.sub("", text).strip()
    words = [word.strip("“”\"‘’'()[].,:;!?—–-") for word in re.split(r"[\s—–]+|--", text)]
    words = [word for word in words if word]
    if not words or len(words) > longest or text[:1] in '“"‘(':
        return False
    if not any(char.islower() for char in text):
        return True
    capitalised = [word[0].isupper() or word[0].isdigit() for word in words if word.lower() not in _SMALL_WORDS]
    return len(words) >= 2 and bool(capitalised) and sum(capitalised) / len(capitalised) >= 0.75


def _is_contents_entry(lines: list[str]) -> bool:
    """Lines of a table of contents: mostly headings, numbered titles or entries ending in page numbers."""
    entries = sum(is_heading(line) or _PAGE_NUMBER.search(line) is not None for line in lines)
    return entries >= 2 and entries >= 0.6 * len(lines)


def clean_paragraphs(
    raw_lines: Iterable[str], lang: str = "en", report: PreparationReport | None = None
) -> Iterator[str]:
    """
    The paragraphs of the story in a raw file, each on one line (see the module docstring for what is dropped).

    Args:
        raw_lines (`Iterable[str]`): the file's lines.
        lang (`str`, *optional*, defaults to `"en"`): `"zh"` joins lines without spaces and drops only bracket
            blocks, indented blocks and 第…回/章 headings.
        report ([`PreparationReport`], *optional*): receives the words read and dropped.
    """
    report = report if report is not None else PreparationReport()
    raw_lines = list(raw_lines)
    report.words_in += sum(_words(line.lstrip("\ufeff")) for line in raw_lines)
    for book in gutenberg_books(raw_lines, report):
        yield from _book_paragraphs(book, lang, report)


def _book_paragraphs(lines: list[str], lang: str, report: PreparationReport) -> Iterator[str]:
    joiner = "" if lang == "zh" else " "
    after_heading, in_contents, open_bracket = False, False, 0
    for start, end in _blocks(lines):
        block = [line.rstrip() for line in lines[start:end]]
        text = "\n".join(block)
        if open_bracket or _BRACKET_BLOCK.match(block[0].lstrip()):
            # An [Illustration: … ] block may run over blank lines: it ends where its bracket closes.
            open_bracket = max(0, open_bracket + text.count("[") - text.count("]"))
            open_bracket = open_bracket if open_bracket and end - start < 40 else 0
            report.drop("illustrations", text)
            continue
        if len(block) > 1 and all(line[:1].isspace() for line in block):
            report.drop("contents" if in_contents or _is_contents_entry(block) else "indented", text)
            continue
        stripped = [" ".join(line.split()) for line in block]
        if lang == "zh":
            if _CHINESE_HEADING.match(stripped[0]) and len(stripped[0]) <= 40:
                report.drop("headings", stripped[0])
                stripped = stripped[1:]
                if not stripped:
                    continue
            yield joiner.join(stripped)
            report.paragraphs += 1
            continue
        if is_heading(stripped[0]):
            if _CONTENTS.match(stripped[0]):
                in_contents = True
            title = " ".join(stripped)
            if (
                len(stripped) == 1
                or _words(text) <= HEADING_WORDS
                or _is_contents_entry(stripped)
                or _is_title(title[len(stripped[0]) // 2 :], longest=80)
            ):  # a long title over several lines
                report.drop("contents" if in_contents and not _CONTENTS.match(stripped[0]) else "headings", text)
                after_heading = True
                continue
            report.drop("headings", stripped[0])  # a heading glued to the first paragraph
            stripped = stripped[1:]
        if len(stripped) > 1 and _is_contents_entry(stripped):
            report.drop("contents", text)
            continue
        paragraph = " ".join(stripped)
        without_markup = " ".join(paragraph.replace("_", "").split()) if "_" in paragraph else paragraph
        if "_" in paragraph:
            lost = _words(paragraph) - _words(without_markup)
            if lost:
                report.drop("markup", "_" * lost, words=lost)
            paragraph = without_markup
        if in_contents:
            if (
                _is_title(paragraph)
                or _PAGE_NUMBER.search(paragraph)
                or (_words(paragraph) <= 4 and not _SENTENCE_END.search(paragraph))
            ):
                report.drop("contents", paragraph)
                continue
            in_contents = False
        if not any(char.islower() for char in paragraph) and paragraph[:1] not in "“\"‘'(":
            report.drop("headings", paragraph)  # ALL-CAPS headings and titles ("THE OLD SEA-DOG")
            after_heading = True
            continue
        if after_heading and _is_title(paragraph):
            report.drop("headings", paragraph)
            continue
        after_heading = False
        if _words(paragraph) <= 10 and not _SENTENCE_END.search(paragraph):
            report.drop("fragments", paragraph)
            continue
        label = _SPEAKER_LABEL.match(paragraph)
        if label and not _is_title_abbreviation(label.group("label")) and len(label.group("label")) > 1:
            report.drop("speaker_labels", label.group(0))
            paragraph = paragraph[label.end() :]
        report.paragraphs += 1
        yield paragraph


def _is_title_abbreviation(label: str) -> bool:
    """`MR` in "MR. HOLMES said": a title, not a speaker; "I" (the pronoun) or a numeral neither."""
    words = label.split()
    first = words[0].rstrip(".").lower()
    return len(words) == 1 and (first in TITLES or re.fullmatch(r"[ivxlcdm]+", first) is not None)


__all__ = ["GUTENBERG_END", "GUTENBERG_START", "clean_paragraphs", "gutenberg_body", "gutenberg_books", "is_heading"]
