"""Provider lookup by name. `TTS_PROVIDER` only picks the provider for new clones; every voice
is served by its own provider, which may be unconfigured here (then it is unavailable)."""

from functools import lru_cache

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
        return _elevenlabs(settings.ELEVENLABS_API_KEY, settings.ELEVENLABS_BASE_URL or None, settings.ELEVENLABS_TIMEOUT)
    from .local import LocalProvider

    return LocalProvider()


@lru_cache(maxsize=4)
def _elevenlabs(api_key: str, base_url: str | None, timeout: float) -> SpeechProvider:
    """One SDK client (and its HTTP connection pool) per process and configuration. It holds no
    voice state, so sharing it between requests is safe."""
    from .elevenlabs import ElevenLabsProvider

    return ElevenLabsProvider(api_key=api_key, base_url=base_url, timeout=timeout)


def preload_providers() -> None:
    """Import the runner and every configured provider now (their SDKs take ~0.5 s to import).
    Called in a tts cluster's main process: the workers it forks inherit the modules instead of
    each paying for them in its first job."""
    import tts.tasks  # noqa: F401

    for name in PROVIDER_NAMES:
        if is_configured(name):
            get_provider(name)


def clone_provider_name() -> str:
    return settings.TTS_PROVIDER
