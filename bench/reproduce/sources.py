"""The documents a study quotes, and the check that a quotation is verbatim.

Every claim a study tests is the source's own sentence(s), quoted with the document and the
section it comes from, and so is every setting a study marks "stated".  The documents are the
project's source texts, kept in the shared folder beside the repository (``../shared``):

* ``pix2pix-v3``: Isola, Zhu, Zhou, Efros, *Image-to-Image Translation with Conditional
  Adversarial Networks*, arXiv 1611.07004 v3, in verbatim excerpts;
* ``report-000`` ... ``report-004``: the five source reports the studies reproduce.

A quotation matches its document when each of its fragments (the text between "[…]" marks,
which stand for omitted words) occurs in the document, in order, after both are normalised the
same way: runs of whitespace become one space, curly quotes and apostrophes straight ones,
en and em dashes a hyphen, the ellipsis character three dots, and the transcriptions' markup
(Markdown emphasis ``*``, TeX ``$``, block-quote ``>`` at a line's start) is dropped.  Words,
their order, hedges and punctuation are compared exactly.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

OMISSION = re.compile(r"\s*\[(?:…|\.\.\.)\]\s*")


@dataclass(frozen=True)
class Document:
    """A source text: how a study cites it and where its text is, relative to the shared folder."""

    citation: str
    path: str


DOCUMENTS: dict[str, Document] = {
    "pix2pix-v3": Document("pix2pix (Isola et al., arXiv 1611.07004 v3)", "reference/pix2pix-v3-excerpts.md"),
    "report-000": Document("source report 000 (pix2pix on COCO 2017 at 128x128)", "seeds/000_cbfaad32257bc09e.txt"),
    "report-001": Document("source report 001 (U-Net ab regression on driving scenes)",
                           "seeds/001_a77a6bfddb771962.txt"),
    "report-002": Document("source report 002 (pix2pix final project report, Columbia University)",
                           "seeds/002_ca392bc07436f1d4.txt"),
    "report-003": Document("source report 003 (pix2pix with a ResNet-18 U-Net, COCO and Images of Groups)",
                           "seeds/003_077c345845279b5f.txt"),
    "report-004": Document("source report 004 (pix2pix on 4,000 COCO photos)", "seeds/004_b6e776712b571f5f.txt"),
}

_REPLACEMENTS = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-",
                               "\u2014": "-", "\u00a0": " "})


def normalise(text: str) -> str:
    """``text`` as quotations are compared (see the module docstring)."""
    text = re.sub(r"(?m)^\s*>\s?", "", text)
    text = text.translate(_REPLACEMENTS).replace("\u2026", "...")
    text = text.replace("**", "").replace("*", "").replace("$", "")
    return " ".join(text.split())


def fragments(quote: str) -> list[str]:
    """The parts of a quotation between its omission marks, normalised."""
    return [normalise(part) for part in OMISSION.split(quote) if normalise(part)]


def missing_fragment(quote: str, text: str) -> str | None:
    """The first fragment of ``quote`` that is not in ``text`` after the previous one (None: verbatim)."""
    haystack, start = normalise(text), 0
    for fragment in fragments(quote):
        found = haystack.find(fragment, start)
        if found < 0:
            return fragment
        start = found + len(fragment)
    return None


def document_text(document: str, shared: Path) -> str:
    """The text of ``document`` (a key of :data:`DOCUMENTS`) under the shared folder ``shared``."""
    return (shared / DOCUMENTS[document].path).read_text(encoding="utf-8")
