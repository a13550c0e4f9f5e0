"""The `elevenlabs` speech provider, over the official SDK (elevenlabs-contract.md).

Every SDK call runs with `max_retries=0`: the SDK re-sends a retried multipart clone without its
form fields and sleeps inside `convert_with_timestamps` retries while holding a concurrency slot,
so retrying is the job layer's business. Every failure leaves here as a `ProviderError`.
"""

import base64
import email.utils
import functools
import ssl
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from django.conf import settings
from elevenlabs import ElevenLabs, PronunciationDictionaryVersionLocator, VoiceSettings
from elevenlabs.core.api_error import ApiError
from elevenlabs.core.parse_error import ParsingError
from elevenlabs.core.request_options import RequestOptions

from tts.audio import OUTPUT_FORMATS, mime_type_for
from tts.languages import language_base

from .base import (
    VOICE_FAILED,
    VOICE_PROCESSING,
    VOICE_READY,
    AccountLimits,
    CloneResult,
    ProviderError,
    ProviderVoice,
    SampleFile,
    SpeechProvider,
    SpeechRequest,
    SpeechResult,
    WordTiming,
)

# Models that take no previous/next text (no request stitching).
NO_STITCHING_MODELS = frozenset({"eleven_v3"})
# Only these models accept `language_code`; the others answer 400 when it is sent.
LANGUAGE_CODE_MODELS = frozenset({"eleven_turbo_v2_5", "eleven_flash_v2_5"})
# `GET /v2/voices` takes at most 100 ids and pages at 10 unless told otherwise.
SEARCH_BATCH = 100
CLONE_LABEL_KEYS = ("language", "gender", "accent", "age")


# (provider HTTP status or None for any, provider code or None for any) -> (our code, transient).
# First match wins; the statuses and codes are the contract's table of errors seen from the real API.
ERROR_TABLE: tuple[tuple[int | None, str | None, str, bool], ...] = (
    (401, "quota_exceeded", "provider_quota_exceeded", False),
    (401, None, "invalid_api_key", False),  # invalid_api_key, needs_authorization: the operator's key
    (None, "voice_not_found", "voice_not_found", False),  # 404, or 400 from older API versions
    (404, None, "voice_not_found", False),
    (400, "voice_limit_reached", "voice_limit_reached", False),
    (400, "max_character_limit_exceeded", "text_too_long", False),
    (400, "can_not_use_instant_voice_cloning", "provider_rejected", False),
    (403, "can_not_use_instant_voice_cloning", "provider_rejected", False),
    (402, "paid_plan_required", "provider_rejected", False),
    (422, None, "provider_rejected", False),
    (429, None, "rate_limited", True),  # too_many_concurrent_requests, concurrent_limit_exceeded, system_busy, ...
    (408, None, "provider_unavailable", True),
)


