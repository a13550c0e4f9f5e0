"""Lines joined into one file: every line's clip decoded with PyAV, pages in order, short pauses
between lines and longer ones between pages, re-encoded to one format and rate, with an index
of where each page and line starts. The whole book is one such file; an EPUB's page audio is
another (one page's lines)."""

import hashlib
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from django.core.files.storage import default_storage

from tts.audio import decode_audio, encode_audio

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


def _silence(ms: int) -> array:
    return array("h", bytes(RATE * ms // 1000 * 2))


def _ms(samples: int) -> int:
    return samples * 1000 // RATE


def render_pcm(segments: Sequence[Segment]) -> tuple[array, list[dict]]:
    """Mono 16-bit PCM at RATE and the page index ([{page_id, number, start_ms, lines: [{line_id,
    start_ms, end_ms}]}]) for segments in reading order."""
    pcm = array("h")
    pages: list[dict] = []
    for segment in segments:
        if not pages or pages[-1]["page_id"] != segment.page_id:
            if pages:
                pcm.extend(_silence(PAGE_PAUSE_MS - LINE_PAUSE_MS))
            pages.append({"page_id": segment.page_id, "number": segment.page_number,
                          "start_ms": _ms(len(pcm)), "lines": []})
        with default_storage.open(segment.file_name, "rb") as f:
            decoded = decode_audio(f.read(), pcm_rate=RATE)
        start = _ms(len(pcm))
        pcm.extend(decoded.pcm)
        pages[-1]["lines"].append({"line_id": segment.line_id, "start_ms": start, "end_ms": _ms(len(pcm))})
        pcm.extend(_silence(LINE_PAUSE_MS))
    return pcm, pages


def render(segments: Sequence[Segment]) -> tuple[bytes, int, list[dict]]:
    """(encoded audio in FORMAT, duration ms, page index) for segments in reading order."""
    pcm, pages = render_pcm(segments)
    return encode_audio(pcm=pcm.tobytes(), sample_rate=RATE, output_format=FORMAT), _ms(len(pcm)), pages
