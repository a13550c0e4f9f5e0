"""Storybooks: create, narrate, follow the lines, retry failed lines, edit, cancel, delete, access
and cache freshness (Postgres + Redis; the offline provider, and the real SDK against the emulator)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import token_client
from tests.factories import UserFactory
from tests.fakes import elevenlabs as el
from tests.voices.conftest import make_voice, other_user  # noqa: F401  (fixture)
from tts.models import QuotaMonth, SpeechJob
from storybook.models import Book

pytestmark = pytest.mark.django_db


@pytest.fixture
def narrator(db):
    return make_voice(None, name="English", provider="local", provider_voice_id="local-en-us-f", language="en")


@pytest.fixture
def other_voice(db):
    return make_voice(None, name="English male", provider="local", provider_voice_id="local-en-us-m", language="en")


def book_payload(voice, *, pages=2, lines=2, **extra) -> dict:
    return {"title": "The Fox and the Moon", "language": "en", "narrator_voice_id": str(voice.pk),
            "pages": [{"text": f"Page {p}", "lines": [{"speaker": "Fox" if i % 2 else "Narrator",
                                                      "text": f"Line {i} of page {p}: the fox looked up."}
                                                     for i in range(1, lines + 1)]}
                      for p in range(1, pages + 1)], **extra}


def create(client, payload, **headers):
    return client.post("/api/v1/storybook/create", payload, format="json", headers=headers)


def lines_of(detail: dict) -> list[dict]:
    return [line for page in detail["pages"] for line in page["lines"]]


def code(response) -> str:
    return response.json()["error"]["code"]


# --- create and narrate ----------------------------------------------------------------------------

@pytest.mark.smoke
def test_a_book_is_narrated_line_by_line_and_becomes_ready(auth_client, user, narrator,
                                                            django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):  # Q_SYNC: the lines render inline
        response = create(auth_client, book_payload(narrator))
    assert response.status_code == 202, response.content
    book_id = response.json()["id"]
    detail = auth_client.get(f"/api/v1/storybook/books/{book_id}").json()
    assert detail["status"] == "ready" and detail["progress"] == {"done": 4, "failed": 0, "total": 4}
    assert [p["number"] for p in detail["pages"]] == [1, 2]
    for line in lines_of(detail):
        assert line["status"] == "succeeded" and line["audio_url"] and line["duration_ms"] > 0
        assert [w["word"] for w in line["words"]] == line["text"].replace(":", "").replace(".", "").split()
    jobs = SpeechJob.objects.filter(owner=user, purpose="story_line").order_by("created_at")
    texts = [line["text"] for line in lines_of(detail)]
    assert [j.previous_text for j in jobs] == ["", *texts[:-1]]  # neighbours as context, across pages
    assert [j.next_text for j in jobs] == [*texts[1:], ""]
    assert [b["kind"] for b in detail["batches"]] == ["initial"] and detail["batches"][0]["succeeded"] == 4
    assert auth_client.get("/api/v1/user/me").json()["usage"]["books"] == 1


def test_a_line_without_a_voice_is_read_by_the_narrator_and_one_with_a_voice_by_that_voice(
        auth_client, narrator, other_voice):
    payload = book_payload(narrator, pages=1, lines=2)
    payload["pages"][0]["lines"][1]["voice_id"] = str(other_voice.pk)
    detail = create(auth_client, payload).json()
    assert detail["status"] == "generating"
    assert [line["voice_id"] for line in lines_of(detail)] == [None, str(other_voice.pk)]
    assert sorted(SpeechJob.objects.values_list("provider_voice_id", flat=True)) == ["local-en-us-f", "local-en-us-m"]


def test_the_whole_book_is_reserved_at_once_or_refused(auth_client, user, narrator):
    user.monthly_character_quota = 100
    user.save(update_fields=["monthly_character_quota"])
    response = create(auth_client, book_payload(narrator))  # 4 lines of ~37 characters
    assert response.status_code == 429 and code(response) == "quota_exceeded"
    assert not Book.objects.exists() and not SpeechJob.objects.exists()
    assert create(auth_client, book_payload(narrator, pages=1)).status_code == 202
    assert QuotaMonth.objects.get(user=user).reserved == sum(len(f"Line {i} of page 1: the fox looked up.")
                                                             for i in (1, 2))


def test_bad_voices_and_limits_each_have_their_code(auth_client, user, narrator, settings):
    processing = make_voice(user, status="processing")
    foreign = make_voice(UserFactory())
    assert code(create(auth_client, book_payload(processing))) == "voice_not_ready"
    assert create(auth_client, book_payload(foreign)).status_code == 404
    payload = book_payload(narrator)
    payload["pages"][0]["lines"][0]["voice_id"] = str(foreign.pk)
    assert code(create(auth_client, payload)) == "voice_not_found"
    settings.STORYBOOK_MAX_CHARACTERS = 50
    response = create(auth_client, book_payload(narrator))
    assert response.status_code == 400 and "characters" in response.json()["error"]["details"]["fields"]
    assert not Book.objects.exists()


def test_create_honours_idempotency_key(auth_client, narrator):
    first = create(auth_client, book_payload(narrator), **{"Idempotency-Key": "book-1"})
    again = create(auth_client, book_payload(narrator), **{"Idempotency-Key": "book-1"})
    assert first.status_code == again.status_code == 202 and first.json()["id"] == again.json()["id"]
    assert Book.objects.count() == 1


# --- failures, retry ------------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_lines_that_fail_leave_the_book_partial_and_a_retry_renders_exactly_those(elevenlabs_settings):
    user = UserFactory()
    client = token_client(user)
    voice = make_voice(None, provider="elevenlabs", provider_voice_id=elevenlabs_settings.add_voice("Mom"),
                       language="en")
    elevenlabs_settings.fail(el.TTS_TIMESTAMPS, 400, code="invalid_text", times=2)  # permanent
    book_id = create(client, book_payload(voice, pages=2, lines=3)).json()["id"]
    detail = client.get(f"/api/v1/storybook/books/{book_id}").json()
    assert detail["status"] == "partial" and detail["progress"] == {"done": 4, "failed": 2, "total": 6}
    failed = [line for line in lines_of(detail) if line["status"] == "failed"]
    assert len(failed) == 2 and all(line["error"]["code"] and line["audio_url"] is None for line in failed)

    calls = elevenlabs_settings.count(el.TTS_TIMESTAMPS)
    retried = client.post(f"/api/v1/storybook/books/{book_id}/retry")
    assert retried.status_code == 202
    assert elevenlabs_settings.count(el.TTS_TIMESTAMPS) - calls == 2  # only the failed lines
    detail = client.get(f"/api/v1/storybook/books/{book_id}").json()
    assert detail["status"] == "ready" and detail["progress"]["done"] == 6
    assert [(b["kind"], b["total"], b["succeeded"], b["failed"]) for b in detail["batches"]] == [
        ("initial", 6, 4, 2), ("retry", 2, 2, 0)]
    assert client.post(f"/api/v1/storybook/books/{book_id}/retry").status_code == 400  # nothing left to retry


@pytest.mark.django_db(transaction=True)
def test_progress_ready_and_failed_events_reach_the_owner(monkeypatch, elevenlabs_settings):
    from storybook import services

    events = []
    monkeypatch.setattr(services, "notify_user", lambda owner, kind, data: events.append((kind, data)))
    user = UserFactory()
    voice = make_voice(None, provider="elevenlabs", provider_voice_id=elevenlabs_settings.add_voice("Mom"))
    elevenlabs_settings.fail(el.TTS_TIMESTAMPS, 400, code="invalid_text", times=None)
    book_id = create(token_client(user), book_payload(voice, pages=1, lines=2)).json()["id"]
    kinds = [kind for kind, _ in events]
    assert kinds.count("book.progress") >= 2 and kinds.count("book.failed") == 1 and "book.ready" not in kinds
    assert dict(events)["book.failed"] == {"book_id": book_id, "status": "failed", "done": 0, "failed": 2, "total": 2}


def test_a_voice_that_can_no_longer_be_used_is_409_with_the_lines_it_reads(auth_client, user, narrator,
                                                                          other_voice):
    payload = book_payload(narrator, pages=1, lines=2)
    payload["pages"][0]["lines"][1]["voice_id"] = str(other_voice.pk)
    book_id = create(auth_client, payload).json()["id"]
    SpeechJob.objects.update(status="failed")
    other_voice.moderation_status = "blocked"
    other_voice.save()
    response = auth_client.post(f"/api/v1/storybook/books/{book_id}/retry")
    line_id = lines_of(auth_client.get(f"/api/v1/storybook/books/{book_id}").json())[1]["id"]
    assert response.status_code == 409 and response.json()["error"]["details"]["line_ids"] == [line_id]


# --- cancel, delete ----------------------------------------------------------------------------------------

def test_cancel_stops_queued_lines_and_releases_their_characters(auth_client, user, narrator):
    book_id = create(auth_client, book_payload(narrator)).json()["id"]  # queued: no runner in this test
    assert QuotaMonth.objects.get(user=user).reserved > 0
    response = auth_client.post(f"/api/v1/storybook/books/{book_id}/cancel")
    assert response.status_code == 200
    detail = response.json()
    assert {line["status"] for line in lines_of(detail)} == {"cancelled"} and detail["status"] == "failed"
    assert QuotaMonth.objects.get(user=user).reserved == 0


def test_delete_removes_the_book(auth_client, narrator):
    book_id = create(auth_client, book_payload(narrator)).json()["id"]
    assert auth_client.delete(f"/api/v1/storybook/books/{book_id}").status_code == 204
    assert auth_client.get(f"/api/v1/storybook/books/{book_id}").status_code == 404
    assert auth_client.get("/api/v1/storybook/books").json()["count"] == 0
    assert set(SpeechJob.objects.values_list("status", flat=True)) == {"cancelled"}


# --- edits --------------------------------------------------------------------------------------------------

def test_editing_a_line_requeues_only_that_line(auth_client, narrator, other_voice):
    book_id = create(auth_client, book_payload(narrator)).json()["id"]
    SpeechJob.objects.update(status="succeeded")
    before = {line["id"]: SpeechJob.objects.get(pk=_job_id(line["id"])).pk
              for line in lines_of(auth_client.get(f"/api/v1/storybook/books/{book_id}").json())}
    target = list(before)[1]
    response = auth_client.patch(f"/api/v1/storybook/books/{book_id}/lines/{target}",
                                 {"text": "A brand new line."}, format="json")
    assert response.status_code == 200
    line = next(line for line in lines_of(response.json()) if line["id"] == target)
    assert line["text"] == "A brand new line." and line["status"] == "queued"  # read after write: fresh
    after = {line_id: _job_id(line_id) for line_id in before}
    assert [line_id for line_id in before if before[line_id] != after[line_id]] == [target]
    response = auth_client.patch(f"/api/v1/storybook/books/{book_id}/lines/{target}",
                                 {"voice_id": str(other_voice.pk), "speaker": "Owl"}, format="json")
    line = next(line for line in lines_of(response.json()) if line["id"] == target)
    assert (line["voice_id"], line["speaker"]) == (str(other_voice.pk), "Owl")
    assert SpeechJob.objects.get(pk=_job_id(target)).provider_voice_id == "local-en-us-m"


def test_a_new_narrator_requeues_the_lines_the_narrator_reads(auth_client, narrator, other_voice):
    payload = book_payload(narrator, pages=1, lines=3)
    payload["pages"][0]["lines"][0]["voice_id"] = str(other_voice.pk)
    book_id = create(auth_client, payload).json()["id"]
    SpeechJob.objects.update(status="succeeded")
    lines = lines_of(auth_client.get(f"/api/v1/storybook/books/{book_id}").json())
    jobs = {line["id"]: _job_id(line["id"]) for line in lines}
    response = auth_client.patch(f"/api/v1/storybook/books/{book_id}", {"narrator_voice_id": str(other_voice.pk),
                                                                      "title": "New title"}, format="json")
    assert response.json()["title"] == "New title" and response.json()["status"] == "generating"
    changed = [line["id"] for line in lines if _job_id(line["id"]) != jobs[line["id"]]]
    assert changed == [lines[1]["id"], lines[2]["id"]]  # not the line with its own voice


def test_pages_and_lines_can_be_added_reordered_and_deleted(auth_client, narrator):
    book_id = create(auth_client, book_payload(narrator, pages=1, lines=2)).json()["id"]
    url = f"/api/v1/storybook/books/{book_id}"
    detail = auth_client.post(f"{url}/pages", {"text": "Page two", "lines": [{"text": "Hello moon."}]},
                              format="json").json()
    assert [p["number"] for p in detail["pages"]] == [1, 2] and detail["progress"]["total"] == 3
    page_one = detail["pages"][0]["id"]
    detail = auth_client.post(f"{url}/pages/{page_one}/lines", {"text": "A third line.", "speaker": "Owl"},
                              format="json").json()
    first, second, third = detail["pages"][0]["lines"]
    detail = auth_client.patch(f"{url}/lines/{third['id']}", {"order": 1}, format="json").json()
    assert [line["id"] for line in detail["pages"][0]["lines"]] == [third["id"], first["id"], second["id"]]
    detail = auth_client.patch(f"{url}/pages/{detail['pages'][1]['id']}", {"number": 1}, format="json").json()
    assert [p["text"] for p in detail["pages"]] == ["Page two", "Page 1"]
    assert auth_client.delete(f"{url}/lines/{first['id']}").status_code == 204
    assert auth_client.delete(f"{url}/pages/{detail['pages'][0]['id']}").status_code == 204
    detail = auth_client.get(url).json()
    assert [p["number"] for p in detail["pages"]] == [1]
    assert [line["order"] for line in detail["pages"][0]["lines"]] == [1, 2]


def _job_id(line_id):
    from storybook.models import Line

    return Line.objects.get(pk=line_id).speech_job_id


# --- access, caching ------------------------------------------------------------------------------------------

def test_another_users_book_pages_and_lines_are_404_on_every_verb(auth_client, narrator, other_user):
    detail = create(auth_client, book_payload(narrator)).json()
    book, page, line = detail["id"], detail["pages"][0]["id"], detail["pages"][0]["lines"][0]["id"]
    auth_client.get(f"/api/v1/storybook/books/{book}")  # cached for the owner
    intruder = token_client(other_user)
    base = f"/api/v1/storybook/books/{book}"
    for method, path, body in [
        ("get", base, None), ("patch", base, {"title": "x"}), ("delete", base, None),
        ("post", f"{base}/retry", None), ("post", f"{base}/cancel", None),
        ("post", f"{base}/pages", {"text": "x"}), ("patch", f"{base}/pages/{page}", {"text": "x"}),
        ("delete", f"{base}/pages/{page}", None), ("post", f"{base}/pages/{page}/lines", {"text": "x"}),
        ("patch", f"{base}/lines/{line}", {"text": "x"}), ("delete", f"{base}/lines/{line}", None),
    ]:
        response = getattr(intruder, method)(path, body, format="json")
        assert (response.status_code, code(response)) == (404, "book_not_found"), (method, path)
    assert intruder.get("/api/v1/storybook/books").json()["count"] == 0
    missing = "00000000-0000-4000-8000-000000000000"
    assert code(auth_client.get(f"/api/v1/storybook/books/{missing}")) == "book_not_found"
    assert code(auth_client.patch(f"{base}/lines/{missing}", {"text": "x"}, format="json")) == "book_not_found"


def test_cached_list_and_detail_cost_one_query_and_are_fresh_after_a_write(auth_client, user, narrator):
    book_id = create(auth_client, book_payload(narrator)).json()["id"]
    for path in ("/api/v1/storybook/books", f"/api/v1/storybook/books/{book_id}"):
        auth_client.get(path)
        with CaptureQueriesContext(connection) as queries:
            assert auth_client.get(path).status_code == 200
        assert len(queries) == 1, [q["sql"] for q in queries.captured_queries]  # the token lookup
    auth_client.patch(f"/api/v1/storybook/books/{book_id}", {"title": "Renamed"}, format="json")
    assert auth_client.get(f"/api/v1/storybook/books/{book_id}").json()["title"] == "Renamed"
    assert auth_client.get("/api/v1/storybook/books").json()["results"][0]["title"] == "Renamed"


@pytest.mark.django_db(transaction=True)
def test_a_line_finishing_refreshes_the_cached_detail(narrator):
    from tts import runner

    user = UserFactory()
    client = token_client(user)
    from storybook import services as book_services

    original = book_services.speech_jobs_wake
    book_services.speech_jobs_wake = lambda **kwargs: None  # the test runs the lines itself
    try:
        book_id = create(client, book_payload(narrator, pages=1, lines=1)).json()["id"]
    finally:
        book_services.speech_jobs_wake = original
    assert lines_of(client.get(f"/api/v1/storybook/books/{book_id}").json())[0]["status"] == "queued"  # cached
    job_id, token = runner.speech_job_claim_next()
    runner.speech_job_run(job_id=job_id, run_token=token)
    detail = client.get(f"/api/v1/storybook/books/{book_id}").json()
    assert detail["status"] == "ready" and lines_of(detail)[0]["status"] == "succeeded"


# --- read-along and whole-book audio ---------------------------------------------------------------------------

def _words(text: str) -> list[str]:
    return [w.strip(".,:;!?") for w in text.split() if w.strip(".,:;!?")]


@pytest.mark.django_db(transaction=True)
def test_every_line_carries_its_words_in_order_with_elevenlabs_too(elevenlabs_settings):
    user = UserFactory()
    client = token_client(user)
    voice = make_voice(None, provider="elevenlabs", provider_voice_id=elevenlabs_settings.add_voice("Mom"))
    book_id = create(client, book_payload(voice, pages=1, lines=3)).json()["id"]
    for line in lines_of(client.get(f"/api/v1/storybook/books/{book_id}").json()):
        assert [w["word"].strip(".,:;!?") for w in line["words"]] == _words(line["text"])
        starts = [w["start_ms"] for w in line["words"]]
        assert starts == sorted(starts) and all(w["end_ms"] >= w["start_ms"] for w in line["words"])


@pytest.mark.django_db(transaction=True)
def test_the_whole_book_is_one_file_whose_index_matches_its_audio(narrator):
    import io

    import av
    from rest_framework.test import APIClient

    user = UserFactory()
    client = token_client(user)
    book_id = create(client, book_payload(narrator, pages=2, lines=2)).json()["id"]  # ready: the file is built
    response = client.get(f"/api/v1/storybook/books/{book_id}/audio")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ready" and [p["number"] for p in body["pages"]] == [1, 2]
    starts = [line["start_ms"] for page in body["pages"] for line in page["lines"]]
    assert len(starts) == 4 and starts == sorted(starts) and starts[0] == 0
    assert all(line["end_ms"] > line["start_ms"] for page in body["pages"] for line in page["lines"])
    audio = APIClient().get(body["audio_url"])  # signed: no credentials needed
    data = b"".join(audio.streaming_content)
    with av.open(io.BytesIO(data)) as container:
        seconds = sum(frame.samples for frame in container.decode(audio=0)) / container.streams.audio[0].rate
    assert abs(seconds * 1000 - body["duration_ms"]) < 150  # mp3 framing
    assert body["pages"][-1]["lines"][-1]["end_ms"] < body["duration_ms"]
    ranged = APIClient().get(body["audio_url"], HTTP_RANGE="bytes=0-99")
    assert ranged.status_code == 206 and len(b"".join(ranged.streaming_content)) == 100

    # A changed line makes the file stale: 202 while it is rebuilt, then the new one.
    line_id = body["pages"][0]["lines"][0]["line_id"]
    client.patch(f"/api/v1/storybook/books/{book_id}/lines/{line_id}", {"text": "A new first line."}, format="json")
    again = client.get(f"/api/v1/storybook/books/{book_id}/audio").json()
    assert again["status"] == "ready" and again["audio_url"] != body["audio_url"]
    assert again["pages"][0]["lines"][0]["end_ms"] != body["pages"][0]["lines"][0]["end_ms"]
    from django.core.files.storage import default_storage

    from tts.models import AudioClip

    files = [c.file.name for c in AudioClip.objects.filter(provider="book")]
    assert len(files) == 1 and default_storage.exists(files[0])  # the old whole-book file is gone
    assert APIClient().get(body["audio_url"]).status_code == 404
    client.delete(f"/api/v1/storybook/books/{book_id}")
    assert not AudioClip.objects.filter(provider="book").exists() and not default_storage.exists(files[0])


def test_a_book_still_generating_answers_building(auth_client, narrator):
    book_id = create(auth_client, book_payload(narrator)).json()["id"]  # queued: nothing runs here
    response = auth_client.get(f"/api/v1/storybook/books/{book_id}/audio")
    assert response.status_code == 202 and response.json() == {"status": "building"}


def test_admin_shows_lines_with_players_and_retries_failed_lines(auth_client, user, narrator, client,
                                                                 django_capture_on_commit_callbacks):
    from accounts.models import User

    with django_capture_on_commit_callbacks(execute=True):
        book_id = create(auth_client, book_payload(narrator, pages=1, lines=2)).json()["id"]
    admin = User.objects.create_superuser(email="ops@example.com", password="x-long-password-1")
    client.force_login(admin)
    page = client.get(f"/admin/storybook/book/{book_id}/change/").content.decode()
    assert page.count("<audio controls") == 2 and "Line 1 of page 1" in page
    SpeechJob.objects.filter(purpose="story_line").update(status="failed")
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/admin/storybook/book/", {"action": "retry", "_selected_action": [book_id]})
    assert Book.objects.get(pk=book_id).status == "ready"
    assert Book.objects.get(pk=book_id).batches.count() == 2


# --- images ----------------------------------------------------------------------------------------------------

def png(width: int = 8, height: int = 8) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(buf, "PNG")
    return buf.getvalue()


def upload(name: str, data: bytes, content_type: str = "image/png"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type)


def create_with_images(client, payload, images, cover=None):
    import json

    data = {"payload": json.dumps(payload), "images": images}
    if cover is not None:
        data["cover"] = cover
    return client.post("/api/v1/storybook/create/with-images", data, format="multipart")


def test_a_book_with_images_serves_each_by_a_signed_url(auth_client, narrator):
    from rest_framework.test import APIClient

    response = create_with_images(auth_client, book_payload(narrator, pages=2),
                                  [upload("p1.png", png()), upload("p2.png", png(16, 9))], upload("c.png", png()))
    assert response.status_code == 202, response.content
    detail = response.json()
    urls = [detail["cover_url"], *(page["image_url"] for page in detail["pages"])]
    assert all(urls)
    fetched = APIClient().get(urls[2])  # an <img> tag: no credentials
    assert fetched.status_code == 200 and fetched["Content-Type"] == "image/png"
    assert b"".join(fetched.streaming_content) == png(16, 9)
    assert APIClient().get(urls[2][:-3] + "xyz").status_code == 404  # tampered
    assert auth_client.get("/api/v1/storybook/books").json()["results"][0]["cover_url"]

    page_id = detail["pages"][0]["id"]
    replaced = auth_client.put(f"/api/v1/storybook/books/{detail['id']}/pages/{page_id}/image",
                               {"image": upload("new.png", png(4, 4))}, format="multipart")
    assert replaced.status_code == 200 and replaced.json()["pages"][0]["image_url"] != urls[1]
    cover = auth_client.put(f"/api/v1/storybook/books/{detail['id']}/cover", {"image": upload("c2.png", png(5, 5))},
                            format="multipart")
    assert cover.status_code == 200 and cover.json()["cover_url"] != urls[0]


@pytest.mark.parametrize("data", [b"not an image at all", png()[:40], b""])
def test_anything_that_is_not_a_real_image_is_invalid_image_and_nothing_is_created(auth_client, narrator, data):
    response = create_with_images(auth_client, book_payload(narrator, pages=1), [upload("x.png", data)])
    assert (response.status_code, code(response)) in {(400, "invalid_image"), (400, "validation_error")}
    assert not Book.objects.exists()


def test_an_image_bomb_is_refused_from_its_header(auth_client, narrator, settings):
    settings.STORYBOOK_IMAGE_MAX_PIXELS = 10_000
    response = create_with_images(auth_client, book_payload(narrator, pages=1), [upload("big.png", png(200, 200))])
    assert code(response) == "invalid_image" and "pixels" in response.json()["error"]["details"]["reason"]


def test_images_are_at_most_one_per_page_and_the_payload_real_json(auth_client, narrator):
    images = [upload(f"p{i}.png", png()) for i in range(3)]
    response = create_with_images(auth_client, book_payload(narrator, pages=2), images)
    assert code(response) == "validation_error"  # more images than pages
    detail = create_with_images(auth_client, book_payload(narrator, pages=2), [upload("p1.png", png())]).json()
    assert detail["pages"][0]["image_url"] and detail["pages"][1]["image_url"] is None  # the first pages
    for payload in ("{" * 5000, "[" * 5000 + "]" * 5000, "[" * 40 + "]" * 40):
        bad = auth_client.post("/api/v1/storybook/create/with-images", {"payload": payload}, format="multipart")
        assert (bad.status_code, code(bad)) == (400, "malformed_json"), payload[:10]


def test_account_cleanup_removes_books_and_their_files(auth_client, user, narrator,
                                                       django_capture_on_commit_callbacks):
    from django.core.files.storage import default_storage

    from accounts.services import account_cleanup

    detail = create_with_images(auth_client, book_payload(narrator, pages=1), [upload("p.png", png())],
                                upload("c.png", png())).json()
    names = list(default_storage.listdir(f"book-images/{detail['id']}")[1])
    assert len(names) == 2
    assert auth_client.delete("/api/v1/user/me").status_code == 202
    with django_capture_on_commit_callbacks(execute=True):  # files go once the delete commits
        assert account_cleanup(user_id=user.pk) is True
    assert not Book.objects.filter(pk=detail["id"]).exists()
    assert default_storage.listdir(f"book-images/{detail['id']}")[1] == []



def test_a_story_lines_job_is_cancelled_with_its_book_not_alone(auth_client, narrator):
    book_id = create(auth_client, book_payload(narrator, pages=1, lines=1)).json()["id"]
    job = SpeechJob.objects.get(purpose="story_line")
    response = auth_client.post(f"/api/v1/tts/jobs/{job.pk}/cancel")
    assert response.status_code == 409 and code(response) == "job_not_cancellable"
    assert auth_client.post(f"/api/v1/storybook/books/{book_id}/cancel").json()["status"] == "failed"


def test_another_users_request_for_a_book_never_hides_it_from_its_owner(auth_client, user, narrator, other_user):
    from accounts.models import User

    book_id = create(auth_client, book_payload(narrator)).json()["id"]
    intruder = token_client(other_user)
    User.objects.filter(pk=other_user.pk).update(cache_version=User.objects.get(pk=user.pk).cache_version)
    assert intruder.get(f"/api/v1/storybook/books/{book_id}").status_code == 404  # same version number
    assert auth_client.get(f"/api/v1/storybook/books/{book_id}").status_code == 200


def test_cancelling_a_settled_book_announces_nothing_and_deleting_its_failed_lines_makes_it_ready(
        auth_client, user, narrator, monkeypatch, django_capture_on_commit_callbacks):
    from storybook import services

    with django_capture_on_commit_callbacks(execute=True):
        detail = create(auth_client, book_payload(narrator, pages=1, lines=2)).json()
    book_id = detail["id"]
    failed_line = lines_of(auth_client.get(f"/api/v1/storybook/books/{book_id}").json())[1]["id"]
    SpeechJob.objects.filter(pk=_job_id(failed_line)).update(status="failed")
    Book.objects.filter(pk=book_id).update(status="partial")
    events = []
    monkeypatch.setattr(services, "notify_user", lambda owner, kind, data: events.append(kind))
    with django_capture_on_commit_callbacks(execute=True):
        auth_client.post(f"/api/v1/storybook/books/{book_id}/cancel")
    assert events == [] and Book.objects.get(pk=book_id).status == "partial"
    with django_capture_on_commit_callbacks(execute=True):
        assert auth_client.delete(f"/api/v1/storybook/books/{book_id}/lines/{failed_line}").status_code == 204
    assert Book.objects.get(pk=book_id).status == "ready" and events == ["book.ready"]
