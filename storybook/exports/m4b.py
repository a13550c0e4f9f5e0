"""The M4B audiobook: the whole-book audio re-encoded as AAC in MP4 with the M4B brand, one
chapter per page on the audio's presentation clock, iTunes tags (title, artist, album, genre,
description, media type "Audiobook") and the cover as an attached picture (`covr`).

FFmpeg's `mp4` muxer, branded `M4B `, rather than its `ipod` one: they are the same muxer, but
PyAV adds a stream only for a codec the format lists (`avformat_query_codec`) and `ipod` lists
no image codec, so it could carry no cover."""

import io
import tempfile
from fractions import Fraction
from pathlib import Path

import av
from av.audio.stream import AudioStream
from av.packet import Packet
from django.core.files.storage import default_storage
from PIL import Image

from .snapshot import BookSnapshot, PageSnapshot, written_words

RATE = 44_100
BIT_RATE = 80_000  # mono speech: clear at 64-96 kb/s with FFmpeg's native encoder
TITLE_WORDS = 6
TITLE_CHARS = 60  # scripts written without spaces make one "word" of a whole phrase
_MS = Fraction(1, 1000)
COVER_MAX_PIXELS = 1400  # per side: what audiobook apps show, far under the mp4 atom limits


def build_m4b(snapshot: BookSnapshot) -> bytes:
    """The book as an M4B file: AAC, mono, 44.1 kHz, a chapter per page, the book's tags."""
    with default_storage.open(snapshot.audio_name, "rb") as f:
        source = f.read()
    with tempfile.TemporaryDirectory() as folder:
        # faststart puts the index before the audio (players start before the download ends);
        # FFmpeg does it by reading the file back, which it cannot do with a BytesIO.
        path = Path(folder) / "book.m4b"
        with av.open(str(path), "w", format="mp4",
                     container_options={"brand": "M4B ", "movflags": "+faststart"}) as out:
            stream = out.add_stream("aac", rate=RATE, layout="mono")
            stream.bit_rate = BIT_RATE
            cover = _cover_jpeg(snapshot)
            picture = None
            if cover is not None:
                picture = out.add_stream("mjpeg", width=cover[1], height=cover[2])
                picture.pix_fmt = "yuvj420p"  # the encoder is opened (never used) with the header
                picture.disposition = av.stream.Disposition.attached_pic.value  # PyAV wants the int
            packets, samples = _encode(source, stream=stream)
            # The chapter track is sized when the header is written, so the chapters (and the
            # last one's end, the audio's end) must be known before the first packet is muxed.
            out.set_chapters(_chapters(snapshot.pages, end_ms=samples * 1000 // RATE))
            out.metadata.update(_tags(snapshot))
            if picture is not None:
                packet = Packet(cover[0])
                packet.stream, packet.pts, packet.dts = picture, 0, 0
                out.mux(packet)
            out.mux(packets)
        return path.read_bytes()


def _cover_jpeg(snapshot: BookSnapshot) -> tuple[bytes, int, int] | None:
    """(JPEG, width, height) of the cover, or of the first page picture without one."""
    name = snapshot.cover_name or next((page.image_name for page in snapshot.pages if page.image_name), None)
    if not name:
        return None
    with default_storage.open(name, "rb") as f, Image.open(f) as image:
        image = image.convert("RGB")  # players read JPEG covers everywhere; webp and gif less so
        image.thumbnail((COVER_MAX_PIXELS, COVER_MAX_PIXELS))
        out = io.BytesIO()
        image.save(out, "JPEG", quality=88)
        return out.getvalue(), image.width, image.height


def _encode(source: bytes, *, stream: AudioStream) -> tuple[list[Packet], int]:
    """(AAC packets, samples encoded) for the decoded `source`, frame by frame."""
    stream.codec_context.open()  # only an open encoder tells its frame size, which it must be fed
    resampler = av.AudioResampler(format=stream.codec_context.format.name, layout="mono", rate=RATE,
                                  frame_size=stream.codec_context.frame_size)
    packets: list[Packet] = []
    samples = 0

    def encode(frames: list[av.AudioFrame]) -> None:
        nonlocal samples
        for frame in frames:
            # The decoded sample count is the book's clock (pages were placed by it). With a pts
            # the encoder stamps its priming samples before 0 and the muxer writes an edit list
            # that hides them, so playback time 0 is the first sample of the book.
            frame.pts, frame.time_base = samples, Fraction(1, RATE)
            samples += frame.samples
            packets.extend(stream.encode(frame))

    with av.open(io.BytesIO(source)) as container:
        for frame in container.decode(container.streams.audio[0]):
            frame.pts = None  # the source's own timestamps (a demuxer's start offset) are not the clock
            encode(resampler.resample(frame))
    encode(resampler.resample(None))
    packets.extend(stream.encode(None))
    return packets, samples


def _chapters(pages: tuple[PageSnapshot, ...], *, end_ms: int) -> list[dict]:
    """One chapter per page: from its start (the first from 0) to the next one's, the last to the end."""
    starts: list[int] = []
    for page in pages:
        # Never before the previous chapter nor past the end: players want them in order.
        starts.append(min(max(page.start_ms, starts[-1]), end_ms) if starts else 0)
    ends = [*starts[1:], end_ms]
    return [{"id": number, "start": start, "end": end, "time_base": _MS,
             "metadata": {"title": _chapter_title(page)}}
            for number, (page, start, end) in enumerate(zip(pages, starts, ends), 1)]


def _chapter_title(page: PageSnapshot) -> str:
    """ "Page N: <the first words of its first line, or of its text>", with an ellipsis when cut."""
    text = page.lines[0].text if page.lines else page.text
    words = written_words(text)
    if not words:
        return f"Page {page.number}"
    # Cut the text itself after the last word shown, so its own spacing and punctuation stay.
    end = 0
    for word in words[:TITLE_WORDS]:
        end = text.index(word, end) + len(word)
    shown, cut = " ".join(text[:end].split()), len(words) > TITLE_WORDS
    if len(shown) > TITLE_CHARS:
        shown, cut = shown[:TITLE_CHARS].rstrip(), True
    return f"Page {page.number}: {shown.rstrip(',;:.!?、，。') + '…' if cut else shown}"


def _tags(snapshot: BookSnapshot) -> dict[str, str]:
    """FFmpeg's names for the iTunes tags; `media_type` 2 is `stik` Audiobook."""
    title = snapshot.title or "Untitled"
    tags = {"title": title, "album": title, "artist": snapshot.author, "album_artist": snapshot.author,
            "genre": "Audiobook", "media_type": "2", "comment": snapshot.description,
            "description": snapshot.description}
    return {key: value for key, value in tags.items() if value}
