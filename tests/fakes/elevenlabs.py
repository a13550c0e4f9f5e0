"""A local ElevenLabs emulator speaking the HTTP contract of the design's `elevenlabs-contract.md`.

The real `elevenlabs` SDK is pointed at it with `base_url`. State lives in memory; the traps of the
real API are reproduced on purpose (pages of 10 voices by default, `language_code` rejected by
models that do not take it, quota exhaustion as a 401, multipart clones without their form fields
rejected with a FastAPI 422), and tests can inject faults, latency and a concurrency cap.

Standalone: `python -m tests.fakes.elevenlabs --port 8765 [--api-key KEY]`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import copy
import functools
import hashlib
import io
import json
import math
import random
import re
import secrets
import socket
import string
import signal
import struct
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import av

DEFAULT_API_KEY = "sk_emulator_test_key"

# Endpoint names used by the request log, fault injection and latency.
ADD_VOICE = "add_voice"
GET_VOICE = "get_voice"
DELETE_VOICE = "delete_voice"
SEARCH_VOICES = "search_voices"
LIST_VOICES = "list_voices"
TTS = "tts"
TTS_TIMESTAMPS = "tts_timestamps"
SUBSCRIPTION = "subscription"
ENDPOINTS = (ADD_VOICE, GET_VOICE, DELETE_VOICE, SEARCH_VOICES, LIST_VOICES, TTS, TTS_TIMESTAMPS, SUBSCRIPTION)
TTS_ENDPOINTS = frozenset({TTS, TTS_TIMESTAMPS})
ANY_ENDPOINT = "*"

_ROUTES = (
    ("POST", re.compile(r"^/v1/voices/add$"), ADD_VOICE),
    ("GET", re.compile(r"^/v1/voices$"), LIST_VOICES),
    ("GET", re.compile(r"^/v1/voices/(?P<voice_id>[^/]+)$"), GET_VOICE),
    ("DELETE", re.compile(r"^/v1/voices/(?P<voice_id>[^/]+)$"), DELETE_VOICE),
    ("GET", re.compile(r"^/v2/voices$"), SEARCH_VOICES),
    ("POST", re.compile(r"^/v1/text-to-speech/(?P<voice_id>[^/]+)$"), TTS),
    ("POST", re.compile(r"^/v1/text-to-speech/(?P<voice_id>[^/]+)/with-timestamps$"), TTS_TIMESTAMPS),
    ("GET", re.compile(r"^/v1/user/subscription$"), SUBSCRIPTION),
)

DEFAULT_MODEL_ID = "eleven_multilingual_v2"
# Per-request character limits of the text-to-speech models.
MODEL_CHARACTER_LIMITS = {
    "eleven_multilingual_v2": 10_000,
    "eleven_flash_v2_5": 40_000,
    "eleven_turbo_v2_5": 40_000,
    "eleven_flash_v2": 30_000,
    "eleven_turbo_v2": 30_000,
    "eleven_v3": 5_000,
    "eleven_monolingual_v1": 10_000,
    "eleven_multilingual_v1": 10_000,
}
# Only these models accept `language_code`; the others answer 400.
LANGUAGE_CODE_MODELS = frozenset({"eleven_turbo_v2_5", "eleven_flash_v2_5"})
V2_5_LANGUAGES = frozenset(
    "en ja zh de hi fr ko pt it es id nl tr fil pl sv bg ro ar cs el fi hr ms sk da ta uk ru hu no vi".split()
)
_SAMPLE_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
OUTPUT_FORMATS = frozenset(
    ["mp3_22050_32", "mp3_24000_48"]
    + [f"mp3_44100_{kbps}" for kbps in (32, 64, 96, 128, 192)]
    + [f"pcm_{rate}" for rate in _SAMPLE_RATES]
    + [f"wav_{rate}" for rate in _SAMPLE_RATES]
    + ["ulaw_8000", "alaw_8000"]
    + [f"opus_48000_{kbps}" for kbps in (32, 64, 96, 128, 192)]
)
DEFAULT_OUTPUT_FORMAT = "mp3_44100_128"
# The plans' concurrency limits (requests in flight); 429 beyond them.
TIER_CONCURRENCY = {"free": 2, "starter": 3, "creator": 5, "pro": 10, "scale": 15, "business": 15}

# The synthetic speech: a tone that lasts as long as the text would take to say, capped so tests stay fast.
SECONDS_PER_CHARACTER = 0.06
MIN_AUDIO_SECONDS = 0.1
MAX_AUDIO_SECONDS = 10.0
_TONE_HZ = 440


def _has_encoder(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
    except Exception:  # PyAV raises different errors for an unknown and an unavailable codec
        return False
    return True


# PyAV wheels bundle libmp3lame; a build without it serves WAV for mp3 formats (and says so at startup).
MP3_ENCODER = "libmp3lame" if _has_encoder("libmp3lame") else None

_ERROR_TYPES = {
    400: "invalid_request", 401: "authentication_error", 402: "payment_required", 403: "permission_denied",
    404: "not_found", 408: "request_timeout", 409: "conflict", 429: "rate_limit_error",
}
_DEFAULT_CODES = {
    400: "invalid_request", 401: "invalid_api_key", 402: "paid_plan_required", 403: "forbidden",
    404: "voice_not_found", 408: "request_timeout", 409: "conflict", 429: "rate_limit_exceeded",
    500: "internal_server_error", 502: "bad_gateway", 503: "service_unavailable", 504: "gateway_timeout",
}
_MESSAGES = {
    "invalid_api_key": "Invalid API key",
    "needs_authorization": "Neither authorization header nor xi-api-key received, please provide one.",
    "quota_exceeded": "This request exceeds your quota.",
    "voice_limit_reached": "You have reached your maximum amount of custom voices.",
    "can_not_use_instant_voice_cloning": "Your subscription does not allow instant voice cloning.",
    "max_character_limit_exceeded": "Text is too long for this model.",
    "paid_plan_required": "This feature requires a paid plan.",
    "voice_not_found": "A voice with that voice_id was not found.",
    "too_many_concurrent_requests": "Too many concurrent requests for your subscription.",
    "concurrent_limit_exceeded": "Too many concurrent requests for your subscription.",
    "system_busy": "We are experiencing a high volume of requests. Please try again later.",
    "rate_limit_exceeded": "You are sending requests too quickly. Please slow down.",
    "internal_server_error": "An internal server error occurred.",
    "service_unavailable": "The service is temporarily unavailable.",
}

_ID_ALPHABET = string.ascii_letters + string.digits
PREMADE_PREVIEW_URL = "https://storage.googleapis.com/eleven-public-prod/premade/voices"

# Real premade voices (ids as in ElevenLabs' default library): more than one default page of 10.
_PREMADE_VOICES = (
    ("21m00Tcm4TlvDq8ikWAM", "Rachel", "female", "american", "young", "calm"),
    ("AZnzlk1XvdvUeBnXmlld", "Domi", "female", "american", "young", "strong"),
    ("EXAVITQu4vr4xnSDxMaL", "Sarah", "female", "american", "young", "soft"),
    ("ErXwobaYiN019PkySvjV", "Antoni", "male", "american", "young", "well-rounded"),
    ("MF3mGyEYCl7XYWbV9V6O", "Elli", "female", "american", "young", "emotional"),
    ("TxGEqnHWrfWFTfGW9XjX", "Josh", "male", "american", "young", "deep"),
    ("VR6AewLTigWG4xSOukaG", "Arnold", "male", "american", "middle aged", "crisp"),
    ("pNInz6obpgDQGcFmaJgB", "Adam", "male", "american", "middle aged", "deep"),
    ("yoZ06aMxZJJ28mfd3POQ", "Sam", "male", "american", "young", "raspy"),
    ("XB0fDUnXU5powFXDhCwa", "Charlotte", "female", "swedish", "young", "seductive"),
    ("onwK4e9ZLuTAKqWW03F9", "Daniel", "male", "british", "middle aged", "authoritative"),
    ("pFZP5JQG7iQjIQuC4Bku", "Lily", "female", "british", "middle aged", "warm"),
)


def new_voice_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(20))


def audio_seconds(text: str) -> float:
    """Duration of the emulated speech for `text`."""
    return round(min(MAX_AUDIO_SECONDS, max(MIN_AUDIO_SECONDS, len(text) * SECONDS_PER_CHARACTER)), 3)


def mime_type_for(output_format: str) -> str:
    kind = output_format.split("_", 1)[0]
    if kind == "mp3" and MP3_ENCODER is None:
        kind = "wav"
    return {"mp3": "audio/mpeg", "wav": "audio/wav", "pcm": "audio/pcm", "opus": "audio/ogg",
            "ulaw": "audio/basic", "alaw": "audio/alaw"}[kind]


@functools.lru_cache(maxsize=16)
def _tone(sample_rate: int, samples: int) -> bytes:
    period = round(sample_rate / _TONE_HZ)
    one = struct.pack(f"<{period}h", *(int(8000 * math.sin(2 * math.pi * i / period)) for i in range(period)))
    return (one * (samples // period + 1))[: 2 * samples]


def _frames(sample_rate: int, samples: int, frame_size: int = 4608):
    pcm = _tone(sample_rate, samples)
    for offset in range(0, samples, frame_size):
        chunk = pcm[2 * offset: 2 * min(samples, offset + frame_size)]
        frame = av.AudioFrame(format="s16", layout="mono", samples=len(chunk) // 2)
        frame.planes[0].update(chunk)
        frame.sample_rate = sample_rate
        frame.pts = offset
        yield frame


@functools.lru_cache(maxsize=256)
def render_audio(output_format: str, seconds: float) -> bytes:
    """Real encoded audio of `seconds` in `output_format` (cached: identical requests are common)."""
    kind, rate, *rest = output_format.split("_")
    sample_rate = int(rate)
    samples = round(sample_rate * seconds)
    if kind == "pcm":
        return _tone(sample_rate, samples)
    if kind in ("ulaw", "alaw"):
        ctx = av.CodecContext.create("pcm_mulaw" if kind == "ulaw" else "pcm_alaw", "w")
        ctx.sample_rate, ctx.layout, ctx.format = sample_rate, "mono", "s16"
        packets = [p for frame in _frames(sample_rate, samples) for p in ctx.encode(frame)] + list(ctx.encode(None))
        return b"".join(bytes(p) for p in packets)
    if kind == "mp3" and MP3_ENCODER is None:
        kind = "wav"
    container, codec = {"mp3": ("mp3", MP3_ENCODER), "wav": ("wav", "pcm_s16le"), "opus": ("ogg", "libopus")}[kind]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream(codec, rate=sample_rate, layout="mono")
        if rest and kind != "wav":
            stream.bit_rate = int(rest[0]) * 1000
        for frame in _frames(sample_rate, samples):
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def error_body(status: int, code: str, message: str, request_id: str) -> dict:
    """The real error shape: the new `code` and the legacy `status` carry the same value."""
    error_type = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request")
    return {"detail": {"type": error_type, "code": code, "status": code, "message": message, "request_id": request_id}}


def validation_error(*errors: tuple[list, str, str]) -> dict:
    """FastAPI's 422 shape from (loc, msg, type) triples."""
    return {"detail": [{"loc": loc, "msg": msg, "type": kind} for loc, msg, kind in errors]}


