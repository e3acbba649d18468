"""Keep only the sentences of an LLM analysis that agree with what was measured.

A weak model writes fluent sentences with invented numbers, says the same thing until its token cap
and stops mid-sentence; such text must not reach ``summary.json`` or the planner's context.
:func:`grounded_analysis` splits the reply into sentences and drops:

- **unmeasured numbers**: a number that matches nothing the model was shown (the measured table,
  the totals, the rule-based findings, the source code) -- 5,130 matches "5,130", "5130", "5.13K"
  and "5K" (a rounded quote is within its last digit); a percentage matches within half a point;
  small counts (up to 10) always pass;
- **self-comparisons**: a sentence comparing a number with itself ("5,130, lower than the 5,130");
- **repetition**: a sentence (nearly) the same as an earlier one;
- **a cut-off ending**: the last sentence when the reply hit its token cap or does not end a sentence.

What is left must refer to the measured model somewhere (a measured number, or a layer's name or
type): a reply that says nothing about it ("I am not sure how to write that.") is no analysis.
It returns the kept text and a note saying what was dropped and why.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from dataclasses import dataclass, field

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'`])")
# a number standing on its own (not the 2 of Conv2d or the 1 of layers.1), with an optional unit
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:,\d{3})*(?:\.\d+)?)\s*(%|[kKMGT](?![a-zA-Z]))?")
_COMPARISON = re.compile(r"\b(?:lower|higher|larger|smaller|more|less|fewer|greater|bigger)\b[^.]*\bthan\b",
                         re.IGNORECASE)
_SCALE = {"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
ALWAYS_ALLOWED_UP_TO = 10
REPEAT_SIMILARITY = 0.9


@dataclass
class GroundedText:
    """The kept sentences and why the others were dropped."""

    text: str
    kept: int
    dropped: Counter = field(default_factory=Counter)  # reason -> sentences

    @property
    def note(self) -> str:
        if not self.dropped:
            return ""
        reasons = ", ".join(f"{count} {reason}" for reason, count in self.dropped.items())
        return f"{sum(self.dropped.values())} of {self.kept + sum(self.dropped.values())} sentences dropped: {reasons}"


def _values(text: str) -> list[tuple[float, bool, float]]:
    """Each number in ``text`` as (value, is a percentage, half a unit of its last written digit)."""
    found = []
    for digits, unit in _NUMBER.findall(text):
        plain = digits.replace(",", "")
        decimals = len(plain.partition(".")[2])
        scale = _SCALE.get(unit, 1.0)
        found.append((float(plain) * scale, unit == "%", 0.5 * 10 ** -decimals * scale))
    return found


class _Evidence:
    """The numbers the model was shown, for tolerant lookups."""

    def __init__(self, shown: str) -> None:
        values = _values(shown)
        self.percentages = [value for value, percent, _ in values if percent]
        self.numbers = [value for value, percent, _ in values if not percent]

    def knows(self, value: float, percent: bool, rounding: float) -> bool:
        if not percent and value.is_integer() and value <= ALWAYS_ALLOWED_UP_TO:
            return True
        if percent:
            return any(abs(value - known) <= max(0.5, rounding) for known in self.percentages)
        # a rounded quote (3.2M for 3,241,000; 5.13K for 5,130) is within its own last digit, or 1%
        return any(abs(value - known) <= max(0.01 * abs(known), rounding) for known in self.numbers)


def _sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE_END.split(" ".join(text.split())) if part.strip()]


def _problem(sentence: str, kept: list[str], evidence: _Evidence) -> str | None:
    values = _values(sentence)
    if any(not evidence.knows(value, percent, rounding) for value, percent, rounding in values):
        return "with numbers not in the measurement"
    plain = [value for value, percent, _ in values if not percent]
    if _COMPARISON.search(sentence) and len(plain) != len(set(plain)):
        return "comparing a number with itself"
    flat = sentence.lower()
    if any(difflib.SequenceMatcher(None, flat, earlier.lower()).ratio() >= REPEAT_SIMILARITY for earlier in kept):
        return "repeated"
    return None


def _refers_to_the_model(sentences: list[str], anchors: set[str]) -> bool:
    words = {word.strip(".,;:()[]`'\"") for sentence in sentences for word in sentence.split()}
    return any(_values(sentence) for sentence in sentences) or bool(words & anchors)


def grounded_analysis(reply: str, shown: str, *, truncated: bool, anchors: set[str] = frozenset()) -> GroundedText:
    """``reply`` without the sentences that disagree with ``shown`` (what the model was given);
    ``anchors`` are the measured model's layer names and types."""
    sentences = _sentences(reply)
    result = GroundedText(text="", kept=0)
    if sentences and (truncated or not sentences[-1].endswith((".", "!", "?"))):
        sentences.pop()
        result.dropped["cut off"] += 1
    evidence = _Evidence(shown)
    kept: list[str] = []
    for sentence in sentences:
        problem = _problem(sentence, kept, evidence)
        if problem:
            result.dropped[problem] += 1
        else:
            kept.append(sentence)
    if kept and anchors and not _refers_to_the_model(kept, anchors):
        result.dropped["about nothing that was measured"] += len(kept)
        kept = []
    result.text, result.kept = " ".join(kept), len(kept)
    return result