def classify_error(status: int | None, provider_code: str | None) -> tuple[str, bool]:
    """Our error code and transience for a provider answer (`ERROR_TABLE`, then 5xx, then rejected)."""
    for table_status, table_code, code, transient in ERROR_TABLE:
        if (table_status is None or table_status == status) and (table_code is None or table_code == provider_code):
            return code, transient
    if status is not None and status >= 500:
        return "provider_unavailable", True
    return "provider_rejected", False


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _provider_code_and_message(body: Any) -> tuple[str | None, str]:
    """(code, message) from the error body in any of its shapes: detail dict (new `code` or legacy
    `status`), FastAPI's 422 list, a plain string, or a body that was not JSON at all."""
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, dict):
        code = detail.get("code") or detail.get("status")
        return (str(code) if code else None), str(detail.get("message") or code or "")
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", []) if p not in ("body", "query"))
                parts.append(f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg", "")))
            else:
                parts.append(str(item))
        return None, "; ".join(parts)
    return None, str(detail or "")[:500]


def error_from_response(status: int | None, body: Any, headers: Mapping[str, str] | None = None) -> ProviderError:
    provider_code, message = _provider_code_and_message(body)
    code, transient = classify_error(status, provider_code)
    detail = body.get("detail") if isinstance(body, dict) else None
    if code == "voice_not_found" and provider_code is None and not isinstance(detail, dict):
        # A 404 without the API's error detail (FastAPI's {"detail": "Not Found"}, an HTML page) is a
        # wrong ELEVENLABS_BASE_URL, not a deleted voice: reading it as voice_not_found would fail
        # every voice. It is the operator's problem, like a bad key.
        code = "provider_unavailable"
    request_id = _header(headers, "request-id") or (detail.get("request_id") if isinstance(detail, dict) else None)
    return ProviderError(
        code,
        f"ElevenLabs {status}: {message}" if message else f"ElevenLabs answered {status}",
        transient=transient,
        retry_after=parse_retry_after(_header(headers, "retry-after")) if transient else None,
        provider_status=status,
        provider_code=provider_code,
        request_id=request_id,
    )


def provider_error(exc: ApiError | ParsingError | httpx.TransportError) -> ProviderError:
    """The ProviderError for anything the SDK raises (HTTP errors, timeouts, connection errors)."""
    if isinstance(exc, (ApiError, ParsingError)):
        return error_from_response(exc.status_code, exc.body, exc.headers)
    if isinstance(exc, httpx.TimeoutException):
        return ProviderError("provider_unavailable", f"ElevenLabs did not answer in time ({type(exc).__name__})",
                             transient=True)
    return ProviderError("provider_unavailable", f"ElevenLabs could not be reached: {exc!r}", transient=True)


@contextmanager
def _translated_errors() -> Iterator[None]:
    try:
        yield
    except (ApiError, ParsingError, httpx.TransportError) as exc:
        raise provider_error(exc) from exc


def words_from_alignment(characters: Sequence[str], starts: Sequence[float], ends: Sequence[float]) -> list[WordTiming]:
    """Fold per-character timings into whitespace-separated words, in order."""
    words: list[WordTiming] = []
    current: list[str] = []
    start = end = 0.0
    for char, char_start, char_end in zip(characters, starts, ends):
        if char.isspace():
            if current:
                words.append(WordTiming("".join(current), round(start * 1000), round(end * 1000)))
                current = []
            continue
        if not current:
            start, end = char_start, char_end
        current.append(char)
        end = max(end, char_end)
    if current:
        words.append(WordTiming("".join(current), round(start * 1000), round(end * 1000)))
    return words


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA bundle costs ~40 ms, and the registry builds a provider per use: share one
    # read-only context instead of letting every httpx client load its own.
    return httpx.create_ssl_context()


# Characters per request, per model (ElevenLabs' documented limits).
MODEL_TEXT_LIMITS = {
    "eleven_multilingual_v2": 10_000,
    "eleven_flash_v2_5": 40_000,
    "eleven_turbo_v2_5": 40_000,
    "eleven_flash_v2": 30_000,
    "eleven_turbo_v2": 30_000,
    "eleven_v3": 5_000,
}


class ElevenLabsProvider(SpeechProvider):
    name = "elevenlabs"
    output_formats = OUTPUT_FORMATS
    model_ids = frozenset(MODEL_TEXT_LIMITS)

    def default_model_id(self) -> str:
        return self.model_id

    def text_limit(self, model_id: str) -> int:
        return MODEL_TEXT_LIMITS.get(model_id, min(MODEL_TEXT_LIMITS.values()))

    def __init__(self, api_key: str, base_url: str | None = None, timeout: float = 30.0, *,
                 model_id: str | None = None) -> None:
        self.model_id = model_id or settings.ELEVENLABS_MODEL_ID
        self.client = ElevenLabs(
            api_key=api_key,
            base_url=base_url or None,
            timeout=timeout,
            httpx_client=httpx.Client(timeout=timeout, follow_redirects=True, verify=_tls_context()),
        )
        self._options: RequestOptions = {"max_retries": 0, "timeout_in_seconds": timeout}

    def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with _translated_errors():
            return method(*args, request_options=self._options, **kwargs)

    # --- voices ----------------------------------------------------------------------------------
    def clone_voice(self, *, name: str, samples: Sequence[SampleFile], description: str = "",
                    labels: dict | None = None, remove_background_noise: bool = False) -> CloneResult:
        kwargs: dict[str, Any] = {}
        clone_labels = {k: str(v) for k, v in (labels or {}).items() if k in CLONE_LABEL_KEYS and v}
        if clone_labels:
            kwargs["labels"] = clone_labels  # the SDK sends it as the JSON string the API expects
        if description:
            kwargs["description"] = description
        if remove_background_noise:
            kwargs["remove_background_noise"] = True
        result = self._call(
            self.client.voices.ivc.create,
            name=name,
            files=[(s.filename, s.data, s.content_type) for s in samples],
            **kwargs,
        )
        return CloneResult(provider_voice_id=result.voice_id,
                           requires_verification=bool(result.requires_verification))

    def get_voice(self, provider_voice_id: str) -> ProviderVoice:
        return self._provider_voice(self._call(self.client.voices.get, provider_voice_id))

    def get_voices(self, provider_voice_ids: Sequence[str]) -> dict[str, ProviderVoice]:
        ids = list(dict.fromkeys(provider_voice_ids))
        found: dict[str, ProviderVoice] = {}
        for offset in range(0, len(ids), SEARCH_BATCH):
            for voice in self._search(voice_ids=ids[offset: offset + SEARCH_BATCH]):
                found[voice.provider_voice_id] = voice
        return found

    def delete_voice(self, provider_voice_id: str) -> None:
        self._call(self.client.voices.delete, provider_voice_id)

    def list_default_voices(self) -> list[ProviderVoice]:
        return list(self._search(voice_type="default"))

    def list_account_voices(self) -> list[ProviderVoice]:
        return list(self._search(voice_type="personal"))

    def _search(self, **filters: Any) -> Iterator[ProviderVoice]:
        """All pages of `GET /v2/voices`, 100 per page (the API's default page is 10)."""
        token: str | None = None
        seen_tokens: set[str] = set()
        while True:
            page = self._call(self.client.voices.search, page_size=SEARCH_BATCH, next_page_token=token,
                              include_total_count=False, **filters)
            for voice in page.voices or []:
                yield self._provider_voice(voice)
            token = page.next_page_token
            # A token seen before would loop forever; stop as if the listing ended.
            if not page.has_more or not token or token in seen_tokens:
                return
            seen_tokens.add(token)

    def _provider_voice(self, voice: Any) -> ProviderVoice:
        labels = dict(voice.labels or {})
        category = voice.category or ""
        status, failure_reason = self._voice_status(voice, category)
        language = labels.get("language") or next(
            (lang.language for lang in (voice.verified_languages or []) if getattr(lang, "language", None)), "")
        return ProviderVoice(
            provider_voice_id=voice.voice_id,
            name=voice.name or "",
            category=category,
            status=status,
            language=language or "",
            gender=labels.get("gender", ""),
            accent=labels.get("accent", ""),
            description=voice.description or "",
            preview_url=voice.preview_url or "",
            labels=labels,
            failure_reason=failure_reason,
        )

    def _voice_status(self, voice: Any, category: str) -> tuple[str, str]:
        """The contract's state machine: ready once verified (when required) and, for professional
        clones, fine-tuned for our model; failed when fine-tuning for our model failed."""
        fine_tuning = voice.fine_tuning
        state = (fine_tuning.state or {}).get(self.model_id) if fine_tuning is not None else None
        if state == "failed":
            message = ((fine_tuning.message or {}).get(self.model_id) if fine_tuning is not None else None)
            return VOICE_FAILED, message or f"fine-tuning for {self.model_id} failed"
        verification = voice.voice_verification
        if verification is not None and verification.requires_verification and not verification.is_verified:
            return VOICE_PROCESSING, ""
        if category == "professional" and state != "fine_tuned":
            return VOICE_PROCESSING, ""
        return VOICE_READY, ""

    # --- speech ----------------------------------------------------------------------------------
    def synthesize(self, request: SpeechRequest) -> SpeechResult:
        model_id = request.model_id or self.model_id
        kwargs: dict[str, Any] = {"text": request.text, "model_id": model_id, "output_format": request.output_format}
        if request.language and model_id in LANGUAGE_CODE_MODELS:
            kwargs["language_code"] = language_base(request.language)
        if request.voice_settings:
            kwargs["voice_settings"] = VoiceSettings(**request.voice_settings)
        if request.seed is not None:
            kwargs["seed"] = request.seed
        # eleven_v3 does not stitch requests: neighbouring text is not sent to it.
        if request.previous_text and model_id not in NO_STITCHING_MODELS:
            kwargs["previous_text"] = request.previous_text
        if request.next_text and model_id not in NO_STITCHING_MODELS:
            kwargs["next_text"] = request.next_text
        if request.pronunciation_locators:
            kwargs["pronunciation_dictionary_locators"] = [
                PronunciationDictionaryVersionLocator(**locator) for locator in request.pronunciation_locators[:3]]
        raw = self.client.text_to_speech.with_raw_response
        words: list[WordTiming] | None = None
        with _translated_errors():
            if request.with_timestamps:
                response = raw.convert_with_timestamps(request.provider_voice_id, request_options=self._options,
                                                       **kwargs)
                audio = base64.b64decode(response.data.audio_base_64)
                alignment = response.data.alignment or response.data.normalized_alignment
                words = words_from_alignment(alignment.characters, alignment.character_start_times_seconds,
                                             alignment.character_end_times_seconds) if alignment else []
                headers = response.headers
            else:
                # convert is lazy: the request is sent, and its body read, only inside this block.
                with raw.convert(request.provider_voice_id, request_options=self._options, **kwargs) as response:
                    audio = b"".join(response.data)
                    headers = response.headers
        cost = _header(headers, "character-cost")
        return SpeechResult(
            audio=audio,
            mime_type=mime_type_for(request.output_format),
            request_id=_header(headers, "request-id"),
            character_cost=int(cost) if cost and cost.isdigit() else None,
            words=words,
        )

    # --- account ---------------------------------------------------------------------------------
    def account_limits(self) -> AccountLimits:
        sub = self._call(self.client.user.subscription.get)
        reset = sub.next_character_count_reset_unix
        return AccountLimits(
            character_count=sub.character_count or 0,
            character_limit=sub.character_limit or 0,
            voice_slots_used=sub.voice_slots_used or 0,
            voice_limit=sub.voice_limit or 0,
            can_clone=bool(sub.can_use_instant_voice_cloning),
            next_reset=datetime.fromtimestamp(reset, tz=UTC) if reset else None,
        )