@dataclass
class Account:
    """The emulated subscription; tests change fields directly (e.g. `emulator.account.voice_limit = 2`)."""

    tier: str = "creator"
    status: str = "active"
    character_count: int = 0
    character_limit: int = 100_000
    voice_limit: int = 30
    can_clone: bool = True
    clone_requires_verification: bool = False
    # New clones need verification and pass it this many seconds after they were added (the
    # project's state machine sees them processing, then completed); None: ready at once.
    clone_ready_after: float | None = None
    next_reset_unix: int = field(default_factory=lambda: int(time.time()) + 30 * 86400)


@dataclass(frozen=True)
class UploadedFile:
    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class RecordedRequest:
    endpoint: str | None
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    json: Any = None
    json_error: bool = False
    form: dict[str, list[str]] = field(default_factory=dict)
    files: list[UploadedFile] = field(default_factory=list)
    status: int | None = None
    response_json: Any = None
    response_headers: dict[str, str] = field(default_factory=dict)
    injected: bool = False  # answered by fail(): its body is whatever the test asked for
    received_at: float = 0.0  # time.time() when the request was read, and when its answer was ready
    answered_at: float = 0.0


@dataclass
class _Fault:
    status: int
    code: str | None
    message: str | None
    remaining: int | None
    retry_after: float | None
    body: Any
    disconnect: bool
    probability: float = 1.0


