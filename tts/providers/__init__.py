from .base import (  # noqa: F401
    VOICE_FAILED,
    VOICE_PROCESSING,
    VOICE_READY,
    AccountLimits,
    CloneResult,
    ProviderError,
    ProviderNotConfigured,
    ProviderVoice,
    SampleFile,
    SpeechProvider,
    SpeechRequest,
    SpeechResult,
    WordTiming,
)
from .registry import PROVIDER_NAMES, clone_provider_name, get_provider, is_configured  # noqa: F401
