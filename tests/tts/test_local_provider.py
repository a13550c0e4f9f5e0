"""The offline `local` provider, for real: eSpeak NG speech, PyAV decoding, clones in the database."""

import io
import json
import math
import os
import subprocess
import sys
import time
from array import array
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import av
import pytest
from django.db import connection
from django.utils import timezone

from tts.models import LocalProviderVoice
from tts.providers import espeak
from tts.providers.base import VOICE_PROCESSING, VOICE_READY, ProviderError, SampleFile, SpeechRequest
from tts.providers.local import LocalProvider, wav_from_pcm
from tts.providers.registry import get_provider

ROOT = Path(__file__).resolve().parents[2]
STORY = ("Once upon a time there was a little bear who lived in a big forest with his mother and father. "
         "Every morning he walked to the river to catch fish.")

pytestmark = pytest.mark.smoke


@pytest.fixture
def provider() -> LocalProvider:
    return LocalProvider()


def decoded_duration(audio: bytes) -> float:
    """Seconds of audio as PyAV decodes them (not what the header claims)."""
    with av.open(io.BytesIO(audio)) as container:
        stream = container.streams.audio[0]
        return sum(frame.samples for frame in container.decode(stream)) / stream.rate


def espeak_sample(pitch: int, voice: str = "en-us", text: str = STORY) -> SampleFile:
    result = espeak.synthesize(text, voice=voice, pitch=pitch)
    return SampleFile(f"pitch-{pitch}.wav", wav_from_pcm(result.pcm, result.sample_rate), "audio/wav")


def encoded_tone(f0: float, container: str, codec: str, rate: int = 16000, seconds: float = 2.0) -> bytes:
    """A buzz with voice-like harmonics at `f0`, encoded as a phone would upload it."""
    n = int(rate * seconds)
    pcm = array("h", (int(6000 * sum(math.sin(2 * math.pi * f0 * k * i / rate) / k for k in range(1, 6)))
                      for i in range(n)))
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        for start in range(0, n, 1024):
            chunk = pcm[start:start + 1024]
            frame = av.AudioFrame(format="s16", layout="mono", samples=len(chunk))
            frame.sample_rate, frame.pts = rate, start
            frame.planes[0].update(chunk.tobytes())
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buffer.getvalue()


def speak(provider: LocalProvider, voice_id: str, text: str, **kwargs) -> tuple[bytes, list]:
    result = provider.synthesize(SpeechRequest(provider_voice_id=voice_id, text=text, with_timestamps=True, **kwargs))
    return result.audio, result.words


# --- speech --------------------------------------------------------------------------------

def test_synthesize_returns_decodable_audio_that_fits_the_text(provider):
    short = "The bear woke up."
    result = provider.synthesize(SpeechRequest(provider_voice_id="local-en-us-f", text=STORY,
                                               output_format="wav_22050"))
    short_result = provider.synthesize(SpeechRequest(provider_voice_id="local-en-us-f", text=short,
                                                     output_format="wav_22050"))

    assert result.mime_type == "audio/wav" and result.audio[:4] == b"RIFF"
    assert result.character_cost == len(STORY) and result.request_id
    assert result.words is None
    duration, short_duration = decoded_duration(result.audio), decoded_duration(short_result.audio)
    words = len(STORY.split())
    assert 0.2 * words < duration < 1.0 * words
    assert short_duration < duration / 3


@pytest.mark.parametrize("output_format, container, rate", [
    ("mp3_44100_128", "mp3", 44100), ("mp3_22050_32", "mp3", 22050), ("wav_16000", "wav", 16000),
    ("opus_48000_64", "opus", 48000)])
def test_clips_come_in_the_format_asked_for(provider, output_format, container, rate):
    from tts.audio import decode_audio, mime_type_for

    result = provider.synthesize(SpeechRequest(provider_voice_id="local-en-us-f", text="The bear woke up.",
                                               output_format=output_format))
    decoded = decode_audio(result.audio)
    assert (decoded.format, decoded.sample_rate) == (container, rate)
    assert result.mime_type == mime_type_for(output_format) and 0.5 < decoded.duration_seconds < 5


