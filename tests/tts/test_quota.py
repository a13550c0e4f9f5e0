"""The monthly character quota and the clip content hash."""

import threading

import pytest
from django.db import connection

from config.api.errors import QuotaExceeded
from tts.models import QuotaMonth
from tts.quota import current_month, quota_release, quota_reserve, quota_settle, quota_summary
from tts.services import speech_content_hash

INPUTS = dict(provider="elevenlabs", provider_voice_id="v1", model_id="eleven_multilingual_v2", language="ko",
              text="옛날 옛적에", previous_text="", next_text="호랑이가 살았어요", voice_settings={"stability": 0.5},
              pronunciation_locators=[], seed=None, output_format="mp3_44100_128")


@pytest.mark.django_db
def test_reserve_settle_release(user):
    user.monthly_character_quota = 100
    user.save(update_fields=["monthly_character_quota"])
    month = quota_reserve(user=user, characters=60)
    assert month == current_month()
    assert quota_summary(user=user) == {"month": month.strftime("%Y-%m"), "limit": 100, "used": 0, "reserved": 60,
                                        "remaining": 40}
    with pytest.raises(QuotaExceeded) as refused:
        quota_reserve(user=user, characters=41)
    assert refused.value.status == 429 and refused.value.details["remaining"] == 40
    quota_settle(user_id=user.pk, month=month, reserved=60, cost=55)  # the provider charged a little less
    quota_reserve(user=user, characters=30)
    quota_release(user_id=user.pk, month=month, reserved=30)
    assert quota_summary(user=user)["used"] == 55 and quota_summary(user=user)["remaining"] == 45


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_reservations_against_a_quota_for_ten(user):
    user.monthly_character_quota = 100
    user.save(update_fields=["monthly_character_quota"])
    barrier = threading.Barrier(20)
    outcomes: list[str] = []

    def reserve() -> None:
        barrier.wait()
        try:
            quota_reserve(user=user, characters=10)
            outcomes.append("reserved")
        except QuotaExceeded:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=reserve) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes).count("reserved") == 10 and outcomes.count("refused") == 10
    assert QuotaMonth.objects.get(user=user).reserved == 100


def test_every_input_that_changes_the_audio_changes_the_hash():
    base = speech_content_hash(**INPUTS)
    assert speech_content_hash(**INPUTS) == base
    assert speech_content_hash(**{**INPUTS, "voice_settings": {"stability": 0.5}}) == base  # key order is not content
    for name, other in [("provider", "local"), ("provider_voice_id", "v2"), ("model_id", "eleven_flash_v2_5"),
                        ("language", "en"), ("text", "옛날 옛적에!"), ("previous_text", "x"), ("next_text", ""),
                        ("voice_settings", {"stability": 0.6}), ("pronunciation_locators", [{"id": "d"}]),
                        ("seed", 7), ("output_format", "wav_22050")]:
        assert speech_content_hash(**{**INPUTS, name: other}) != base, name
