import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.audio_samples import speech_wav_bytes
from tests.factories import UserFactory
from voices.models import Voice


def sample(name: str = "sample.wav", data: bytes | None = None, content_type: str = "audio/wav"):
    return SimpleUploadedFile(name, speech_wav_bytes() if data is None else data, content_type)


def clone(client, *, headers: dict | None = None, **fields):
    data = {"name": "Mom", "consent": "true", "language": "en", "samples": [sample()], **fields}
    return client.post("/api/v1/tts/voices/clone", data, format="multipart", headers=headers or {})


def make_voice(owner=None, **fields) -> Voice:
    """A voice row as the library stores it (for listing/access tests that need no provider)."""
    import uuid

    defaults = {
        "owner": owner,
        "provider": "local",
        "provider_voice_id": f"local-test-{uuid.uuid4().hex}",
        "name": "Voice",
        "visibility": Voice.Visibility.DEFAULT if owner is None else Voice.Visibility.PRIVATE,
        "status": Voice.Status.COMPLETED,
        "category": Voice.Category.PREMADE if owner is None else Voice.Category.CLONED,
    }
    defaults.update(fields)
    return Voice.objects.create(**defaults)


@pytest.fixture
def other_user(db):
    return UserFactory()