@pytest.mark.parametrize("output_format, width, rate", [("pcm_16000", 2, 16000), ("ulaw_8000", 1, 8000)])
def test_raw_formats_have_the_length_of_their_rate(provider, output_format, width, rate):
    wav = provider.synthesize(SpeechRequest(provider_voice_id="local-en-us-f", text="The bear woke up.",
                                            output_format="wav_22050"))
    raw = provider.synthesize(SpeechRequest(provider_voice_id="local-en-us-f", text="The bear woke up.",
                                            output_format=output_format))
    seconds = decoded_duration(wav.audio)
    assert abs(len(raw.audio) / (width * rate) - seconds) < 0.05


def test_word_timings_one_per_word_in_order_inside_the_audio(provider):
    audio, words = speak(provider, "local-en-us-m", STORY)

    assert [w.word for w in words] == [token.strip(".,") for token in STORY.split()]
    duration_ms = decoded_duration(audio) * 1000
    for previous, word in zip(words, words[1:]):
        assert previous.start_ms < word.start_ms and previous.end_ms == word.start_ms
    assert words[0].start_ms == 0 and words[-1].end_ms <= duration_ms + 1
    assert all(w.end_ms > w.start_ms for w in words)


def test_korean_synthesis_times_every_word(provider):
    # eSpeak itself sends no event for some Korean words ("마리가", "살았어요"); every word still gets one.
    text = "옛날 옛적에 작은 곰 한 마리가 엄마 아빠와 함께 살았어요."
    audio, words = speak(provider, "local-ko-f", text)

    assert decoded_duration(audio) > 2
    assert [w.word for w in words] == [token.strip(".") for token in text.split()]
    starts = [w.start_ms for w in words]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)


def test_english_and_korean_voices_all_speak(provider):
    for voice in provider.list_default_voices():
        text = {"ko": "안녕, 작은 곰아.", "en": "Hello, little bear.", "ja": "こんにちは、くまさん。"}[voice.language]
        audio, _ = speak(provider, voice.provider_voice_id, text)
        assert decoded_duration(audio) > 0.5, voice.provider_voice_id


def test_japanese_reads_kana_and_refuses_kanji(provider):
    audio, words = speak(provider, "local-ja-f", "むかし むかし あるところに おじいさんが いました。")
    assert decoded_duration(audio) > 1.5 and len(words) == 5

    with pytest.raises(ProviderError) as exc:
        speak(provider, "local-ja-f", "今日は良い天気です")
    assert (exc.value.code, exc.value.status) == ("validation_error", 400)


def test_speed_setting_maps_to_the_speaking_rate(provider):
    slow, _ = speak(provider, "local-en-us-f", STORY, voice_settings={"speed": 0.7, "stability": 0.5})
    fast, _ = speak(provider, "local-en-us-f", STORY, voice_settings={"speed": 1.2})

    assert decoded_duration(fast) < decoded_duration(slow) * 0.75


def test_request_language_overrides_the_voice_language(provider):
    korean, _ = speak(provider, "local-en-us-f", "안녕하세요", language="ko")
    spelled, _ = speak(provider, "local-en-us-f", "안녕하세요")
    assert korean != spelled

    with pytest.raises(ProviderError) as exc:
        speak(provider, "local-en-us-f", "hello", language="xx")
    assert (exc.value.code, exc.value.status) == ("validation_error", 400)


def test_empty_text_is_rejected(provider):
    with pytest.raises(ProviderError) as exc:
        speak(provider, "local-en-us-f", "  ")
    assert (exc.value.code, exc.value.status) == ("validation_error", 400)


def test_registry_serves_the_local_provider():
    assert isinstance(get_provider("local"), LocalProvider)


# --- voices --------------------------------------------------------------------------------

def test_default_voices(provider):
    voices = {v.provider_voice_id: v for v in provider.list_default_voices()}

    assert {"local-ko-f", "local-ko-m", "local-en-us-f", "local-en-us-m"} <= voices.keys()
    assert {v.language for v in voices.values()} == {"ko", "en", "ja"}
    assert all(v.category == "premade" and v.status == VOICE_READY and v.name for v in voices.values())
    assert voices["local-ko-f"].gender == "female" and voices["local-en-us-m"].gender == "male"
    assert provider.get_voice("local-ko-m") == voices["local-ko-m"]


