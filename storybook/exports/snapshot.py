"""What every export of a book is made of, read once: the book's text, its pictures, and each
line's loudness-matched clip with one timing per written word, placed on the whole-book audio's
clock. Builders take a snapshot and return bytes; they read files only through the storage
names it holds."""

import re
from collections.abc import Sequence
from dataclasses import dataclass

# Written words: runs between whitespace and CJK punctuation (the local provider's tokens), each
# keeping its punctuation for display; a run of punctuation alone is no word.
_TOKEN = re.compile(r"[^\s\u3000-\u303f]+")
_LETTERS = re.compile(r"[^\W_]")


@dataclass(frozen=True)
class Word:
    text: str  # as written, punctuation included ("time,")
    start_ms: int  # on the line's own clock (0 = the line's first sample)
    end_ms: int


@dataclass(frozen=True)
class LineSnapshot:
    id: str
    order: int  # 1-based within its page
    speaker: str
    text: str
    words: tuple[Word, ...]  # one per written word, in order, within [0, duration_ms]
    audio_name: str  # storage name of the loudness-matched clip (mp3)
    duration_ms: int
    start_ms: int  # where the line starts and ends in the whole-book audio
    end_ms: int
    loudness_lufs: float | None  # measured after matching
    true_peak_dbtp: float | None
    source_loudness_lufs: float | None  # the provider's clip, before matching
    voice_name: str


@dataclass(frozen=True)
class PageSnapshot:
    id: str
    number: int  # 1-based
    text: str
    image_name: str | None  # storage name, or None
    start_ms: int  # on the whole-book clock
    end_ms: int  # the end of its last line
    lines: tuple[LineSnapshot, ...]


@dataclass(frozen=True)
class BookSnapshot:
    id: str
    title: str
    description: str
    language: str  # BCP 47 ("en", "ko", "pt-BR")
    author: str  # the owner's display name
    cover_name: str | None
    pages: tuple[PageSnapshot, ...]
    audio_name: str  # the whole-book file (mp3)
    audio_duration_ms: int
    loudness_target_lufs: float
    true_peak_limit_dbtp: float
    fingerprint: str  # equal fingerprints, equal exports
    modified: str  # ISO 8601 UTC, seconds ("2026-12-02T07:00:00Z")

    @property
    def lines(self) -> list[LineSnapshot]:
        return [line for page in self.pages for line in page.lines]


def written_words(text: str) -> list[str]:
    return [match.group() for match in _TOKEN.finditer(text) if _LETTERS.search(match.group())]


def word_timings(text: str, timings: Sequence[dict], duration_ms: int) -> tuple[Word, ...]:
    """One Word per written word of `text`. A provider's timings are used when they are one per
    written word; otherwise (none, or split differently) each word gets a share of the line's
    duration in proportion to its length."""
    words = written_words(text)
    if not words:
        return ()
    if len(timings) == len(words):
        out, latest = [], 0
        for word, timing in zip(words, timings):
            start = min(max(latest, int(timing["start_ms"])), duration_ms)
            end = min(max(start, int(timing["end_ms"])), duration_ms)
            out.append(Word(word, start, end))
            latest = start
        return tuple(out)
    total = sum(len(word) for word in words)
    out, before = [], 0
    for word in words:
        start = duration_ms * before // total
        before += len(word)
        out.append(Word(word, start, duration_ms * before // total))
    return tuple(out)