@dataclass
class _Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    disconnect: bool = False
    json: Any = None


def _json_response(status: int, obj: Any, headers: dict[str, str] | None = None) -> _Response:
    return _Response(status, json.dumps(obj).encode(), "application/json", dict(headers or {}), json=obj)


def _parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, list[str]], list[UploadedFile]]:
    header = Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    form: dict[str, list[str]] = {}
    files: list[UploadedFile] = []
    if not boundary:
        return form, files
    for part in body.split(b"--" + str(boundary).encode())[1:]:
        if part.startswith(b"--"):
            break
        head, _, data = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        data = data.removesuffix(b"\r\n")
        part_headers = Message()
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            part_headers[name.strip()] = value.strip()
        field_name = part_headers.get_param("name", header="content-disposition")
        filename = part_headers.get_param("filename", header="content-disposition")
        if field_name is None:
            continue
        if filename is None:
            form.setdefault(str(field_name), []).append(data.decode("utf-8", "replace"))
        else:
            files.append(UploadedFile(str(field_name), str(filename),
                                      part_headers.get("content-type", "application/octet-stream"), data))
    return form, files


def _sample_duration(data: bytes) -> float | None:
    try:
        with av.open(io.BytesIO(data)) as container:
            return round(container.duration / 1_000_000, 3) if container.duration else None
    except (av.error.FFmpegError, ValueError):
        return None


def _value(values: dict[str, list[str]], key: str) -> str | None:
    # Repeated keys: the last one wins, as in FastAPI's form and scalar query parsing.
    found = values.get(key)
    return found[-1] if found else None


def _parse_bool(raw: str | None, default: bool) -> bool | None:
    if raw is None:
        return default
    return {"true": True, "1": True, "false": False, "0": False}.get(raw.lower())


