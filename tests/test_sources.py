"""Every claim a study tests, and every setting it calls stated, is quoted verbatim from its source.

The documents are the project's source texts in the shared folder beside the repository
(``../shared``); without it these checks skip with the reason shown.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from bench.report.published import load_published
from bench.reproduce.command import study_files
from bench.reproduce.sources import DOCUMENTS, document_text, fragments, missing_fragment, normalise
from bench.reproduce.study import parse_study
from bench.sweep.ablation import load_ablation

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
needs_shared = pytest.mark.skipif(not (SHARED / "seeds").is_dir() or not (SHARED / "reference").is_dir(),
                                  reason=f"the source texts are not here ({SHARED}/seeds, {SHARED}/reference)")


def test_normalising_keeps_words_and_drops_only_typography():
    assert normalise("“L1  loss”\n— it’s *$L2$*") == "\"L1 loss\" - it's L2"
    assert normalise("> A quoted\n> line.") == "A quoted line."
    assert fragments("We use [...] the Adam solver […] with β1 = 0.5.") == ["We use", "the Adam solver",
                                                                            "with β1 = 0.5."]


@pytest.mark.parametrize("quote, verbatim", [
    ("L1 alone leads to reasonable but blurry results.", True),
    ("L1 alone leads to reasonable but blurry\n   results.", True),  # line breaks are whitespace
    ("L1 alone leads to blurry results.", False),  # a word dropped
    ("L1 alone leads to reasonable but blurry results [...] with λ = 100", True),
    ("reduces these artifacts [...] L1 alone leads", False),  # fragments out of order
    ("gives much sharper results but introduces visual artifacts.", False),  # the hedge "on certain applications"
    ("gives much sharper results but introduces visual artifacts on certain applications.", True),
])
def test_a_quote_is_verbatim_only_with_every_word_in_order(quote, verbatim):
    text = ("L1 alone leads to reasonable but blurry results. The cGAN alone (setting λ = 0 in Eqn. 4) gives much "
            "sharper results but introduces visual artifacts on certain applications. Adding both terms together "
            "(with λ = 100) reduces these artifacts.")
    assert (missing_fragment(quote, text) is None) is verbatim


def _studies():
    published = load_published()
    return [parse_study(load_ablation(path), published) for path in study_files(ROOT / "ablations")]


@needs_shared
def test_every_claim_and_stated_setting_is_quoted_verbatim_from_its_source():
    texts = {name: document_text(name, SHARED) for name in DOCUMENTS}
    problems = []
    for study in _studies():
        quoted = [(f"claim {claim.id}", claim.quote) for claim in study.claims]
        quoted += [(f"setting {setting.setting!r}", setting.quote) for setting in study.settings if setting.quote]
        for what, quote in quoted:
            missing = missing_fragment(quote.text, texts[quote.source])
            if missing is not None:
                problems.append(f"{study.name}: {what}: not in {quote.source} ({DOCUMENTS[quote.source].path}): "
                                f"{missing!r}")
    assert problems == []


def test_a_claim_tested_by_several_studies_is_the_same_claim_everywhere():
    """One id, one sentence: the overview counts a claim once, so its source, section and words must agree."""
    seen: dict[str, tuple] = {}
    problems = []
    for study in _studies():
        for claim in study.claims:
            key = (claim.quote.source, claim.quote.where, claim.quote.text)
            if seen.setdefault(claim.id, key) != key:
                problems.append(f"{study.name}: {claim.id} quotes {key}, another study {seen[claim.id]}")
    assert problems == []


def test_every_study_states_the_provenance_of_its_settings():
    for study in _studies():
        assert study.settings, f"{study.name}: no settings with their provenance"
        assert all(s.quote is not None or s.why for s in study.settings), study.name
