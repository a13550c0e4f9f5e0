"""The speech provider interface. Voices are addressed by `provider` + `provider_voice_id`.

Providers hold no state in Python objects between calls (web and worker are separate
processes): anything a provider must remember lives in the database or on disk.
"""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from config.api.errors import ProviderUnavailable, ServiceError, error_class

# Normalised provider-side voice states (the voice library maps them onto its own state machine).
VOICE_PROCESSING = "processing"
VOICE_READY = "ready"
VOICE_FAILED = "failed"


class ProviderError(ServiceError):
    """A provider call failed, mapped onto the catalogue: `code` names a catalogue error (its
    status and default message come from there), `transient` says whether the same call may
    succeed later (429, 5xx, timeouts). As a ServiceError it renders as the API's JSON error."""

    def __init__(self, code: str, message: str = "", *, transient: bool = False, retry_after: float | None = None,
                 provider_status: int | None = None, provider_code: str | None = None,
                 request_id: str | None = None) -> None:
        mapped = error_class(code)
        self.code, self.status = mapped.code, mapped.status
        super().__init__(message or mapped.message, retry_after=retry_after)
        self.transient = transient
        self.provider_status = provider_status
        self.provider_code = provider_code
        self.request_id = request_id

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class ProviderNotConfigured(ProviderError):
    def __init__(self, name: str) -> None:
        super().__init__(ProviderUnavailable.code, f"speech provider {name!r} is not configured", transient=False)
        self.provider_name = name


@dataclass(frozen=True)
class SampleFile:
    filename: str
    data: bytes
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class ProviderVoice:
    provider_voice_id: str
    name: str
    category: str  # premade / cloned / generated / professional
    status: str  # VOICE_PROCESSING / VOICE_READY / VOICE_FAILED
    language: str = ""
    gender: str = ""
    accent: str = ""
    description: str = ""
    preview_url: str = ""
    labels: dict = field(default_factory=dict)
    failure_reason: str = ""


@dataclass(frozen=True)
class CloneResult:
    provider_voice_id: str
    requires_verification: bool = False


@dataclass(frozen=True)
class WordTiming:
    word: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class SpeechRequest:
    provider_voice_id: str
    text: str
    model_id: str = ""
    language: str = ""
    output_format: str = "mp3_44100_128"
    voice_settings: dict | None = None
    seed: int | None = None
    previous_text: str = ""
    next_text: str = ""
    with_timestamps: bool = False
    # [{"pronunciation_dictionary_id", "version_id"?}], at most 3 (ElevenLabs).
    pronunciation_locators: tuple = ()


@dataclass(frozen=True)
class SpeechResult:
    audio: bytes
    mime_type: str
    request_id: str | None = None
    character_cost: int | None = None
    words: list[WordTiming] | None = None


@dataclass(frozen=True)
class AccountLimits:
    character_count: int
    character_limit: int
    voice_slots_used: int
    voice_limit: int
    can_clone: bool = True
    next_reset: datetime | None = None


class SpeechProvider(ABC):
    name: str
    # The formats a clip of this provider can be stored in; the model ids it takes (empty: it
    # has no models and ignores the field).
    output_formats: frozenset[str]
    model_ids: frozenset[str] = frozenset()

    @abstractmethod
    def default_model_id(self) -> str: ...

    @abstractmethod
    def text_limit(self, model_id: str) -> int:
        """The most characters one request to this model may carry."""

    @abstractmethod
    def clone_voice(self, *, name: str, samples: Sequence[SampleFile], description: str = "",
                    labels: dict | None = None, remove_background_noise: bool = False) -> CloneResult:
        """`remove_background_noise` asks the provider to isolate the voice first (where it can)."""

    @abstractmethod
    def get_voice(self, provider_voice_id: str) -> ProviderVoice:
        """Raises ProviderError("voice_not_found") when the provider has no such voice."""

    @abstractmethod
    def get_voices(self, provider_voice_ids: Sequence[str]) -> dict[str, ProviderVoice]:
        """Many voices by id; ids the provider does not return are absent from the result."""

    @abstractmethod
    def delete_voice(self, provider_voice_id: str) -> None: ...

    @abstractmethod
    def list_default_voices(self) -> list[ProviderVoice]: ...

    @abstractmethod
    def list_account_voices(self) -> list[ProviderVoice]:
        """The voices this account made itself (clones and designs), not the provider's defaults."""

    @abstractmethod
    def synthesize(self, request: SpeechRequest) -> SpeechResult: ...

    @abstractmethod
    def account_limits(self) -> AccountLimits: ...
