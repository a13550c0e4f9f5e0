"""pytest fixtures for the ElevenLabs emulator (imported by tests/conftest.py).

One server per test session (its audio cache is worth keeping); every test gets it reset to a
fresh account.
"""

import functools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from tests.fakes import elevenlabs as el
from tests.fakes.elevenlabs import ElevenLabsEmulator, RecordedRequest

# What tests/conftest.py's star import brings in: the fixtures only.
__all__ = ["elevenlabs_server", "elevenlabs_emulator", "elevenlabs_settings", "elevenlabs_validated"]

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"

# Which official response schema (tests/fakes/schemas/, from ElevenLabs' OpenAPI spec) each 2xx
# JSON answer must satisfy; errors use http_validation_error (422) or error_response.
SUCCESS_SCHEMAS = {
    el.ADD_VOICE: "add_voice_ivc_response",
    el.GET_VOICE: "voice_response",
    el.DELETE_VOICE: "delete_voice_response",
    el.SEARCH_VOICES: "get_voices_v2_response",
    el.LIST_VOICES: "get_voices_response",
    el.TTS_TIMESTAMPS: "audio_with_timestamps_response",
    el.SUBSCRIPTION: "subscription_response",
}


@functools.cache
def response_validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"{name}.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_name_for(record: RecordedRequest) -> str:
    if record.status == 422:
        return "http_validation_error"
    if record.status is not None and record.status >= 400:
        return "error_response"
    return SUCCESS_SCHEMAS[record.endpoint]


def schema_violations(emulator: ElevenLabsEmulator) -> list[str]:
    """Every JSON body the emulator sent (except verbatim `fail(body=...)` ones) checked against
    the official schema for its endpoint and status."""
    problems = []
    for record in emulator.requests:
        if record.response_json is None or record.injected:
            continue
        name = schema_name_for(record)
        for error in response_validator(name).iter_errors(record.response_json):
            problems.append(f"{record.method} {record.path} -> {record.status} ({name}): "
                            f"{'/'.join(map(str, error.absolute_path))}: {error.message}")
    return problems


@pytest.fixture(scope="session")
def elevenlabs_server() -> Iterator[ElevenLabsEmulator]:
    """The session's emulator, not reset: use `elevenlabs_emulator` in tests."""
    with ElevenLabsEmulator(port=0) as emulator:
        yield emulator


@pytest.fixture
def elevenlabs_emulator(elevenlabs_server: ElevenLabsEmulator) -> Iterator[ElevenLabsEmulator]:
    """A freshly reset emulator on 127.0.0.1 (`.base_url`, `.api_key`)."""
    elevenlabs_server.reset()
    yield elevenlabs_server
    elevenlabs_server.reset()


@pytest.fixture
def elevenlabs_settings(settings, elevenlabs_emulator: ElevenLabsEmulator) -> ElevenLabsEmulator:
    """Point the project at the emulator: ElevenLabs configured and used for new clones."""
    settings.ELEVENLABS_API_KEY = elevenlabs_emulator.api_key
    settings.ELEVENLABS_BASE_URL = elevenlabs_emulator.base_url
    settings.TTS_PROVIDER = "elevenlabs"
    return elevenlabs_emulator


@pytest.fixture
def elevenlabs_validated(elevenlabs_emulator: ElevenLabsEmulator) -> Iterator[ElevenLabsEmulator]:
    """The emulator; after the test, every JSON body it answered must match ElevenLabs' schemas."""
    yield elevenlabs_emulator
    assert schema_violations(elevenlabs_emulator) == []
