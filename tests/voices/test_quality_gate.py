"""The sample quality gate: speech passes, silence, tones, noise, clipping and whisper-quiet
recordings are refused before the provider is called."""

import pytest

from tests.audio_samples import (
    encoded_speech,
    noisy_speech_wav_bytes,
    silence_wav_bytes,
    speech_wav_bytes,
    wav_bytes,
    white_noise_wav_bytes,
)
from voices.models import Voice, VoiceSample, VoiceSlotReservation

from .conftest import clone, sample
from .test_clone import _stored_samples, assert_error


def _clone_form(emulator) -> dict:
    [request] = [r for r in emulator.requests if r.endpoint == "add_voice"]
    return request.form


@pytest.mark.parametrize(
    "name, data",
    [
        ("speech.wav", speech_wav_bytes(6.0)),
        ("living-room.wav", noisy_speech_wav_bytes()),
        ("phone.mp3", encoded_speech("mp3_44100_128")),
        ("voice-note.ogg", encoded_speech("opus_48000_64")),
    ],
    ids=["espeak", "recorded-with-noise", "mp3", "opus"],
)
def test_speech_passes_the_gate(auth_client, elevenlabs_settings, name, data):
    response = clone(auth_client, samples=[sample(name, data)])
    assert response.status_code == 202, response.content
    [stored] = response.json()["samples"]
    assert stored["speech_seconds"] > 0.6 * stored["duration_seconds"]
    assert elevenlabs_settings.count("add_voice") == 1


@pytest.mark.parametrize(
    "data, reason",
    [
        (silence_wav_bytes(), "no_speech"),
        (wav_bytes(3.0, freq=440), "no_speech"),  # a pure tone
        (wav_bytes(3.0), "no_speech"),  # a hum with a harmonic, as a synthesiser note
        (white_noise_wav_bytes(), "no_speech"),
        (speech_wav_bytes(gain=8), "clipped"),  # recorded far too loud
        (speech_wav_bytes(gain=0.005), "too_quiet"),  # speech, at about -66 dBFS
    ],
    ids=["silence", "sine", "tone", "white-noise", "clipped", "too-quiet"],
)
def test_what_is_not_a_usable_voice_is_refused_before_the_provider(auth_client, elevenlabs_settings, settings, data,
                                                                   reason):
    error = assert_error(clone(auth_client, samples=[sample("take2.wav", data)]), 400, "invalid_audio")
    assert error["details"]["reason"] == reason
    assert error["details"]["file"] == "take2.wav" and error["message"].startswith("take2.wav: ")
    assert elevenlabs_settings.count("add_voice") == 0
    assert not Voice.objects.exists() and not VoiceSlotReservation.objects.exists()
    assert _stored_samples(settings) == []


def test_one_bad_sample_among_good_ones_refuses_the_clone_and_names_it(auth_client, elevenlabs_settings):
    samples = [sample("a.wav"), sample("b.wav", white_noise_wav_bytes()), sample("c.wav")]
    error = assert_error(clone(auth_client, samples=samples), 400, "invalid_audio")
    assert (error["details"]["file"], error["details"]["reason"]) == ("b.wav", "no_speech")
    assert elevenlabs_settings.count("add_voice") == 0


@pytest.mark.parametrize(
    "data, reason",
    [(b"", "empty"), (b"plain text, renamed\n" * 40, "undecodable"), (speech_wav_bytes(0.3), "too_short")],
    ids=["empty", "not-audio", "too-short"],
)
def test_every_invalid_audio_carries_a_reason_code(auth_client, data, reason):
    error = assert_error(clone(auth_client, samples=[sample("x.wav", data)]), 400, "invalid_audio")
    assert error["details"]["reason"] == reason


def test_a_sample_over_the_length_cap_is_too_long(auth_client, settings):
    settings.VOICE_SAMPLE_MAX_SECONDS = 2.0
    error = assert_error(clone(auth_client, samples=[sample(data=speech_wav_bytes(3.0))]), 400, "invalid_audio")
    assert error["details"]["reason"] == "too_long"


def test_under_thirty_seconds_of_speech_is_accepted_with_a_warning(auth_client, elevenlabs_settings):
    body = clone(auth_client, samples=[sample("a.wav", speech_wav_bytes(10.0)),
                                       sample("b.wav", speech_wav_bytes(8.0))]).json()
    [warning] = body["warnings"]
    assert warning["code"] == "little_speech" and warning["recommended_seconds"] == 30
    # Speech is counted across the samples, and only where there is speech (not the pauses).
    assert 14 < warning["speech_seconds"] < 18


def test_enough_speech_has_no_warning(auth_client, elevenlabs_settings):
    body = clone(auth_client, samples=[sample("long.wav", speech_wav_bytes(40.0))]).json()
    assert body["warnings"] == []
    assert VoiceSample.objects.get().speech_seconds > 30


def test_noise_is_a_warning_that_suggests_the_noise_removal(auth_client, elevenlabs_settings, settings):
    settings.VOICE_SPEECH_RECOMMENDED_SECONDS = 1
    body = clone(auth_client, samples=[sample("clean.wav"), sample("tv-on.wav", noisy_speech_wav_bytes(snr_db=6))]).json()
    [warning] = body["warnings"]
    assert warning["code"] == "background_noise" and warning["files"] == ["tv-on.wav"]
    assert "remove_background_noise" in warning["message"]
    assert "remove_background_noise" not in _clone_form(elevenlabs_settings)


def test_remove_background_noise_is_passed_to_the_provider(auth_client, elevenlabs_settings, settings):
    settings.VOICE_SPEECH_RECOMMENDED_SECONDS = 1
    response = clone(auth_client, samples=[sample("tv-on.wav", noisy_speech_wav_bytes(snr_db=6))],
                     remove_background_noise="true")
    assert response.status_code == 202, response.content
    assert _clone_form(elevenlabs_settings)["remove_background_noise"] == ["true"]
    assert response.json()["warnings"] == []  # they asked for it already


def test_remove_background_noise_must_be_a_boolean(auth_client, elevenlabs_settings):
    error = assert_error(clone(auth_client, remove_background_noise="maybe"), 400, "validation_error")
    assert "remove_background_noise" in error["details"]["fields"]
    assert elevenlabs_settings.count("add_voice") == 0


def test_the_schema_documents_the_warnings_and_the_flag(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    components = schema["components"]["schemas"]
    assert "warnings" in components["VoiceCloneOutput"]["properties"]
    clone_input = next(v for k, v in components.items() if k.startswith("VoiceCloneInput"))
    assert "remove_background_noise" in clone_input["properties"]
