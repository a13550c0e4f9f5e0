"""Lines joined into one file: every line's clip decoded with PyAV, pages in order, short pauses
between lines and longer ones between pages, re-encoded to one format and rate, with an index
of where each page and line starts. The whole book is one such file; an EPUB's page audio is
another (one page's lines)."""

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from django.core.files.storage import default_storage

from tts.audio import decode_audio, encode_audio_chunks

# Whole-book files are stored here (AudioClip rows, not under the clip field's upload_to);
# storage hygiene walks it too.
BOOK_AUDIO_FOLDER = "book-audio"
RATE = 44_100
FORMAT = "mp3_44100_128"
LINE_PAUSE_MS = 300
PAGE_PAUSE_MS = 800


@dataclass(frozen=True)
class Segment:
    """One line's audio in reading order: the stored file to decode and where it belongs."""
    page_id: str
    page_number: int
    line_id: str
    file_name: str


def fingerprint(parts: Sequence[str]) -> str:
    """What a file is made of, in order: equal fingerprints, equal files."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _silence(ms: int) -> bytes:
    return bytes(RATE * ms // 1000 * 2)


def _ms(samples: int) -> int:
    return samples * 1000 // RATE


class _Placed:
    """Decodes segments one at a time, yielding their PCM and the pauses between them, and
    records where each page and line lands (an index filled as the PCM is consumed)."""

    def __init__(self, segments: Sequence[Segment]) -> None:
        self.segments = segments
        self.pages: list[dict] = []
        self.samples = 0

    def __iter__(self) -> Iterator[bytes]:
        for segment in self.segments:
            if not self.pages or self.pages[-1]["page_id"] != segment.page_id:
                if self.pages:
                    yield from self._emit(_silence(PAGE_PAUSE_MS - LINE_PAUSE_MS))
                self.pages.append({"page_id": segment.page_id, "number": segment.page_number,
                                   "start_ms": _ms(self.samples), "lines": []})
            with default_storage.open(segment.file_name, "rb") as f:
                pcm = decode_audio(f.read(), pcm_rate=RATE).pcm.tobytes()
            start = _ms(self.samples)
            yield from self._emit(pcm)
            self.pages[-1]["lines"].append({"line_id": segment.line_id, "start_ms": start, "end_ms": _ms(self.samples)})
            yield from self._emit(_silence(LINE_PAUSE_MS))

    def _emit(self, pcm: bytes) -> Iterator[bytes]:
        self.samples += len(pcm) // 2
        yield pcm


def render(segments: Sequence[Segment]) -> tuple[bytes, int, list[dict]]:
    """(encoded audio in FORMAT, duration ms, page index) for segments in reading order. The
    index is [{page_id, number, start_ms, lines: [{line_id, start_ms, end_ms}]}]; durations are
    whole milliseconds rounded down, so the decoded file is never shorter. Only one line is
    held decoded at a time, so a book of any length fits in memory."""
    placed = _Placed(segments)
    data = encode_audio_chunks(placed, sample_rate=RATE, output_format=FORMAT)
    return data, _ms(placed.samples), placed.pages