@pytest.mark.django_db
def test_clone_pitch_follows_the_speaker(provider):
    low = provider.clone_voice(name="Low", samples=[espeak_sample(20)])
    high = provider.clone_voice(name="High", samples=[espeak_sample(80)])

    low_row = LocalProviderVoice.objects.get(provider_voice_id=low.provider_voice_id)
    high_row = LocalProviderVoice.objects.get(provider_voice_id=high.provider_voice_id)
    assert low_row.measured_f0_hz < high_row.measured_f0_hz
    assert low_row.pitch < high_row.pitch
    # The calibration inverts eSpeak's own pitch scale: a sample at pitch p clones to about p.
    assert abs(low_row.pitch - 20) <= 12 and abs(high_row.pitch - 80) <= 12
    assert low_row.gender == high_row.gender == "male"
    assert low_row.espeak_voice == "en-us+m3"


@pytest.mark.django_db
@pytest.mark.parametrize("f0, container, codec, gender", [(120, "mp3", "libmp3lame", "male"),
                                                          (230, "ipod", "aac", "female")])
def test_clone_measures_the_pitch_of_compressed_uploads(provider, f0, container, codec, gender):
    clone = provider.clone_voice(name="Tone", samples=[SampleFile("tone", encoded_tone(f0, container, codec))])

    row = LocalProviderVoice.objects.get(provider_voice_id=clone.provider_voice_id)
    assert abs(row.measured_f0_hz - f0) / f0 < 0.03
    assert row.gender == gender


@pytest.mark.django_db
def test_clone_language_and_gender_from_labels_or_pitch(provider):
    sample = espeak_sample(50, voice="ko+f3", text="옛날 옛적에 작은 곰이 살았어요. 곰은 매일 아침 강으로 갔어요.")
    korean = provider.clone_voice(name="엄마", samples=[sample], labels={"language": "ko-KR"}, description="Mum")
    labelled = provider.clone_voice(name="Dad", samples=[espeak_sample(50)], labels={"gender": "female"})

    voice = provider.get_voice(korean.provider_voice_id)
    assert (voice.language, voice.gender, voice.category, voice.name, voice.description) == (
        "ko", "female", "cloned", "엄마", "Mum")
    assert voice.labels == {"language": "ko-KR"}
    assert LocalProviderVoice.objects.get(provider_voice_id=korean.provider_voice_id).espeak_voice == "ko+f3"
    assert LocalProviderVoice.objects.get(provider_voice_id=labelled.provider_voice_id).espeak_voice == "en-us+f3"


@pytest.mark.django_db
def test_synthesis_with_a_clone_uses_its_pitch(provider):
    from tts.providers.local import decode_for_analysis, estimate_f0

    low = provider.clone_voice(name="Low", samples=[espeak_sample(10)])
    high = provider.clone_voice(name="High", samples=[espeak_sample(90)])
    low_audio, _ = speak(provider, low.provider_voice_id, STORY)
    high_audio, _ = speak(provider, high.provider_voice_id, STORY)

    low_f0 = estimate_f0([decode_for_analysis(SampleFile("low.wav", low_audio))])
    high_f0 = estimate_f0([decode_for_analysis(SampleFile("high.wav", high_audio))])
    assert high_f0 > low_f0 * 1.4
    measured = LocalProviderVoice.objects.get(provider_voice_id=high.provider_voice_id).measured_f0_hz
    assert abs(high_f0 - measured) / measured < 0.15  # the clone speaks at the speaker's pitch


@pytest.mark.django_db
@pytest.mark.parametrize("data", [b"", b"this is not audio at all", bytes(range(256)) * 40])
def test_clone_refuses_non_audio(provider, data):
    with pytest.raises(ProviderError) as exc:
        provider.clone_voice(name="Bad", samples=[espeak_sample(50), SampleFile("notes.wav", data)])
    assert exc.value.code == "invalid_audio" and exc.value.status == 400
    assert not LocalProviderVoice.objects.exists()


@pytest.mark.django_db
def test_clone_refuses_silence(provider):
    silence = SampleFile("silence.wav", wav_from_pcm(b"\0\0" * 22050 * 2, 22050))
    with pytest.raises(ProviderError) as exc:
        provider.clone_voice(name="Quiet", samples=[silence])
    assert exc.value.code == "invalid_audio"


