"""The provider down (the emulator answering 503, or too slow to answer at all): jobs retry, then
fail with `provider_unavailable`; nothing is lost, nothing is charged, and the same jobs succeed
after a retry once the provider is back."""

import pytest

from tests.conftest import token_client
from tests.factories import UserFactory
from tests.fakes import elevenlabs as el
from tests.storybook.test_books import book_payload, create, lines_of
from tests.voices.conftest import make_voice
from tts.models import QuotaMonth, SpeechJob

pytestmark = pytest.mark.django_db(transaction=True)  # wake-ups run on commit, inline (Q_SYNC)


@pytest.fixture
def quick_retries(settings):
    settings.TTS_CALL_ATTEMPTS = 3
    settings.TTS_BACKOFF_BASE_SECONDS = 0.01
    settings.TTS_BACKOFF_MAX_SECONDS = 0.02


@pytest.mark.parametrize("outage", ["503", "timeout"])
def test_an_outage_fails_with_provider_unavailable_and_a_retry_renders_the_same_lines(
        outage, elevenlabs_settings, quick_retries, settings):
    emulator = elevenlabs_settings
    user = UserFactory()
    client = token_client(user)
    voice = make_voice(None, provider="elevenlabs", provider_voice_id=emulator.add_voice("Narrator"), language="en")
    if outage == "503":
        emulator.fail(el.TTS_TIMESTAMPS, 503, times=None)
    else:
        settings.ELEVENLABS_TIMEOUT = 0.3
        emulator.set_latency(el.TTS_TIMESTAMPS, 1.0)

    book_id = create(client, book_payload(voice, pages=2, lines=2)).json()["id"]
    detail = client.get(f"/api/v1/storybook/books/{book_id}").json()
    assert detail["status"] == "failed" and detail["progress"] == {"done": 0, "failed": 4, "total": 4}
    assert {line["error"]["code"] for line in lines_of(detail)} == {"provider_unavailable"}
    jobs = SpeechJob.objects.filter(owner=user)
    assert {job.provider_calls for job in jobs} == {3}  # every attempt was made
    quota = QuotaMonth.objects.get(user=user)
    assert (quota.used, quota.reserved) == (0, 0)  # nothing charged, nothing held
    texts = [line["text"] for line in lines_of(detail)]

    emulator.clear_faults()
    emulator.set_latency(el.TTS_TIMESTAMPS, 0)
    settings.ELEVENLABS_TIMEOUT = 30
    assert client.post(f"/api/v1/storybook/books/{book_id}/retry").status_code == 202
    detail = client.get(f"/api/v1/storybook/books/{book_id}").json()
    assert detail["status"] == "ready" and [line["text"] for line in lines_of(detail)] == texts  # nothing lost
    assert all(line["audio_url"] for line in lines_of(detail))
    quota.refresh_from_db()
    assert quota.reserved == 0 and quota.used == sum(len(text) for text in texts)  # charged once, for the retry
