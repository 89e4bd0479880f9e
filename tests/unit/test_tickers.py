"""Ticker extraction from free text: cashtags, whole words, ambiguous words, URLs."""

from __future__ import annotations

import pytest

from tradebot.kernel.settings import DEFAULT_AMBIGUOUS_TICKERS
from tradebot.sources.tickers import TickerMatcher, extract_tickers

UNIVERSE = {"AAPL", "NVDA", "MSFT", "AMD", "IT", "ALL", "ON", "A", "BRK.B", "BF-B", "TSLA"}
AMBIGUOUS = set(DEFAULT_AMBIGUOUS_TICKERS)


def tickers(text: str) -> list[str]:
    return extract_tickers(text, UNIVERSE, AMBIGUOUS)


@pytest.mark.parametrize(("text", "expected"), [
    ("$AAPL to the moon", ["AAPL"]),
    ("bought $aapl and $Nvda today", ["AAPL", "NVDA"]),
    ("$brk.b is boring", ["BRK.B"]),
    ("$BRK.B and BF-B", ["BF-B", "BRK.B"]),
    ("$XYZ is not in the universe", []),
    ("$AAPL's earnings, $NVDA.", ["AAPL", "NVDA"]),
    ("$aapl.so good", ["AAPL"]),
])
def test_cashtags_count_in_any_case_when_in_the_universe(text: str, expected: list[str]) -> None:
    assert tickers(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("NVDA beats estimates", ["NVDA"]),
    ("Is MSFT or AMD better?", ["AMD", "MSFT"]),
    ("(TSLA) NVDA,AAPL", ["AAPL", "NVDA", "TSLA"]),
    ("AMD-powered laptops", ["AMD"]),
    ("Sold NVDA.", ["NVDA"]),
    ("BRK.B looks cheap", ["BRK.B"]),
])
def test_upper_case_whole_words_count(text: str, expected: list[str]) -> None:
    assert tickers(text) == expected


@pytest.mark.parametrize("text", [
    "IT is great", "ALL in on this", "turn it ON now", "A stock I like", "ALL IT ON A",
])
def test_ambiguous_words_only_count_as_cashtags(text: str) -> None:
    assert tickers(text) == []


def test_ambiguous_tickers_match_as_cashtags() -> None:
    assert tickers("$IT and $all and $ON and $a") == ["A", "ALL", "IT", "ON"]


@pytest.mark.parametrize("text", [
    "aapl and nvda in lower case",   # lower-case words are never tickers
    "Nvda Msft mixed case",
    "AAPLX NVDAQ MSFTY",             # symbols inside longer words
    "XAAPL and AAPL_2 and AAPL2",
    "see aapl.com or NVDA.com",      # domains
    "NVDA.COM is a domain too",
    "https://example.com/NVDA/AAPL?x=MSFT",
    "www.example.com/AMD",
    "r/NVDA and u/AAPL and @MSFT",   # subreddit, user and handle names
    "price US$100 and $5",
])
def test_no_match_inside_words_urls_or_names(text: str) -> None:
    assert tickers(text) == []


def test_only_universe_tickers_are_returned() -> None:
    assert extract_tickers("$AAPL GOOG $META NVDA", {"AAPL"}, set()) == ["AAPL"]
    assert extract_tickers("NVDA", {"nvda"}, set()) == ["NVDA"]  # universe case is normalised


def test_results_are_sorted_and_unique() -> None:
    assert tickers("NVDA $nvda AAPL $AAPL NVDA") == ["AAPL", "NVDA"]
    assert tickers("") == []


def test_matcher_over_a_large_universe_and_many_posts() -> None:
    universe = [f"S{i:03d}" for i in range(497)] + ["AAPL", "NVDA", "IT"]
    matcher = TickerMatcher(universe, AMBIGUOUS)
    posts = [f"post {i}: $S{i % 497:03d} and NVDA, IT is fine, aapl lower" for i in range(5000)]
    found = [matcher.extract(p) for p in posts]
    assert found[0] == ["NVDA", "S000"]
    assert found[4999] == ["NVDA", f"S{4999 % 497:03d}"]
    assert all(len(f) == 2 for f in found)
    # the cached functional form agrees with the matcher
    assert extract_tickers(posts[7], universe, AMBIGUOUS) == matcher.extract(posts[7])