@pytest.mark.django_db
def test_clone_is_processing_then_ready(provider, settings):
    settings.LOCAL_CLONE_PROCESSING_SECONDS = 30
    clone = provider.clone_voice(name="Mum", samples=[espeak_sample(50)])
    assert provider.get_voice(clone.provider_voice_id).status == VOICE_PROCESSING

    LocalProviderVoice.objects.update(ready_at=timezone.now() - timedelta(seconds=1))
    assert provider.get_voice(clone.provider_voice_id).status == VOICE_READY


@pytest.mark.django_db
def test_unknown_and_deleted_voices_are_not_found(provider, django_assert_num_queries):
    clone = provider.clone_voice(name="Mum", samples=[espeak_sample(50)])
    gone = provider.clone_voice(name="Gone", samples=[espeak_sample(50)])
    provider.delete_voice(gone.provider_voice_id)

    with django_assert_num_queries(1):
        found = provider.get_voices([clone.provider_voice_id, gone.provider_voice_id, "local-ko-f", "nope"])
    assert found.keys() == {clone.provider_voice_id, "local-ko-f"}
    for call in (lambda vid: provider.get_voice(vid), provider.delete_voice,
                 lambda vid: provider.synthesize(SpeechRequest(provider_voice_id=vid, text="hi"))):
        for vid in ("nope", gone.provider_voice_id):
            with pytest.raises(ProviderError) as exc:
                call(vid)
            assert exc.value.code == "voice_not_found" and exc.value.status == 404


@pytest.mark.django_db
def test_account_limits_count_live_clones(provider, settings):
    settings.LOCAL_VOICE_LIMIT = 2
    first = provider.clone_voice(name="One", samples=[espeak_sample(50)])
    provider.clone_voice(name="Two", samples=[espeak_sample(50)])
    limits = provider.account_limits()
    assert (limits.voice_slots_used, limits.voice_limit) == (2, 2)
    assert limits.character_limit - limits.character_count > 10**8

    with pytest.raises(ProviderError) as exc:
        provider.clone_voice(name="Three", samples=[espeak_sample(50)])
    assert exc.value.code == "voice_limit_reached"

    provider.delete_voice(first.provider_voice_id)
    assert provider.account_limits().voice_slots_used == 1
    provider.clone_voice(name="Three", samples=[espeak_sample(50)])


# --- another process -----------------------------------------------------------------------

CHILD = """
import json, sys, time
import django
django.setup()
from tts.providers.local import LocalProvider

provider = LocalProvider()
print("started", flush=True)
voice_id = sys.stdin.readline().strip()
seen = [provider.get_voice(voice_id).status]
deadline = time.monotonic() + 10
while seen[-1] != "ready" and time.monotonic() < deadline:
    time.sleep(0.1)
    seen.append(provider.get_voice(voice_id).status)
print(json.dumps(sorted(set(seen), key=seen.index)))
"""


def child_database_url() -> str:
    """DATABASE_URL for another process to reach this test's (committed) database."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        assert not connection.is_in_memory_db(), "settings give SQLite test databases a file"
        return f"sqlite:///{db['NAME']}"
    return urlunsplit(urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{db['NAME']}"))


@pytest.mark.django_db(transaction=True)
def test_another_process_sees_the_clone_become_ready(provider, settings):
    settings.LOCAL_CLONE_PROCESSING_SECONDS = 1
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": child_database_url(),
           "LOCAL_CLONE_PROCESSING_SECONDS": "1"}
    child = subprocess.Popen([sys.executable, "-c", CHILD], cwd=ROOT, env=env, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # Clone only once the child has started Django, so its first look comes within the window.
        assert child.stdout.readline() == "started\n", child.stderr.read()
        clone = provider.clone_voice(name="Mum", samples=[espeak_sample(50)])
        started = time.monotonic()
        out, err = child.communicate(clone.provider_voice_id + "\n", timeout=30)
    finally:
        child.kill()
    assert child.returncode == 0, err
    assert json.loads(out) == [VOICE_PROCESSING, VOICE_READY]
    assert time.monotonic() - started >= 0.9
