"""The whole book as one file: every line's clip decoded with PyAV, pages in order, short pauses
between lines and longer ones between pages, re-encoded to one format and rate, with an index
of where each page and line starts."""

import hashlib
from array import array
from collections.abc import Sequence

from django.core.files.storage import default_storage

from tts.audio import decode_audio, encode_audio

RATE = 44_100
FORMAT = "mp3_44100_128"
LINE_PAUSE_MS = 300
PAGE_PAUSE_MS = 800


def fingerprint(lines: Sequence) -> str:
    """What the file is made of (lines in reading order with their clips): equal fingerprints,
    equal files."""
    parts = [f"{line.page.number}:{line.pk}:{line.speech_job.clip_id}" for line in lines]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _silence(ms: int) -> array:
    return array("h", bytes(RATE * ms // 1000 * 2))


def render(lines: Sequence) -> tuple[bytes, int, list[dict]]:
    """(encoded audio, duration ms, page index) for lines in reading order, each with a clip."""
    pcm = array("h")
    pages: list[dict] = []
    for line in lines:
        if not pages or pages[-1]["page_id"] != str(line.page_id):
            if pages:
                pcm.extend(_silence(PAGE_PAUSE_MS - LINE_PAUSE_MS))
            pages.append({"page_id": str(line.page_id), "number": line.page.number,
                          "start_ms": len(pcm) * 1000 // RATE, "lines": []})
        with default_storage.open(line.speech_job.clip.file.name, "rb") as f:
            decoded = decode_audio(f.read(), pcm_rate=RATE)
        start = len(pcm) * 1000 // RATE
        pcm.extend(decoded.pcm)
        pages[-1]["lines"].append({"line_id": str(line.pk), "start_ms": start, "end_ms": len(pcm) * 1000 // RATE})
        pcm.extend(_silence(LINE_PAUSE_MS))
    return encode_audio(pcm=pcm.tobytes(), sample_rate=RATE, output_format=FORMAT), len(pcm) * 1000 // RATE, pages
