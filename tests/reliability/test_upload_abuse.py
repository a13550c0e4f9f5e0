"""Uploads built to hurt: each gets its JSON error with a stable code, and nothing is stored,
created or sent to the provider."""

import struct
import zlib

import pytest
from django.core.files.storage import default_storage

from storybook.models import Book
from tests.audio_samples import lying_wav_bytes
from tests.storybook.test_books import book_payload, create_with_images, upload
from tests.voices.conftest import clone, make_voice, sample
from voices.models import Voice, VoiceSample

pytestmark = pytest.mark.django_db


def assert_refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    return error


def nothing_stored(settings) -> bool:
    root = settings.MEDIA_ROOT
    return not Voice.objects.exists() and not VoiceSample.objects.exists() and (
        not root.exists() or not any(p.is_file() for p in root.rglob("*")))


def png_header(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR declaring width x height, with a few bytes of pixel data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def test_a_wav_whose_header_lies_about_its_length(auth_client, settings):
    error = assert_refused(clone(auth_client, samples=[sample("long.wav", lying_wav_bytes(2.0, 3600.0))]),
                           400, "invalid_audio")
    # Judged on what is there, never on the claimed hour (which would be too_long).
    assert error["details"]["reason"] in {"undecodable", "too_short", "no_speech"}
    assert nothing_stored(settings)


@pytest.mark.parametrize("name, data, content_type", [
    ("notes.wav", b"Dear diary, today we went to the park.\n" * 50, "audio/wav"),
    ("photo.mp3", png_header(64, 64), "audio/mpeg"),
    ("empty.wav", b"", "audio/wav"),
])
def test_a_file_that_is_not_audio(auth_client, settings, name, data, content_type):
    error = assert_refused(clone(auth_client, samples=[sample(name, data, content_type)]), 400, "invalid_audio")
    assert error["details"]["reason"] in {"undecodable", "empty"}
    assert nothing_stored(settings)


def test_an_image_bomb_declaring_ten_billion_pixels(auth_client, user):
    narrator = make_voice(None, name="Narrator")
    response = create_with_images(auth_client, book_payload(narrator, pages=1),
                                  [upload("bomb.png", png_header(100_000, 100_000))])
    error = assert_refused(response, 400, "invalid_image")
    assert "pixels" in error["details"]["reason"]
    assert not Book.objects.exists()


def test_fifty_files_in_one_request(auth_client, settings):
    samples = [sample(f"s{i}.wav") for i in range(50)]
    assert_refused(clone(auth_client, samples=samples), 413, "request_too_large")
    assert nothing_stored(settings)


def test_a_300_character_file_name_is_kept_short_and_stored_under_an_id(auth_client, settings):
    name = "ü" * 150 + "x" * 146 + ".wav"
    assert len(name) == 300
    response = clone(auth_client, samples=[sample(name)])
    assert response.status_code == 202, response.content
    stored = VoiceSample.objects.get()
    assert len(stored.original_name) <= 255 and stored.original_name.endswith(".wav")
    assert name[:50] not in stored.file.name and len(stored.file.name) < 100
    assert default_storage.exists(stored.file.name)


def test_a_100_mb_body_is_refused_before_it_is_read(auth_client):
    from tests.accounts.test_errors import _Recorder, _scope

    import asyncio

    from config.asgi import application

    recorder = _Recorder([b"x" * 65536] * 1600)  # 100 MiB offered
    scope = _scope([(b"content-type", b"multipart/form-data; boundary=x"),
                    (b"content-length", str(100 * 1024 * 1024).encode())])
    asyncio.run(application(scope, recorder.receive, recorder.send))
    assert recorder.receive_calls == 0 and recorder.sent[0]["status"] == 413
    assert b'"request_too_large"' in recorder.sent[1]["body"]
