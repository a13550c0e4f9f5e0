"""The M4B builder on a hand-made snapshot with a real whole-book mp3 in storage: a chapter per
page where its audio starts, AAC as long as the source, the book's tags read back by PyAV, and
the cover (or the first page picture) as an attached picture."""

import io
import math
import uuid
from array import array
from fractions import Fraction

import av
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from storybook.exports.m4b import build_m4b
from storybook.exports.snapshot import BookSnapshot, LineSnapshot, PageSnapshot, word_timings
from tts.audio import decode_audio, encode_audio

RATE = 44_100
BURST_MS, PAGE_MS = 2200, 3000  # each page: a tone burst, then silence until the next page
TEXTS = ("Once upon a time, a little fox looked up at the moon.",
         "Hello, moon!",
         "The moon smiled back and said: come and play with me tonight.",
         "むかしむかし、あるところに、おじいさんとおばあさんがすんでいました。")
TOLERANCE_MS = 50


def _whole_book_audio(pages: int) -> str:
    pcm = array("h")
    for number in range(pages):
        freq = 220 * (number + 2)
        pcm.extend(int(9000 * math.sin(2 * math.pi * freq * i / RATE)) for i in range(RATE * BURST_MS // 1000))
        pcm.extend(bytes(RATE * (PAGE_MS - BURST_MS) // 1000))
    data = encode_audio(pcm=pcm.tobytes(), sample_rate=RATE, output_format="mp3_44100_128")
    return default_storage.save(f"books/{uuid.uuid4().hex}.mp3", ContentFile(data))


def _picture() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "navy").save(buffer, format="JPEG")
    return default_storage.save(f"book-images/{uuid.uuid4().hex}.jpg", ContentFile(buffer.getvalue()))


def _page(number: int, *, line_text: str | None, page_text: str = "") -> PageSnapshot:
    start = (number - 1) * PAGE_MS
    lines = () if line_text is None else (LineSnapshot(
        id=str(uuid.uuid4()), order=1, speaker="Narrator", text=line_text,
        words=word_timings(line_text, [], BURST_MS), audio_name="clips/unused.mp3", duration_ms=BURST_MS,
        start_ms=start, end_ms=start + BURST_MS, loudness_lufs=-16.0, true_peak_dbtp=-1.5,
        source_loudness_lufs=-20.0, voice_name="Test voice"),)
    return PageSnapshot(id=str(uuid.uuid4()), number=number, text=page_text, image_name=None, start_ms=start,
                        end_ms=start + (BURST_MS if lines else 0), lines=lines)


def _book(pages: tuple[PageSnapshot, ...], *, cover_name: str | None, description: str) -> BookSnapshot:
    return BookSnapshot(id=str(uuid.uuid4()), title="Fox & Moon 🌙", description=description, language="en",
                        author="Ana O'Neil & 김하늘", cover_name=cover_name, pages=pages,
                        audio_name=_whole_book_audio(len(pages)), audio_duration_ms=len(pages) * PAGE_MS,
                        loudness_target_lufs=-16.0, true_peak_limit_dbtp=-1.5, fingerprint="f" * 64,
                        modified="2026-12-02T07:00:00Z")


def _onset_ms(pcm: array, *, near_ms: int, loud: float) -> float:
    """Where the burst around `near_ms` first gets loud, in ms from the first sample of `pcm`."""
    start = max(0, (near_ms - 400) * RATE // 1000)
    for i in range(start, min(len(pcm), (near_ms + 400) * RATE // 1000)):
        if abs(pcm[i]) > loud:
            return i * 1000 / RATE
    raise AssertionError(f"no sound near {near_ms} ms")


def _presented(data: bytes) -> tuple[float, array]:
    """(when the first decoded sample is played, in ms; the samples) of a file's audio, on the
    timestamps a player follows (an edit list's delay included), its frames back to back."""
    pcm, first_ms, next_pts = array("f"), None, None
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(container.streams.audio[0]):
            assert frame.format.name == "fltp" and frame.time_base == Fraction(1, RATE)
            assert next_pts in (None, frame.pts), "a gap or an overlap between frames"
            first_ms = float(frame.time * 1000) if first_ms is None else first_ms
            next_pts = frame.pts + frame.samples
            pcm.frombytes(bytes(frame.planes[0])[: frame.samples * 4])
    return first_ms, pcm


def _read(data: bytes) -> tuple[list[dict], dict[str, str], str, list[av.VideoStream]]:
    """(chapters with their times in ms, the container's tags, the audio codec, attached pictures)."""
    with av.open(io.BytesIO(data)) as container:
        chapters = [{**chapter, "start_ms": float(chapter["start"] * chapter["time_base"] * 1000),
                     "end_ms": float(chapter["end"] * chapter["time_base"] * 1000)}
                    for chapter in container.chapters()]
        pictures = [stream for stream in container.streams.video
                    if stream.disposition & av.stream.Disposition.attached_pic]
        return chapters, dict(container.metadata), container.streams.audio[0].codec_context.name, pictures


def test_m4b_chapters_audio_and_tags():
    snapshot = _book(tuple(_page(n, line_text=text) for n, text in enumerate(TEXTS, 1)), cover_name=_picture(),
                     description="A fox & the moon.")
    data = build_m4b(snapshot)
    assert data[4:12] == b"ftypM4B "
    assert build_m4b(snapshot) == data  # equal snapshots, equal files
    chapters, tags, codec, _ = _read(data)

    # 1. A chapter per page, at the page's start (the first at 0), ending where the next starts.
    assert len(chapters) == len(snapshot.pages)
    for chapter, page in zip(chapters, snapshot.pages):
        assert abs(chapter["start_ms"] - page.start_ms) <= TOLERANCE_MS, (chapter, page.start_ms)
    assert chapters[0]["start"] == 0
    assert [c["end"] for c in chapters[:-1]] == [c["start"] for c in chapters[1:]]
    assert [c["metadata"]["title"] for c in chapters] == [
        "Page 1: Once upon a time, a little…",
        "Page 2: Hello, moon!",
        "Page 3: The moon smiled back and said…",
        "Page 4: むかしむかし、あるところに、おじいさんとおばあさんがすんでいました",
    ]

    # 2. AAC as long as the source, playing each page's sound where its chapter starts, at the
    # very sample the mp3 has it: the encoder's 1024 priming samples (23 ms) are hidden.
    assert codec == "aac"
    with default_storage.open(snapshot.audio_name, "rb") as f:
        source = decode_audio(f.read(), pcm_rate=RATE)
    assert decode_audio(data).format == "m4a"
    first_ms, pcm = _presented(data)
    assert abs(len(pcm) / RATE - source.duration_seconds) <= 0.1
    assert abs(chapters[-1]["end_ms"] - source.duration_seconds * 1000) <= TOLERANCE_MS
    for chapter, page in zip(chapters, snapshot.pages):
        played = first_ms + _onset_ms(pcm, near_ms=page.start_ms, loud=3000 / 32768)
        assert abs(played - chapter["start_ms"]) <= TOLERANCE_MS, (played, chapter)
        assert abs(played - _onset_ms(source.pcm, near_ms=page.start_ms, loud=3000)) <= 5, played

    # 3. The tags, as the mp4 demuxer reads them back.
    assert {key: tags.get(key) for key in ("title", "album", "artist", "album_artist", "genre", "comment",
                                           "description", "media_type")} == {
        "title": "Fox & Moon 🌙", "album": "Fox & Moon 🌙", "artist": "Ana O'Neil & 김하늘",
        "album_artist": "Ana O'Neil & 김하늘", "genre": "Audiobook", "comment": "A fox & the moon.",
        "description": "A fox & the moon.", "media_type": "2"}


def test_m4b_cover_is_an_attached_picture():
    snapshot = _book((_page(1, line_text="Hello."),), cover_name=_picture(), description="")
    *_, pictures = _read(build_m4b(snapshot))
    assert len(pictures) == 1


def test_m4b_without_pictures_or_description():
    snapshot = _book((_page(1, line_text="Hello."), _page(2, line_text=None, page_text="  The end,\nthat is all  "),
                      _page(3, line_text=None)), cover_name=None, description="")
    chapters, tags, _, pictures = _read(build_m4b(snapshot))
    assert [c["metadata"]["title"] for c in chapters] == ["Page 1: Hello.", "Page 2: The end, that is all", "Page 3"]
    assert pictures == []
    assert "comment" not in tags and "description" not in tags
