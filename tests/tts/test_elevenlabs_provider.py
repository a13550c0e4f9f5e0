"""ElevenLabsProvider over the real SDK against the local emulator (tests/fakes/elevenlabs.py)."""

import io
import socket
import struct
import threading
import time
import wave
from datetime import UTC, datetime

import av
import pytest

from tests.fakes import elevenlabs as el
from tests.fakes.elevenlabs import ElevenLabsEmulator
from tts.providers.base import (
    VOICE_FAILED,
    VOICE_PROCESSING,
    VOICE_READY,
    ProviderError,
    SampleFile,
    SpeechRequest,
    WordTiming,
)
from tts.providers.elevenlabs import (
    ERROR_TABLE,
    ElevenLabsProvider,
    classify_error,
    error_from_response,
    mime_type_for,
    parse_retry_after,
    words_from_alignment,
)

pytestmark = pytest.mark.usefixtures("elevenlabs_validated")

MODEL = "eleven_multilingual_v2"


def make_wav(seconds: float = 0.5, rate: int = 16000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(struct.pack("<h", 1000) * int(seconds * rate))
    return buffer.getvalue()


SAMPLE = SampleFile("mom.wav", make_wav(), "audio/wav")


def decoded_seconds(audio: bytes) -> float:
    with av.open(io.BytesIO(audio)) as container:
        stream = container.streams.audio[0]
        return sum(frame.samples for frame in container.decode(stream)) / stream.rate


@pytest.fixture
def emulator(elevenlabs_validated: ElevenLabsEmulator) -> ElevenLabsEmulator:
    return elevenlabs_validated


@pytest.fixture
def provider(emulator: ElevenLabsEmulator) -> ElevenLabsProvider:
    return ElevenLabsProvider(api_key=emulator.api_key, base_url=emulator.base_url, timeout=5.0)


@pytest.fixture
def voice_id(emulator: ElevenLabsEmulator) -> str:
    return emulator.add_voice("Mom", labels={"language": "ko", "gender": "female", "accent": "seoul"})


# --- clone -----------------------------------------------------------------------------------------
def test_clone_voice_sends_name_files_labels_and_description(provider, emulator):
    result = provider.clone_voice(
        name="Mom", samples=[SAMPLE, SampleFile("two.wav", make_wav(0.3), "audio/wav")], description="bedtime",
        labels={"language": "ko", "gender": "female", "accent": "seoul", "mood": "ignored", "age": ""},
    )

    voice = emulator.voice(result.provider_voice_id)
    assert voice["name"] == "Mom" and voice["category"] == "cloned" and voice["description"] == "bedtime"
    assert voice["labels"] == {"language": "ko", "gender": "female", "accent": "seoul"}
    assert [(s["file_name"], s["size_bytes"]) for s in voice["samples"]] == [
        ("mom.wav", len(SAMPLE.data)), ("two.wav", len(make_wav(0.3)))]
    assert result.requires_verification is False
    assert emulator.count(el.ADD_VOICE) == 1


def test_clone_voice_without_labels_or_description(provider, emulator):
    voice = emulator.voice(provider.clone_voice(name="Dad", samples=[SAMPLE]).provider_voice_id)
    assert voice["labels"] == {} and voice["description"] is None


def test_clone_needing_verification_is_processing_until_verified(provider, emulator):
    emulator.account.clone_requires_verification = True
    result = provider.clone_voice(name="Mom", samples=[SAMPLE])

    assert result.requires_verification is True
    assert provider.get_voice(result.provider_voice_id).status == VOICE_PROCESSING
    emulator.set_verification(result.provider_voice_id, requires_verification=True, is_verified=True)
    assert provider.get_voice(result.provider_voice_id).status == VOICE_READY


def test_clone_over_the_voice_limit(provider, emulator):
    emulator.account.voice_limit = 1
    provider.clone_voice(name="One", samples=[SAMPLE])
    with pytest.raises(ProviderError) as caught:
        provider.clone_voice(name="Two", samples=[SAMPLE])
    assert (caught.value.code, caught.value.transient, caught.value.status) == ("voice_limit_reached", False, 409)
    assert "maximum amount of custom voices" in caught.value.message
    assert emulator.count(el.ADD_VOICE) == 2


def test_clone_on_a_plan_without_cloning(provider, emulator):
    emulator.account.can_clone = False
    with pytest.raises(ProviderError) as caught:
        provider.clone_voice(name="Mom", samples=[SAMPLE])
    error = caught.value
    assert (error.code, error.provider_status, error.provider_code) == (
        "provider_rejected", 403, "can_not_use_instant_voice_cloning")


# --- voices ----------------------------------------------------------------------------------------
def test_get_voice_maps_fields(provider, voice_id):
    voice = provider.get_voice(voice_id)
    assert (voice.provider_voice_id, voice.name, voice.category, voice.status) == (
        voice_id, "Mom", "cloned", VOICE_READY)
    assert (voice.language, voice.gender, voice.accent) == ("ko", "female", "seoul")
    assert voice.labels == {"language": "ko", "gender": "female", "accent": "seoul"}


def test_get_premade_voice(provider):
    voice = provider.get_voice("21m00Tcm4TlvDq8ikWAM")
    assert (voice.name, voice.category, voice.status, voice.language) == ("Rachel", "premade", VOICE_READY, "en")
    assert voice.preview_url.endswith("/preview.mp3")


@pytest.mark.parametrize(
    ("category", "requires_verification", "is_verified", "fine_tuning", "expected"),
    [
        ("cloned", False, False, {}, VOICE_READY),
        ("cloned", True, False, {}, VOICE_PROCESSING),
        ("cloned", True, True, {}, VOICE_READY),
        ("cloned", False, False, {MODEL: "failed"}, VOICE_FAILED),
        ("professional", False, False, {}, VOICE_PROCESSING),
        ("professional", False, False, {MODEL: "queued"}, VOICE_PROCESSING),
        ("professional", False, False, {MODEL: "fine_tuning"}, VOICE_PROCESSING),
        ("professional", False, False, {"eleven_flash_v2_5": "fine_tuned"}, VOICE_PROCESSING),
        ("professional", False, False, {MODEL: "fine_tuned"}, VOICE_READY),
        ("professional", True, False, {MODEL: "fine_tuned"}, VOICE_PROCESSING),
        ("professional", False, False, {MODEL: "failed"}, VOICE_FAILED),
    ],
)
def test_voice_state_machine(provider, emulator, category, requires_verification, is_verified, fine_tuning, expected):
    voice_id = emulator.add_voice("V", category=category)
    emulator.set_verification(voice_id, requires_verification=requires_verification, is_verified=is_verified)
    for model, state in fine_tuning.items():
        emulator.set_fine_tuning_state(voice_id, model, state)

    voice = provider.get_voice(voice_id)

    assert voice.status == expected
    assert bool(voice.failure_reason) == (expected == VOICE_FAILED)


def test_state_machine_follows_the_configured_model(emulator, settings):
    settings.ELEVENLABS_MODEL_ID = "eleven_flash_v2_5"
    voice_id = emulator.add_voice("Pro", category="professional", fine_tuning_state={"eleven_flash_v2_5": "fine_tuned"})
    configured = ElevenLabsProvider(api_key=emulator.api_key, base_url=emulator.base_url, timeout=5.0)
    overridden = ElevenLabsProvider(api_key=emulator.api_key, base_url=emulator.base_url, timeout=5.0, model_id=MODEL)
    assert configured.get_voice(voice_id).status == VOICE_READY
    assert overridden.get_voice(voice_id).status == VOICE_PROCESSING


def test_voice_deleted_behind_our_back(provider, emulator, voice_id):
    emulator.remove_voice(voice_id)
    with pytest.raises(ProviderError) as caught:
        provider.get_voice(voice_id)
    assert (caught.value.code, caught.value.transient, caught.value.provider_status) == ("voice_not_found", False, 404)
    assert emulator.count(el.GET_VOICE) == 1


def test_get_voices_250_ids_in_three_calls(provider, emulator):
    ids = [emulator.add_voice(f"Voice {i}") for i in range(250)]

    found = provider.get_voices(ids)

    assert set(found) == set(ids)
    assert all(found[i].status == VOICE_READY for i in ids)
    assert emulator.count(el.SEARCH_VOICES) == 3
    assert emulator.count(method="GET", path="/v2/voices") == 3
    calls = [r for r in emulator.requests if r.endpoint == el.SEARCH_VOICES]
    assert [len(r.query["voice_ids"]) for r in calls] == [100, 100, 50]
    assert all(r.query["page_size"] == ["100"] for r in calls)


def test_get_voices_leaves_out_missing_ids(provider, emulator, voice_id):
    gone = emulator.add_voice("Gone")
    emulator.remove_voice(gone)
    found = provider.get_voices([voice_id, gone, voice_id, "never-existed"])
    assert list(found) == [voice_id]
    assert emulator.count(el.SEARCH_VOICES) == 1


def test_get_voices_of_nothing_calls_nothing(provider, emulator):
    assert provider.get_voices([]) == {}
    assert emulator.count() == 0


def test_get_voices_follows_next_page_token(provider, emulator):
    ids = [emulator.add_voice(f"V{i}") for i in range(3)]
    first = emulator.voice(ids[0])
    # The API may page even within 100 ids: answer the first call with one voice and a token.
    token = "eyJvZmZzZXQiOiAxfQ=="  # the emulator's token for offset 1
    emulator.fail(el.SEARCH_VOICES, 200, body={"voices": [first], "has_more": True, "total_count": 3,
                                               "next_page_token": token})
    found = provider.get_voices(ids)
    assert set(found) == set(ids)
    assert emulator.count(el.SEARCH_VOICES) == 2
    assert emulator.last_request(el.SEARCH_VOICES).query["next_page_token"] == [token]


def test_delete_voice(provider, emulator, voice_id):
    provider.delete_voice(voice_id)
    assert emulator.voice(voice_id) is None
    with pytest.raises(ProviderError) as caught:
        provider.delete_voice(voice_id)
    assert caught.value.code == "voice_not_found"
    assert emulator.count(el.DELETE_VOICE) == 2


def test_list_default_voices_pages_through_all(provider, emulator, voice_id):
    extra = [emulator.add_voice(f"Premade {i}", category="premade") for i in range(100)]

    voices = provider.list_default_voices()

    ids = [v.provider_voice_id for v in voices]
    assert len(ids) == len(set(ids)) == 112
    assert set(extra) <= set(ids) and "21m00Tcm4TlvDq8ikWAM" in ids and voice_id not in ids
    assert {v.category for v in voices} == {"premade"}
    calls = [r for r in emulator.requests if r.endpoint == el.SEARCH_VOICES]
    assert len(calls) == 2
    assert all(r.query["voice_type"] == ["default"] and r.query["page_size"] == ["100"] for r in calls)


def test_account_limits(provider, emulator, voice_id):
    emulator.account.character_count = 1234
    emulator.account.character_limit = 50_000
    emulator.account.voice_limit = 10
    emulator.account.next_reset_unix = 1_900_000_000

    limits = provider.account_limits()

    assert (limits.character_count, limits.character_limit, limits.voice_slots_used, limits.voice_limit) == (
        1234, 50_000, 1, 10)
    assert limits.can_clone is True
    assert limits.next_reset == datetime.fromtimestamp(1_900_000_000, tz=UTC)


# --- speech ----------------------------------------------------------------------------------------
def test_synthesize_returns_real_audio_with_header_metadata(provider, emulator, voice_id):
    text = "Once upon a time there was a little bear."

    result = provider.synthesize(SpeechRequest(provider_voice_id=voice_id, text=text))

    assert result.mime_type == "audio/mpeg"
    assert decoded_seconds(result.audio) == pytest.approx(el.audio_seconds(text), abs=0.05)
    answered = emulator.last_request(el.TTS)
    assert result.request_id == answered.response_headers["request-id"]
    assert result.character_cost == len(text)
    assert result.words is None
    assert emulator.count(el.TTS) == 1


@pytest.mark.parametrize(
    ("output_format", "mime_type"),
    [
        ("mp3_22050_32", "audio/mpeg"),
        ("wav_22050", "audio/wav"),
        ("opus_48000_64", "audio/ogg"),
        ("pcm_16000", "audio/L16;rate=16000"),
        ("ulaw_8000", "audio/basic"),
        ("alaw_8000", "audio/x-alaw-basic"),
    ],
)
def test_output_formats(provider, emulator, voice_id, output_format, mime_type):
    text = "Good night, moon."
    result = provider.synthesize(SpeechRequest(provider_voice_id=voice_id, text=text, output_format=output_format))

    assert result.mime_type == mime_type
    assert emulator.last_request(el.TTS).query["output_format"] == [output_format]
    rate = int(output_format.split("_")[1])
    if output_format.startswith("pcm"):
        assert len(result.audio) == 2 * round(rate * el.audio_seconds(text))
    elif output_format.startswith(("ulaw", "alaw")):
        assert len(result.audio) == round(rate * el.audio_seconds(text))
    else:
        assert decoded_seconds(result.audio) == pytest.approx(el.audio_seconds(text), abs=0.05)


def test_no_language_code_for_multilingual_v2(provider, emulator, voice_id):
    provider.synthesize(SpeechRequest(provider_voice_id=voice_id, text="안녕", model_id=MODEL, language="ko"))
    sent = emulator.last_request(el.TTS).json
    assert sent["model_id"] == MODEL and "language_code" not in sent


@pytest.mark.parametrize("model", ["eleven_flash_v2_5", "eleven_turbo_v2_5"])
def test_language_code_for_v2_5_models(provider, emulator, voice_id, model):
    provider.synthesize(SpeechRequest(provider_voice_id=voice_id, text="안녕", model_id=model, language="ko-KR"))
    sent = emulator.last_request(el.TTS).json
    assert (sent["model_id"], sent["language_code"]) == (model, "ko")


def test_default_model_is_the_configured_one(emulator, voice_id, settings):
    settings.ELEVENLABS_MODEL_ID = "eleven_flash_v2_5"
    provider = ElevenLabsProvider(api_key=emulator.api_key, base_url=emulator.base_url, timeout=5.0)
    provider.synthesize(SpeechRequest(provider_voice_id=voice_id, text="Hi", language="en"))
    sent = emulator.last_request(el.TTS).json
    assert (sent["model_id"], sent["language_code"]) == ("eleven_flash_v2_5", "en")


def test_request_fields_are_passed_through(provider, emulator, voice_id):
    settings = {"stability": 0.4, "similarity_boost": 0.8, "style": 0.1, "use_speaker_boost": True, "speed": 1.1}
    provider.synthesize(SpeechRequest(
        provider_voice_id=voice_id, text="The bear yawned.", model_id="eleven_flash_v2_5", voice_settings=settings,
        seed=42, previous_text="It was late.", next_text="Then he slept.", output_format="mp3_44100_64"))

    recorded = emulator.last_request(el.TTS)
    assert recorded.path == f"/v1/text-to-speech/{voice_id}"
    assert recorded.query["output_format"] == ["mp3_44100_64"]
    assert recorded.json == {
        "text": "The bear yawned.", "model_id": "eleven_flash_v2_5", "voice_settings": settings, "seed": 42,
        "previous_text": "It was late.", "next_text": "Then he slept."}


def test_empty_optional_fields_are_not_sent(provider, emulator, voice_id):
    provider.synthesize(SpeechRequest(provider_voice_id=voice_id, text="Hi"))
    assert emulator.last_request(el.TTS).json == {"text": "Hi", "model_id": MODEL}


def test_with_timestamps_gives_words_in_order_within_the_audio(provider, emulator, voice_id):
    text = "  Once upon a time,\nthere  was a 곰 bear. "

    result = provider.synthesize(SpeechRequest(provider_voice_id=voice_id, text=text, with_timestamps=True))

    assert [w.word for w in result.words] == text.split()
    duration_ms = decoded_seconds(result.audio) * 1000
    previous_end = 0
    for word in result.words:
        assert previous_end <= word.start_ms < word.end_ms <= duration_ms + 1
        previous_end = word.end_ms
    assert result.words[-1].end_ms == pytest.approx(duration_ms - el.SECONDS_PER_CHARACTER * 1000, abs=2)
    answered = emulator.last_request(el.TTS_TIMESTAMPS)
    assert result.request_id == answered.response_headers["request-id"]
    assert result.character_cost == len(text)
    assert result.mime_type == "audio/mpeg"
    assert emulator.count(el.TTS_TIMESTAMPS) == 1 and emulator.count(el.TTS) == 0


def test_words_from_alignment():
    chars = list(" a bc  d\n")
    starts = [i * 0.1 for i in range(len(chars))]
    ends = [s + 0.1 for s in starts]
    assert words_from_alignment(chars, starts, ends) == [
        WordTiming("a", 100, 200), WordTiming("bc", 300, 500), WordTiming("d", 700, 800)]
    assert words_from_alignment([], [], []) == []


def test_text_too_long_for_the_model(provider, emulator, voice_id):
    with pytest.raises(ProviderError) as caught:
        provider.synthesize(SpeechRequest(provider_voice_id=voice_id, text="a" * 10_001))
    assert (caught.value.code, caught.value.transient, caught.value.status) == ("text_too_long", False, 400)
    assert emulator.count(el.TTS) == 1


def test_account_out_of_characters(provider, emulator, voice_id):
    emulator.account.character_limit = 10
    with pytest.raises(ProviderError) as caught:
        provider.synthesize(SpeechRequest(provider_voice_id=voice_id, text="More than ten characters"))
    error = caught.value
    assert (error.code, error.transient, error.provider_status, error.status) == (
        "provider_quota_exceeded", False, 401, 503)
    assert "quota" in error.message


def test_unknown_voice(provider, emulator):
    with pytest.raises(ProviderError) as caught:
        provider.synthesize(SpeechRequest(provider_voice_id="missing", text="Hi", with_timestamps=True))
    assert caught.value.code == "voice_not_found"


def test_wrong_api_key_is_the_operators_problem(emulator, voice_id):
    provider = ElevenLabsProvider(api_key="sk_wrong", base_url=emulator.base_url, timeout=5.0)
    with pytest.raises(ProviderError) as caught:
        provider.synthesize(SpeechRequest(provider_voice_id=voice_id, text="Hi"))
    error = caught.value
    assert (error.code, error.transient, error.status, error.provider_code) == (
        "invalid_api_key", False, 503, "invalid_api_key")
    assert error.request_id
    assert emulator.count(el.TTS) == 1


def test_concurrency_cap_is_rate_limited(provider, emulator, voice_id):
    emulator.set_concurrency_limit(1)
    emulator.set_latency(el.TTS, 0.3)
    outcomes: list[object] = []

    def speak() -> None:
        try:
            outcomes.append(provider.synthesize(SpeechRequest(provider_voice_id=voice_id, text="Hi")))
        except ProviderError as error:
            outcomes.append(error)

    threads = [threading.Thread(target=speak) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    errors = [o for o in outcomes if isinstance(o, ProviderError)]
    assert len(errors) == 1
    assert (errors[0].code, errors[0].transient, errors[0].provider_code) == (
        "rate_limited", True, "too_many_concurrent_requests")
    assert emulator.count(el.TTS) == 2 and emulator.max_tts_in_flight == 2


# --- errors: every contract error, every operation, exactly one call ------------------------------
OPERATIONS = {
    "clone_voice": (el.ADD_VOICE, lambda p, v: p.clone_voice(name="Mom", samples=[SAMPLE])),
    "get_voice": (el.GET_VOICE, lambda p, v: p.get_voice(v)),
    "get_voices": (el.SEARCH_VOICES, lambda p, v: p.get_voices([v])),
    "delete_voice": (el.DELETE_VOICE, lambda p, v: p.delete_voice(v)),
    "list_default_voices": (el.SEARCH_VOICES, lambda p, v: p.list_default_voices()),
    "account_limits": (el.SUBSCRIPTION, lambda p, v: p.account_limits()),
    "synthesize": (el.TTS, lambda p, v: p.synthesize(SpeechRequest(provider_voice_id=v, text="Hi"))),
    "synthesize_with_timestamps": (
        el.TTS_TIMESTAMPS,
        lambda p, v: p.synthesize(SpeechRequest(provider_voice_id=v, text="Hi", with_timestamps=True))),
}

# (provider status, provider code, our code, transient): the contract's error table and the design's.
CONTRACT_ERRORS = [
    (401, "invalid_api_key", "invalid_api_key", False),
    (401, "needs_authorization", "invalid_api_key", False),
    (401, "quota_exceeded", "provider_quota_exceeded", False),
    (400, "voice_limit_reached", "voice_limit_reached", False),
    (400, "can_not_use_instant_voice_cloning", "provider_rejected", False),
    (403, "can_not_use_instant_voice_cloning", "provider_rejected", False),
    (400, "max_character_limit_exceeded", "text_too_long", False),
    (402, "paid_plan_required", "provider_rejected", False),
    (404, "voice_not_found", "voice_not_found", False),
    (400, "voice_not_found", "voice_not_found", False),
    (422, None, "provider_rejected", False),
    (429, "too_many_concurrent_requests", "rate_limited", True),
    (429, "concurrent_limit_exceeded", "rate_limited", True),
    (429, "system_busy", "rate_limited", True),
    (429, "rate_limit_exceeded", "rate_limited", True),
    (408, "request_timeout", "provider_unavailable", True),
    (409, "conflict", "provider_rejected", False),
    (500, "internal_server_error", "provider_unavailable", True),
    (502, "bad_gateway", "provider_unavailable", True),
    (503, "service_unavailable", "provider_unavailable", True),
    (504, "gateway_timeout", "provider_unavailable", True),
    (400, "something_new", "provider_rejected", False),
]


# The statuses the SDK would retry on its own (408, 409, 429, 5xx) plus two permanent ones.
EACH_OPERATION_ERRORS = [row for row in CONTRACT_ERRORS if row[:2] in {
    (408, "request_timeout"), (409, "conflict"), (429, "system_busy"), (500, "internal_server_error"),
    (401, "quota_exceeded"), (404, "voice_not_found")}]


def assert_mapped_after_one_call(provider, emulator, voice_id, operation, status, provider_code, code, transient):
    endpoint, call = OPERATIONS[operation]
    emulator.fail(endpoint, status, code=provider_code, message="provider says no", retry_after=2, times=None)

    with pytest.raises(ProviderError) as caught:
        call(provider, voice_id)

    error = caught.value
    assert (error.code, error.transient) == (code, transient)
    assert (error.provider_status, error.provider_code) == (status, provider_code)
    assert error.retry_after == (2.0 if transient else None)
    assert error.request_id == emulator.last_request(endpoint).response_headers["request-id"]
    assert "provider says no" in error.message
    assert emulator.count(endpoint) == 1


@pytest.mark.parametrize(("status", "provider_code", "code", "transient"), CONTRACT_ERRORS)
@pytest.mark.parametrize("operation", ["synthesize", "synthesize_with_timestamps"])
def test_every_contract_error_is_mapped_after_one_call(provider, emulator, voice_id, operation, status,
                                                       provider_code, code, transient):
    assert_mapped_after_one_call(provider, emulator, voice_id, operation, status, provider_code, code, transient)


@pytest.mark.parametrize(("status", "provider_code", "code", "transient"), EACH_OPERATION_ERRORS)
@pytest.mark.parametrize("operation", [op for op in OPERATIONS if not op.startswith("synthesize")])
def test_every_operation_maps_errors_after_one_call(provider, emulator, voice_id, operation, status,
                                                    provider_code, code, transient):
    assert_mapped_after_one_call(provider, emulator, voice_id, operation, status, provider_code, code, transient)


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_timeout_is_transient_after_one_call(emulator, voice_id, operation):
    endpoint, call = OPERATIONS[operation]
    emulator.set_latency(endpoint, 2.0)
    provider = ElevenLabsProvider(api_key=emulator.api_key, base_url=emulator.base_url, timeout=0.1)

    started = time.monotonic()
    with pytest.raises(ProviderError) as caught:
        call(provider, voice_id)

    assert (caught.value.code, caught.value.transient) == ("provider_unavailable", True)
    assert time.monotonic() - started < 1.5  # gave up at the timeout instead of waiting for the answer
    assert emulator.count(endpoint) == 1


@pytest.mark.parametrize("operation", ["get_voice", "clone_voice", "synthesize", "synthesize_with_timestamps"])
def test_dropped_connection_is_transient_after_one_call(provider, emulator, voice_id, operation):
    endpoint, call = OPERATIONS[operation]
    emulator.fail(endpoint, disconnect=True, times=None)
    with pytest.raises(ProviderError) as caught:
        call(provider, voice_id)
    assert (caught.value.code, caught.value.transient) == ("provider_unavailable", True)
    assert emulator.count(endpoint) == 1


def test_connection_refused_is_transient():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = ElevenLabsProvider(api_key="k", base_url=f"http://127.0.0.1:{port}", timeout=1.0)
    with pytest.raises(ProviderError) as caught:
        provider.get_voice("x")
    assert (caught.value.code, caught.value.transient) == ("provider_unavailable", True)


def test_wrong_base_url_is_not_a_missing_voice(emulator, voice_id):
    provider = ElevenLabsProvider(api_key=emulator.api_key, base_url=f"{emulator.base_url}/wrong", timeout=5.0)
    with pytest.raises(ProviderError) as caught:
        provider.get_voice(voice_id)
    assert (caught.value.code, caught.value.transient, caught.value.provider_status) == (
        "provider_unavailable", False, 404)


@pytest.mark.parametrize(
    ("status", "body", "code", "message"),
    [
        (401, {"detail": {"status": "quota_exceeded", "message": "legacy only"}}, "provider_quota_exceeded",
         "legacy only"),
        (400, {"detail": {"code": "voice_limit_reached", "message": "new only"}}, "voice_limit_reached", "new only"),
        (400, {"detail": "a plain string"}, "provider_rejected", "a plain string"),
        (422, {"detail": [{"loc": ["body", "name"], "msg": "Field required", "type": "missing"}]},
         "provider_rejected", "name: Field required"),
        (500, "<html>upstream broke</html>", "provider_unavailable", "upstream broke"),
        (400, ["odd", "body"], "provider_rejected", "odd"),
    ],
)
def test_error_bodies_of_every_shape(provider, emulator, voice_id, status, body, code, message):
    emulator.fail(el.GET_VOICE, status, body=body)
    with pytest.raises(ProviderError) as caught:
        provider.get_voice(voice_id)
    assert caught.value.code == code
    assert message in caught.value.message
    assert emulator.count(el.GET_VOICE) == 1


# --- the mapping table itself ----------------------------------------------------------------------
@pytest.mark.parametrize(("status", "provider_code", "code", "transient"), CONTRACT_ERRORS)
def test_classify_error_matches_the_contract(status, provider_code, code, transient):
    assert classify_error(status, provider_code) == (code, transient)


def test_every_table_row_is_reachable():
    for status, provider_code, code, transient in ERROR_TABLE:
        assert classify_error(status if status is not None else 400, provider_code or "x") == (code, transient)


def test_error_from_response_reads_headers_and_detail():
    error = error_from_response(429, {"detail": {"code": "system_busy", "message": "busy", "request_id": "r-body"}},
                                {"Retry-After": "3", "request-id": "r-header"})
    assert (error.code, error.retry_after, error.request_id) == ("rate_limited", 3.0, "r-header")
    from_body = error_from_response(429, {"detail": {"code": "system_busy", "request_id": "r-body"}}, {})
    assert from_body.request_id == "r-body"
    assert error_from_response(400, {"detail": {"code": "x"}}, {"retry-after": "5"}).retry_after is None


def test_parse_retry_after():
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    future = datetime.fromtimestamp(time.time() + 30, tz=UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert 25 < parse_retry_after(future) <= 30


@pytest.mark.parametrize(
    ("output_format", "mime_type"),
    [("mp3_44100_128", "audio/mpeg"), ("wav_44100", "audio/wav"), ("pcm_24000", "audio/L16;rate=24000"),
     ("opus_48000_32", "audio/ogg"), ("ulaw_8000", "audio/basic"), ("alaw_8000", "audio/x-alaw-basic")],
)
def test_mime_types(output_format, mime_type):
    assert mime_type_for(output_format) == mime_type


def test_registry_builds_the_provider_from_settings(elevenlabs_settings, voice_id):
    from tts.providers.registry import get_provider

    provider = get_provider("elevenlabs")
    assert isinstance(provider, ElevenLabsProvider)
    assert provider.get_voice(voice_id).name == "Mom"


PRELOADED = """
import sys
import django
django.setup()
print(",".join(m for m in ("tts.tasks", "tts.providers.elevenlabs", "elevenlabs") if m in sys.modules))
"""


@pytest.mark.parametrize(("cluster", "preloaded"), [
    ("tts", "tts.tasks,tts.providers.elevenlabs,elevenlabs"), ("", ""), ("main", "")])
def test_a_tts_cluster_imports_the_sdk_before_forking_its_workers(cluster, preloaded):
    import os
    import subprocess
    import sys

    from tests.live import ROOT

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "Q_CLUSTER_NAME": cluster,
           "ELEVENLABS_API_KEY": "sk_configured"}
    out = subprocess.run([sys.executable, "-c", PRELOADED], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == preloaded


def test_neighbouring_text_and_dictionaries_are_sent_but_not_to_v3(provider, emulator, voice_id):
    locator = {"pronunciation_dictionary_id": "dict1", "version_id": "v1"}
    provider.synthesize(SpeechRequest(provider_voice_id=voice_id, text="Hello", model_id=MODEL, previous_text="Before.",
                                      next_text="After.", pronunciation_locators=(locator,)))
    sent = emulator.last_request(el.TTS).json
    assert (sent["previous_text"], sent["next_text"]) == ("Before.", "After.")
    assert sent["pronunciation_dictionary_locators"] == [locator]
    provider.synthesize(SpeechRequest(provider_voice_id=voice_id, text="Hello", model_id="eleven_v3",
                                      previous_text="Before.", next_text="After."))
    sent = emulator.last_request(el.TTS).json
    assert "previous_text" not in sent and "next_text" not in sent
