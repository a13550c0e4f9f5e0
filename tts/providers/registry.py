"""Provider lookup by name. `TTS_PROVIDER` only picks the provider for new clones; every voice
is served by its own provider, which may be unconfigured here (then it is unavailable)."""

from django.conf import settings

from .base import ProviderNotConfigured, SpeechProvider

PROVIDER_NAMES = ("elevenlabs", "local")


def is_configured(name: str) -> bool:
    if name == "elevenlabs":
        return bool(settings.ELEVENLABS_API_KEY)
    return name == "local"


def get_provider(name: str) -> SpeechProvider:
    if not is_configured(name):
        raise ProviderNotConfigured(name)
    if name == "elevenlabs":
        from .elevenlabs import ElevenLabsProvider

        return ElevenLabsProvider(
            api_key=settings.ELEVENLABS_API_KEY,
            base_url=settings.ELEVENLABS_BASE_URL or None,
            timeout=settings.ELEVENLABS_TIMEOUT,
        )
    from .local import LocalProvider

    return LocalProvider()


def clone_provider_name() -> str:
    return settings.TTS_PROVIDER