class ElevenLabsEmulator:
    """In-memory ElevenLabs. `start()` serves it on `base_url`; every public method is thread-safe."""

    def __init__(self, *, api_key: str = DEFAULT_API_KEY, host: str = "127.0.0.1", port: int = 0) -> None:
        self._initial_api_key = api_key
        self._host = host
        self._port = port
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._generation = 0
        self._wake = threading.Event()
        self.reset()

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> ElevenLabsEmulator:
        self._server = _Server((self._host, self._port), _Handler)
        self._server.emulator = self
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="elevenlabs-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._wake.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ElevenLabsEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def reset(self) -> None:
        """Back to a fresh account with only the premade voices; no faults, latency or log."""
        with self._lock:
            # Requests still sleeping from an earlier test wake up, and their bookkeeping is ignored.
            self._generation += 1
            self._wake.set()
            self._wake = threading.Event()
            self.api_key = self._initial_api_key
            self.account = Account()
            self._voices: dict[str, dict] = {}
            self._faults: dict[str, list[_Fault]] = {}
            self._verify_at: dict[str, float] = {}  # voice id -> when its verification passes
            self._fault_random = random.Random(0)
            self._latency: dict[str, float] = {}
            self._concurrency_limit: int | None = TIER_CONCURRENCY[self.account.tier]
            self._requests: list[RecordedRequest] = []
            self._counts: Counter[str] = Counter()
            self._path_counts: Counter[str] = Counter()
            self._in_flight = 0
            self._tts_in_flight = 0
            self._max_in_flight = 0
            self._max_tts_in_flight = 0
            for voice_id, name, gender, accent, age, description in _PREMADE_VOICES:
                self._voices[voice_id] = self._voice_json(
                    voice_id=voice_id, name=name, category="premade", description=description,
                    labels={"accent": accent, "age": age, "gender": gender, "language": "en",
                            "descriptive": description, "use_case": "narrative_story"},
                    preview_url=f"{PREMADE_PREVIEW_URL}/{voice_id}/preview.mp3",
                    fine_tuning_state={model: "fine_tuned" for model in MODEL_CHARACTER_LIMITS},
                    created_at_unix=None,
                )

    # --- fault injection -------------------------------------------------------------------------
    def fail(self, endpoint: str, status: int = 500, *, code: str | None = None, message: str | None = None,
             times: int | None = 1, retry_after: float | None = None, body: Any = None,
             disconnect: bool = False, probability: float = 1.0) -> None:
        """Answer the next `times` requests to `endpoint` ("*" for any; `times=None`: until `clear_faults()`)
        with `status` and a real-shaped error body for `code`, or with `body` verbatim (dict/list as
        JSON, str/bytes as text). `disconnect=True` closes the connection without answering.
        `probability` < 1 hits each request with that chance instead (from `seed_faults()`)."""
        self._check_endpoint(endpoint)
        if not 0 < probability <= 1:
            raise ValueError("probability must be in (0, 1]")
        with self._lock:
            self._faults.setdefault(endpoint, []).append(
                _Fault(status, code, message, times, retry_after, body, disconnect, probability))

    def seed_faults(self, seed: int) -> None:
        """Seed the draws of probabilistic faults (the order of concurrent requests still varies)."""
        with self._lock:
            self._fault_random.seed(seed)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def set_latency(self, endpoint: str, seconds: float) -> None:
        """Every request to `endpoint` ("*" for any) waits `seconds` before it is answered."""
        self._check_endpoint(endpoint)
        with self._lock:
            self._latency[endpoint] = seconds

    def set_concurrency_limit(self, limit: int | None) -> None:
        """Text-to-speech requests beyond `limit` in flight get 429 too_many_concurrent_requests.
        Defaults to the tier's limit (creator: 5); None removes the cap."""
        with self._lock:
            self._concurrency_limit = limit

    # --- voice state -----------------------------------------------------------------------------
    def add_voice(self, name: str, *, category: str = "cloned", voice_id: str | None = None,
                  labels: dict[str, str] | None = None, description: str | None = None,
                  requires_verification: bool = False, is_verified: bool = False,
                  fine_tuning_state: dict[str, str] | None = None) -> str:
        """Create a voice directly (no request, no slot check): seeds for tests."""
        voice_id = voice_id or new_voice_id()
        with self._lock:
            self._voices[voice_id] = self._voice_json(
                voice_id=voice_id, name=name, category=category, labels=labels or {}, description=description,
                requires_verification=requires_verification, is_verified=is_verified,
                fine_tuning_state=fine_tuning_state or {}, created_at_unix=int(time.time()))
        return voice_id

    def _pass_due_verifications(self) -> None:
        now = time.monotonic()
        for voice_id, due in list(self._verify_at.items()):
            if due <= now:
                del self._verify_at[voice_id]
                if voice_id in self._voices:
                    self._voices[voice_id]["voice_verification"]["is_verified"] = True

    def voice(self, voice_id: str) -> dict | None:
        with self._lock:
            self._pass_due_verifications()
            found = self._voices.get(voice_id)
            return copy.deepcopy(found) if found is not None else None

    def voice_ids(self, category: str | None = None) -> list[str]:
        with self._lock:
            return [vid for vid, v in self._voices.items() if category is None or v["category"] == category]

    def set_verification(self, voice_id: str, *, requires_verification: bool, is_verified: bool) -> None:
        with self._lock:
            verification = self._voices[voice_id]["voice_verification"]
            verification["requires_verification"] = requires_verification
            verification["is_verified"] = is_verified

    def set_category(self, voice_id: str, category: str) -> None:
        with self._lock:
            self._voices[voice_id]["category"] = category

    def set_fine_tuning_state(self, voice_id: str, model_id: str, state: str) -> None:
        with self._lock:
            self._voices[voice_id]["fine_tuning"]["state"][model_id] = state

    def remove_voice(self, voice_id: str) -> None:
        """Delete a voice behind the client's back (as if removed on the website)."""
        with self._lock:
            self._voices.pop(voice_id, None)

    # --- request log -----------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def count(self, endpoint: str | None = None, *, method: str | None = None, path: str | None = None) -> int:
        """Requests received for `endpoint`, or for `method` + `path`; all requests without arguments."""
        with self._lock:
            if endpoint is not None:
                return self._counts[endpoint]
            if path is not None:
                return self._path_counts[f"{method or 'GET'} {path}"]
            return len(self._requests)

    @property
    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    @property
    def path_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._path_counts)

    def last_request(self, endpoint: str) -> RecordedRequest | None:
        with self._lock:
            return next((r for r in reversed(self._requests) if r.endpoint == endpoint), None)

    @property
    def max_in_flight(self) -> int:
        with self._lock:
            return self._max_in_flight

    @property
    def max_tts_in_flight(self) -> int:
        with self._lock:
            return self._max_tts_in_flight

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    # --- serving ---------------------------------------------------------------------------------
    def _serve(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> _Response:
        split = urlsplit(raw_path)
        endpoint, params, allowed = self._route(method, split.path)
        record = RecordedRequest(endpoint, method, split.path, parse_qs(split.query, keep_blank_values=True), headers,
                                 received_at=time.time())
        content_type = headers.get("content-type", "")
        if content_type.startswith("application/json") and body:
            try:
                record.json = json.loads(body)
            except ValueError:
                record.json_error = True
        elif content_type.startswith("multipart/form-data"):
            record.form, record.files = _parse_multipart(content_type, body)
        elif content_type.startswith("application/x-www-form-urlencoded"):
            record.form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        with self._lock:
            self._pass_due_verifications()
            generation, wake = self._generation, self._wake
            self._requests.append(record)
            self._counts[endpoint or "unknown"] += 1
            self._path_counts[f"{method} {split.path}"] += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            tts_now = 0
            if endpoint in TTS_ENDPOINTS:
                self._tts_in_flight += 1
                tts_now = self._tts_in_flight
                self._max_tts_in_flight = max(self._max_tts_in_flight, tts_now)
            latency = self._latency.get(endpoint or "", self._latency.get(ANY_ENDPOINT, 0.0))
        try:
            response = self._respond(record, endpoint, params, allowed, tts_now, latency, wake, generation)
        finally:
            with self._lock:
                if generation == self._generation:
                    self._in_flight -= 1
                    if endpoint in TTS_ENDPOINTS:
                        self._tts_in_flight -= 1
        record.status = response.status
        record.answered_at = time.time()
        record.response_json = response.json
        record.response_headers = dict(response.headers)
        return response

    def _respond(self, record: RecordedRequest, endpoint: str | None, params: dict[str, str], allowed: bool,
                 tts_now: int, latency: float, wake: threading.Event, generation: int) -> _Response:
        request_id = uuid.uuid4().hex
        if endpoint is None:
            return _json_response(405 if allowed else 404, {"detail": "Method Not Allowed" if allowed else "Not Found"})
        limit = self._concurrency_limit
        if endpoint in TTS_ENDPOINTS and limit is not None and tts_now > limit:
            return self._error(429, "too_many_concurrent_requests", request_id,
                               f"Too many concurrent requests. Your subscription allows {limit} concurrent "
                               f"requests and {tts_now} were in flight.")
        if latency:
            wake.wait(latency)
            if generation != self._generation:
                # reset() ran while this request slept: it belongs to an earlier test and must not
                # touch the fresh state.
                return _Response(0, disconnect=True)
        fault = self._take_fault(endpoint)
        if fault is not None:
            record.injected = fault.body is not None
            return self._fault_response(fault, request_id)
        key = record.headers.get("xi-api-key")
        if not key:
            return self._error(401, "needs_authorization", request_id)
        if key != self.api_key:
            return self._error(401, "invalid_api_key", request_id)
        handler = getattr(self, f"_handle_{endpoint}")
        response = handler(record, params, request_id)
        response.headers.setdefault("request-id", request_id)
        return response

    def _route(self, method: str, path: str) -> tuple[str | None, dict[str, str], bool]:
        path_matched = False
        for route_method, pattern, endpoint in _ROUTES:
            match = pattern.match(path)
            if match:
                if route_method == method:
                    return endpoint, {k: unquote(v) for k, v in match.groupdict().items()}, True
                path_matched = True
        return None, {}, path_matched

    def _take_fault(self, endpoint: str) -> _Fault | None:
        with self._lock:
            for key in (endpoint, ANY_ENDPOINT):
                queue = self._faults.get(key)
                if queue:
                    fault = queue[0]
                    if fault.probability < 1 and self._fault_random.random() >= fault.probability:
                        continue
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            queue.pop(0)
                    return fault
        return None

    def _fault_response(self, fault: _Fault, request_id: str) -> _Response:
        if fault.disconnect:
            return _Response(0, disconnect=True)
        headers = {"request-id": request_id}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        if isinstance(fault.body, (bytes, str)):
            raw = fault.body.encode() if isinstance(fault.body, str) else fault.body
            return _Response(fault.status, raw, "text/plain; charset=utf-8", headers)
        if fault.body is not None:
            return _json_response(fault.status, fault.body, headers)
        if fault.status == 422:
            return _json_response(422, validation_error(
                (["body"], fault.message or "Input should be a valid request", "value_error")), headers)
        code = fault.code or _DEFAULT_CODES.get(fault.status, "error")
        message = fault.message or _MESSAGES.get(code, code.replace("_", " "))
        return _json_response(fault.status, error_body(fault.status, code, message, request_id), headers)

    def _error(self, status: int, code: str, request_id: str, message: str | None = None) -> _Response:
        body = error_body(status, code, message or _MESSAGES.get(code, code.replace("_", " ")), request_id)
        return _json_response(status, body, {"request-id": request_id})

    @staticmethod
    def _check_endpoint(endpoint: str) -> None:
        if endpoint != ANY_ENDPOINT and endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {ENDPOINTS} or {ANY_ENDPOINT!r}")

    def _voice_json(self, *, voice_id: str, name: str, category: str, labels: dict[str, str],
                    description: str | None, samples: list[dict] | None = None, preview_url: str | None = None,
                    requires_verification: bool = False, is_verified: bool = False,
                    fine_tuning_state: dict[str, str], created_at_unix: int | None) -> dict:
        return {
            "voice_id": voice_id,
            "name": name,
            "samples": samples,
            "category": category,
            "fine_tuning": {
                "is_allowed_to_fine_tune": category == "professional",
                "state": dict(fine_tuning_state),
                "verification_failures": [],
                "verification_attempts_count": 0,
                "manual_verification_requested": False,
            },
            "labels": dict(labels),
            "description": description,
            "preview_url": preview_url,
            "available_for_tiers": [],
            "settings": None,
            "sharing": None,
            "high_quality_base_model_ids": ["eleven_multilingual_v2", "eleven_flash_v2_5"],
            "verified_languages": [],
            "safety_control": None,
            "voice_verification": {
                "requires_verification": requires_verification,
                "is_verified": is_verified,
                "verification_failures": [],
                "verification_attempts_count": 0,
            },
            "permission_on_resource": None if category == "premade" else "admin",
            "is_owner": category != "premade",
            "is_legacy": False,
            "is_mixed": False,
            "created_at_unix": created_at_unix,
        }

    # --- endpoints -------------------------------------------------------------------------------
    def _handle_add_voice(self, record: RecordedRequest, params: dict[str, str], request_id: str) -> _Response:
        errors = []
        name = (_value(record.form, "name") or "").strip()
        if not name:
            errors.append((["body", "name"], "Field required", "missing"))
        samples = [f for f in record.files if f.field == "files"]
        if not samples:
            errors.append((["body", "files"], "Field required", "missing"))
        labels: Any = {}
        raw_labels = _value(record.form, "labels")
        if raw_labels not in (None, "", "null"):
            try:
                labels = json.loads(raw_labels)
            except ValueError:
                labels = None
            if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
                errors.append((["body", "labels"], "Labels must be a JSON object of strings", "value_error"))
        if _parse_bool(_value(record.form, "remove_background_noise"), False) is None:
            errors.append((["body", "remove_background_noise"], "Input should be a valid boolean", "bool_parsing"))
        if errors:
            return _json_response(422, validation_error(*errors))
        with self._lock:
            if not self.account.can_clone:
                return self._error(403, "can_not_use_instant_voice_cloning", request_id)
            used = sum(1 for v in self._voices.values() if v["category"] != "premade")
            if used >= self.account.voice_limit:
                return self._error(400, "voice_limit_reached", request_id,
                                   f"You have reached your maximum amount of custom voices ({used} / "
                                   f"{self.account.voice_limit}). You can upgrade your subscription to "
                                   "increase your custom voice limit.")
            voice_id = new_voice_id()
            requires_verification = self.account.clone_requires_verification or self.account.clone_ready_after is not None
            if self.account.clone_ready_after is not None:
                self._verify_at[voice_id] = time.monotonic() + self.account.clone_ready_after
            self._voices[voice_id] = self._voice_json(
                voice_id=voice_id, name=name, category="cloned", labels=labels,
                description=_value(record.form, "description"),
                samples=[{"sample_id": new_voice_id(), "file_name": f.filename, "mime_type": f.content_type,
                          "size_bytes": len(f.data), "hash": hashlib.md5(f.data).hexdigest(),
                          "duration_secs": _sample_duration(f.data)} for f in samples],
                requires_verification=requires_verification, fine_tuning_state={},
                created_at_unix=int(time.time()))
        return _json_response(200, {"voice_id": voice_id, "requires_verification": requires_verification})

    def _voice_or_404(self, voice_id: str, request_id: str) -> dict | _Response:
        with self._lock:
            voice = self._voices.get(voice_id)
            if voice is None:
                return self._error(404, "voice_not_found", request_id,
                                   f"A voice with the voice_id {voice_id} was not found.")
            return copy.deepcopy(voice)

    def _handle_get_voice(self, record: RecordedRequest, params: dict[str, str], request_id: str) -> _Response:
        found = self._voice_or_404(params["voice_id"], request_id)
        return found if isinstance(found, _Response) else _json_response(200, found)

    def _handle_delete_voice(self, record: RecordedRequest, params: dict[str, str], request_id: str) -> _Response:
        with self._lock:
            if self._voices.pop(params["voice_id"], None) is None:
                return self._error(404, "voice_not_found", request_id,
                                   f"A voice with the voice_id {params['voice_id']} was not found.")
        return _json_response(200, {"status": "ok"})

    def _handle_list_voices(self, record: RecordedRequest, params: dict[str, str], request_id: str) -> _Response:
        with self._lock:
            return _json_response(200, {"voices": copy.deepcopy(list(self._voices.values()))})

    def _handle_search_voices(self, record: RecordedRequest, params: dict[str, str], request_id: str) -> _Response:
        query = record.query
        errors = []
        raw_size = _value(query, "page_size")
        page_size = 10  # the API's default page: a client that forgets page_size sees 10 voices
        if raw_size is not None:
            try:
                page_size = int(raw_size)
            except ValueError:
                errors.append((["query", "page_size"], "Input should be a valid integer", "int_parsing"))
            else:
                if page_size > 100:
                    errors.append((["query", "page_size"], "Input should be less than or equal to 100",
                                   "less_than_equal"))
                elif page_size < 1:
                    errors.append((["query", "page_size"], "Input should be greater than or equal to 1",
                                   "greater_than_equal"))
        voice_ids = query.get("voice_ids", [])
        if len(voice_ids) > 100:
            errors.append((["query", "voice_ids"],
                           f"List should have at most 100 items after validation, not {len(voice_ids)}", "too_long"))
        voice_type = _value(query, "voice_type")
        if voice_type not in (None, "personal", "community", "default", "workspace", "non-default", "saved"):
            errors.append((["query", "voice_type"], "Input should be 'personal', 'community', 'default', "
                                                    "'workspace', 'non-default' or 'saved'", "literal_error"))
        if _parse_bool(_value(query, "include_total_count"), True) is None:
            errors.append((["query", "include_total_count"], "Input should be a valid boolean", "bool_parsing"))
        offset = 0
        token = _value(query, "next_page_token")
        if token:
            try:
                offset = int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
            except (ValueError, KeyError, TypeError, binascii.Error):
                errors.append((["query", "next_page_token"], "Invalid page token", "value_error"))
        if errors:
            return _json_response(422, validation_error(*errors))
        with self._lock:
            voices = list(self._voices.values())
        if voice_ids:
            wanted = set(voice_ids)
            voices = [v for v in voices if v["voice_id"] in wanted]
        if voice_type == "default":
            voices = [v for v in voices if v["category"] == "premade"]
        elif voice_type in ("community", "saved"):
            voices = []  # no library voices are ever added to this account
        elif voice_type is not None:
            voices = [v for v in voices if v["category"] != "premade"]
        category = _value(query, "category")
        if category:
            voices = [v for v in voices if v["category"] == category]
        search = (_value(query, "search") or "").lower()
        if search:
            voices = [v for v in voices if search in " ".join(
                [v["name"], v.get("description") or "", v["category"], *v["labels"].values()]).lower()]
        sort = _value(query, "sort")
        if sort in ("name", "created_at_unix"):
            voices.sort(key=lambda v: (v[sort] or 0) if sort == "created_at_unix" else v[sort].lower(),
                        reverse=_value(query, "sort_direction") == "desc")
        page = voices[offset: offset + page_size]
        has_more = offset + page_size < len(voices)
        next_token = (base64.urlsafe_b64encode(json.dumps({"offset": offset + page_size}).encode()).decode()
                      if has_more else None)
        return _json_response(200, {"voices": copy.deepcopy(page), "has_more": has_more,
                                    "total_count": len(voices), "next_page_token": next_token})

    def _handle_subscription(self, record: RecordedRequest, params: dict[str, str], request_id: str) -> _Response:
        with self._lock:
            account = self.account
            used = sum(1 for v in self._voices.values() if v["category"] != "premade")
            body = {
                "tier": account.tier, "status": account.status,
                "character_count": account.character_count, "character_limit": account.character_limit,
                "max_character_limit_extension": None, "can_extend_character_limit": False,
                "allowed_to_extend_character_limit": False,
                "next_character_count_reset_unix": account.next_reset_unix,
                "voice_slots_used": used, "professional_voice_slots_used": 0, "voice_limit": account.voice_limit,
                "max_voice_add_edits": None, "voice_add_edit_counter": 0, "professional_voice_limit": 1,
                "can_extend_voice_limit": False, "can_use_instant_voice_cloning": account.can_clone,
                "can_use_professional_voice_cloning": account.tier not in ("free", "starter"),
                "currency": "usd", "billing_period": "monthly_period", "character_refresh_period": "monthly_period",
                "has_open_invoices": False,
            }
        return _json_response(200, body)

    def _synthesize(self, record: RecordedRequest, voice_id: str,
                    request_id: str) -> _Response | tuple[str, str, float, dict]:
        """Validates a text-to-speech request like the API does; returns (text, format, seconds, headers)."""
        body = record.json
        if record.json_error or not isinstance(body, dict):
            kind = "json_invalid" if record.json_error else "model_attributes_type"
            return _json_response(422, validation_error((["body"], "Input should be a valid JSON object", kind)))
        errors = []
        text = body.get("text")
        if not isinstance(text, str):
            errors.append((["body", "text"], "Field required" if text is None else "Input should be a valid string",
                           "missing" if text is None else "string_type"))
        for key in ("previous_request_ids", "next_request_ids", "pronunciation_dictionary_locators"):
            if isinstance(body.get(key), list) and len(body[key]) > 3:
                errors.append((["body", key], "List should have at most 3 items after validation, "
                                              f"not {len(body[key])}", "too_long"))
        output_format = _value(record.query, "output_format") or DEFAULT_OUTPUT_FORMAT
        if output_format not in OUTPUT_FORMATS:
            errors.append((["query", "output_format"], "Input should be a valid output format", "enum"))
        if errors:
            return _json_response(422, validation_error(*errors))
        voice = self._voice_or_404(voice_id, request_id)
        if isinstance(voice, _Response):
            return voice
        model_id = body.get("model_id") or DEFAULT_MODEL_ID
        if model_id not in MODEL_CHARACTER_LIMITS:
            return self._error(400, "model_not_found", request_id, f"A model with model_id {model_id} was not found.")
        language = body.get("language_code")
        if language is not None:
            if model_id not in LANGUAGE_CODE_MODELS:
                return self._error(400, "unsupported_language_code", request_id,
                                   f"Model '{model_id}' does not support the language_code parameter; only "
                                   f"{', '.join(sorted(LANGUAGE_CODE_MODELS))} accept it.")
            if language not in V2_5_LANGUAGES:
                return self._error(400, "unsupported_language_code", request_id,
                                   f"Model '{model_id}' does not support language_code '{language}'.")
        limit = MODEL_CHARACTER_LIMITS[model_id]
        if len(text) > limit:
            return self._error(400, "max_character_limit_exceeded", request_id,
                               f"Text is too long: {len(text)} characters. The maximum for model {model_id} "
                               f"is {limit} characters.")
        verification = voice["voice_verification"]
        if verification["requires_verification"] and not verification["is_verified"]:
            return self._error(400, "voice_not_verified", request_id,
                               "This voice must be verified before it can be used.")
        cost = len(text)
        with self._lock:
            remaining = self.account.character_limit - self.account.character_count
            if cost > remaining:
                return self._error(401, "quota_exceeded", request_id,
                                   f"This request exceeds your quota of {self.account.character_limit}. You have "
                                   f"{max(0, remaining)} credits remaining, while {cost} credits are required for "
                                   "this request.")
            self.account.character_count += cost
            limit_now = self._concurrency_limit
            current = self._tts_in_flight
        headers = {
            "request-id": request_id,
            "history-item-id": new_voice_id(),
            "character-cost": str(cost),
            "current-concurrent-requests": str(max(1, current)),
            "maximum-concurrent-requests": str(limit_now if limit_now is not None
                                               else TIER_CONCURRENCY.get(self.account.tier, 5)),
        }
        return text, output_format, audio_seconds(text), headers

    def _handle_tts(self, record: RecordedRequest, params: dict[str, str], request_id: str) -> _Response:
        result = self._synthesize(record, params["voice_id"], request_id)
        if isinstance(result, _Response):
            return result
        text, output_format, seconds, headers = result
        return _Response(200, render_audio(output_format, seconds), mime_type_for(output_format), headers)

    def _handle_tts_timestamps(self, record: RecordedRequest, params: dict[str, str], request_id: str) -> _Response:
        result = self._synthesize(record, params["voice_id"], request_id)
        if isinstance(result, _Response):
            return result
        text, output_format, seconds, headers = result
        step = seconds / len(text) if text else 0.0
        alignment = {
            "characters": list(text),
            "character_start_times_seconds": [round(i * step, 3) for i in range(len(text))],
            "character_end_times_seconds": [round((i + 1) * step, 3) for i in range(len(text))],
        }
        body = {"audio_base64": base64.b64encode(render_audio(output_format, seconds)).decode(),
                "alignment": alignment, "normalized_alignment": copy.deepcopy(alignment)}
        return _json_response(200, body, headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # keep-alive connections must not block stop()
    emulator: ElevenLabsEmulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up is expected (timeout tests); anything else is a bug.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "elevenlabs-emulator"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_DELETE = do_PUT = do_PATCH = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def _dispatch(self) -> None:
        body = self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        response = self.server.emulator._serve(self.command, self.path, headers, body)
        if response.disconnect:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.elevenlabs", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    args = parser.parse_args(argv)
    # Ctrl+C stops it even when started from a shell that left SIGINT ignored (a background job):
    # Python installs no KeyboardInterrupt handler for an inherited SIG_IGN.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    emulator = ElevenLabsEmulator(api_key=args.api_key, host=args.host, port=args.port).start()
    audio = f"mp3 via {MP3_ENCODER}" if MP3_ENCODER else "WAV instead of mp3 (this FFmpeg build has no mp3 encoder)"
    print(f"ElevenLabs emulator listening on {emulator.base_url} (audio: {audio})\n"
          "Point the service at it:\n"
          f"  export ELEVENLABS_API_KEY={args.api_key}\n"
          f"  export ELEVENLABS_BASE_URL={emulator.base_url}\n"
          "  export TTS_PROVIDER=elevenlabs   # to clone new voices there too\n"
          "Ctrl+C stops it.", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
