"""Find ticker symbols in free text (reddit posts, headlines).

Two kinds of mention count:

* ``$CASHTAG`` (any case: ``$aapl``, ``$BRK.B``) whenever the ticker is in the universe;
* a whole upper-case word (``NVDA beats``) when the ticker is in the universe and is not a
  common word listed as ambiguous (``IT``, ``ALL``, ``ON``...): those only count as cashtags.

Matching scans the text once with generic token patterns and looks tokens up in sets, so the
cost does not grow with the universe size. URLs are removed before matching.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from functools import lru_cache

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
# A symbol: a letter, then letters/digits, optionally a share-class suffix (BRK.B, BF-B).
_CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z][A-Za-z0-9]{0,9}(?:[.\-][A-Za-z0-9]{1,3})?)\b")
_WORD = re.compile(r"(?<![\w$@/.\-])([A-Z][A-Z0-9]{0,9}(?:[.\-][A-Z0-9]{1,3})?)(?!\w|\.\w)")


class TickerMatcher:
    """Ticker extraction for one universe and one set of ambiguous (common-word) tickers."""

    def __init__(self, universe: Collection[str], ambiguous: Collection[str] = ()) -> None:
        self.universe = frozenset(s.strip().upper() for s in universe)
        self.words = self.universe - {s.strip().upper() for s in ambiguous}

    def extract(self, text: str) -> list[str]:
        """Sorted unique universe tickers mentioned in ``text``."""
        if not text:
            return []
        text = _URL.sub(" ", text)
        found: set[str] = set()
        for match in _CASHTAG.finditer(text):
            symbol = match.group(1).upper()
            if symbol in self.universe:
                found.add(symbol)
            else:  # "$aapl.so good": fall back to the part before the separator
                base = re.split(r"[.\-]", symbol, maxsplit=1)[0]
                if base != symbol and base in self.universe:
                    found.add(base)
        for match in _WORD.finditer(text):
            if match.group(1) in self.words:
                found.add(match.group(1))
        return sorted(found)


@lru_cache(maxsize=32)
def _matcher(universe: frozenset[str], ambiguous: frozenset[str]) -> TickerMatcher:
    return TickerMatcher(universe, ambiguous)


def extract_tickers(text: str, universe: Collection[str], ambiguous: Collection[str]) -> list[str]:
    """Sorted unique tickers of ``universe`` that ``text`` mentions (see the module docs).

    Matchers are cached per (universe, ambiguous); for a hot loop build a
    :class:`TickerMatcher` once and call :meth:`TickerMatcher.extract`."""
    return _matcher(frozenset(universe), frozenset(ambiguous)).extract(text)
