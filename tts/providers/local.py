"""The offline `local` speech provider: eSpeak NG voices, and "clones" that are eSpeak voices tuned
to the speaker's measured pitch. Needs no network and no account; its clones live in the database
(`tts.LocalProviderVoice`) because web and worker are separate processes."""

import io
import math
import operator
import re
import uuid
import wave
from array import array
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from itertools import accumulate

from django.conf import settings
from django.utils import timezone

from tts.audio import OUTPUT_FORMATS, UndecodableAudio, decode_audio, encode_audio, mime_type_for
from tts.languages import language_base, language_tag
from tts.models import LocalProviderVoice

from . import espeak

from .base import (
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

# Offline speech is not metered: a limit nobody reaches.
CHARACTER_LIMIT = 1_000_000_000

VARIANT_FOR_GENDER = {"female": "f3", "male": "m3"}
# Below this median F0 a sample without a gender label is taken as a male voice.
FEMALE_MIN_F0_HZ = 160.0

# Median F0 (Hz, measured with `estimate_f0`) of eSpeak's output at pitch 0, 10, ..., 100 for each
# variant, averaged over English, Korean and Japanese text. Inverting it makes a clone speak at
# the speaker's own pitch.
F0_AT_PITCH = {
    "m3": (71, 76, 81, 88, 96, 105, 116, 127, 141, 157, 173),
    "f3": (146, 157, 166, 180, 193, 210, 230, 253, 277, 307, 336),
}

# eSpeak reads kanji letter by letter ("Chinese letter"), so Japanese text must be kana.
KANJI = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
# Read-along words: runs between whitespace and CJK punctuation (、。「」 and the ideographic space).
TOKEN = re.compile(r"[^\s\u3000-\u303f]+")
EDGE_PUNCTUATION = re.compile(r"^[\W_]+|[\W_]+$")

# Pitch analysis: 4 kHz mono PCM (harmonics up to 2 kHz are plenty for F0), 40 ms frames, the
# loudest frames only (voiced speech is louder than consonants and pauses). That keeps a
# pure-Python autocorrelation fast; the F0_AT_PITCH table was measured with these same constants.
ANALYSIS_RATE = 4000
FRAME = 160
MAX_FRAMES = 150
MAX_ANALYSIS_SECONDS = 120
MIN_FRAME_RMS = 100
MIN_VOICED_FRAMES = 5
VOICING_THRESHOLD = 0.6
LAG_MIN = ANALYSIS_RATE // 400  # 400 Hz
LAG_MAX = ANALYSIS_RATE // 60  # 60 Hz

# A language code as labels and requests carry it ("en", "en-US", "ko_KR"); also keeps "+" and
# other eSpeak syntax out of voice names.
LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")
# eSpeak's plain "en" is British English; the app's English default is American.
ESPEAK_LANGUAGE_ALIASES = {"en": "en-us"}


@dataclass(frozen=True)
class Preset:
    provider_voice_id: str
    name: str
    language: str
    gender: str
    espeak_voice: str
    accent: str = ""
    description: str = ""

    def as_provider_voice(self) -> ProviderVoice:
        labels = {"language": self.language, "gender": self.gender}
        if self.accent:
            labels["accent"] = self.accent
        return ProviderVoice(
            provider_voice_id=self.provider_voice_id, name=self.name, category="premade", status=VOICE_READY,
            language=self.language, gender=self.gender, accent=self.accent, description=self.description,
            labels=labels,
        )


KANA_ONLY = "Offline eSpeak voice; reads kana (hiragana, katakana) only, text with kanji is refused."
PRESETS = {
    preset.provider_voice_id: preset
    for preset in (
        Preset("local-ko-f", "Korean female", "ko", "female", "ko+f3", description="Offline eSpeak voice."),
        Preset("local-ko-m", "Korean male", "ko", "male", "ko+m3", description="Offline eSpeak voice."),
        Preset("local-en-us-f", "English (US) female", "en", "female", "en-us+f3", accent="american",
               description="Offline eSpeak voice."),
        Preset("local-en-us-m", "English (US) male", "en", "male", "en-us+m3", accent="american",
               description="Offline eSpeak voice."),
        Preset("local-ja-f", "Japanese female (kana)", "ja", "female", "ja+f3", description=KANA_ONLY),
        Preset("local-ja-m", "Japanese male (kana)", "ja", "male", "ja+m3", description=KANA_ONLY),
    )
}
DEFAULT_PITCH = 50


class LocalProvider(SpeechProvider):
    name = "local"
    # eSpeak renders 22,050 Hz PCM; PyAV encodes it into whatever format the request names.
    output_formats = OUTPUT_FORMATS

    def default_model_id(self) -> str:
        return ""

    def text_limit(self, model_id: str) -> int:
        return settings.LOCAL_TEXT_LIMIT

    # --- voices ---------------------------------------------------------------------------

    def list_default_voices(self) -> list[ProviderVoice]:
        return [preset.as_provider_voice() for preset in PRESETS.values()]

    def clone_voice(self, *, name: str, samples: Sequence[SampleFile], description: str = "",
                    labels: dict | None = None, remove_background_noise: bool = False) -> CloneResult:
        """Measures the speaker's pitch and stores an eSpeak voice at that pitch.

        `labels["language"]` picks the eSpeak language (default English), `labels["gender"]` the
        variant (inferred from the pitch when absent). It has no noise removal: the pitch
        estimate does not need it."""
        labels = dict(labels or {})
        language = str(labels.get("language") or "en")
        espeak_language = resolve_espeak_language(language)
        if espeak_language is None:
            raise ProviderError("validation_error", f"language {language!r} is not supported by the offline voices")
        if not samples:
            raise ProviderError("invalid_audio", "at least one audio sample is needed")
        if LocalProviderVoice.objects.filter(deleted_at__isnull=True).count() >= settings.LOCAL_VOICE_LIMIT:
            raise ProviderError("voice_limit_reached", "the offline provider has no free voice slot")

        f0 = estimate_f0([decode_for_analysis(sample) for sample in samples])
        gender = normalise_gender(labels.get("gender")) or ("female" if f0 >= FEMALE_MIN_F0_HZ else "male")
        variant = VARIANT_FOR_GENDER[gender]
        now = timezone.now()
        voice = LocalProviderVoice.objects.create(
            provider_voice_id=f"local-clone-{uuid.uuid4().hex}",
            name=name,
            description=description,
            language=language_base(language),
            gender=gender,
            labels=labels,
            espeak_voice=f"{espeak_language}+{variant}",
            pitch=pitch_for_f0(f0, variant),
            measured_f0_hz=round(f0, 1),
            created_at=now,
            ready_at=now + timedelta(seconds=settings.LOCAL_CLONE_PROCESSING_SECONDS),
        )
        return CloneResult(provider_voice_id=voice.provider_voice_id)

    def get_voice(self, provider_voice_id: str) -> ProviderVoice:
        voice = self.get_voices([provider_voice_id]).get(provider_voice_id)
        if voice is None:
            raise ProviderError("voice_not_found", f"voice {provider_voice_id!r} not found")
        return voice

    def get_voices(self, provider_voice_ids: Sequence[str]) -> dict[str, ProviderVoice]:
        found = {vid: PRESETS[vid].as_provider_voice() for vid in provider_voice_ids if vid in PRESETS}
        clone_ids = [vid for vid in provider_voice_ids if vid not in PRESETS]
        if clone_ids:
            found.update(self._clones(LocalProviderVoice.objects.filter(provider_voice_id__in=clone_ids)))
        return found

    def list_account_voices(self) -> list[ProviderVoice]:
        return list(self._clones(LocalProviderVoice.objects.order_by("provider_voice_id")).values())

    @staticmethod
    def _clones(rows) -> dict[str, ProviderVoice]:
        now = timezone.now()
        return {
            row.provider_voice_id: ProviderVoice(
                provider_voice_id=row.provider_voice_id, name=row.name, category="cloned",
                status=VOICE_READY if now >= row.ready_at else VOICE_PROCESSING,
                language=row.language, gender=row.gender, description=row.description, labels=row.labels,
            )
            for row in rows.filter(deleted_at__isnull=True)
        }

    def delete_voice(self, provider_voice_id: str) -> None:
        # One conditional UPDATE: of two concurrent deletes exactly one succeeds.
        deleted = LocalProviderVoice.objects.filter(
            provider_voice_id=provider_voice_id, deleted_at__isnull=True
        ).update(deleted_at=timezone.now())
        if not deleted:
            raise ProviderError("voice_not_found", f"voice {provider_voice_id!r} not found")

    def account_limits(self) -> AccountLimits:
        return AccountLimits(
            character_count=0,
            character_limit=CHARACTER_LIMIT,
            voice_slots_used=LocalProviderVoice.objects.filter(deleted_at__isnull=True).count(),
            voice_limit=settings.LOCAL_VOICE_LIMIT,
        )

    # --- speech ---------------------------------------------------------------------------

    def synthesize(self, request: SpeechRequest) -> SpeechResult:
        """eSpeak renders 16-bit mono PCM at 22,050 Hz; PyAV encodes it as `output_format` (the
        same names and formats as ElevenLabs', so clients get the same files). `model_id`, `seed` and the
        previous/next text have no eSpeak counterpart and are ignored; `voice_settings["speed"]`
        scales the speaking rate. A `language` overrides the voice's own language, keeping its
        variant and pitch."""
        text = request.text
        if not text.strip():
            raise ProviderError("validation_error", "the text is empty")
        espeak_voice, pitch = self._espeak_voice(request.provider_voice_id)
        if request.language:
            espeak_language = resolve_espeak_language(request.language)
            if espeak_language is None:
                raise ProviderError("validation_error",
                                    f"language {request.language!r} is not supported by the offline voices")
            espeak_voice = f"{espeak_language}+{espeak_voice.partition('+')[2]}"
        if language_base(espeak_voice.partition("+")[0]) == "ja" and KANJI.search(text):
            raise ProviderError("validation_error",
                                "the offline Japanese voice reads kana only; write the text in hiragana or katakana")

        try:
            result = espeak.synthesize(text, voice=espeak_voice, rate=speaking_rate(request.voice_settings),
                                       pitch=pitch)
        except espeak.EspeakError as exc:
            raise ProviderError("provider_unavailable", f"eSpeak NG failed: {exc}") from exc
        return SpeechResult(
            audio=encode_audio(pcm=result.pcm, sample_rate=result.sample_rate, output_format=request.output_format),
            mime_type=mime_type_for(request.output_format),
            request_id=uuid.uuid4().hex,
            character_cost=len(text),
            words=word_timings(text, result.words, result.duration_ms) if request.with_timestamps else None,
        )

    def _espeak_voice(self, provider_voice_id: str) -> tuple[str, int]:
        preset = PRESETS.get(provider_voice_id)
        if preset is not None:
            return preset.espeak_voice, DEFAULT_PITCH
        row = (LocalProviderVoice.objects.filter(provider_voice_id=provider_voice_id, deleted_at__isnull=True)
               .values_list("espeak_voice", "pitch").first())
        if row is None:
            raise ProviderError("voice_not_found", f"voice {provider_voice_id!r} not found")
        return row


# --- languages, settings, audio --------------------------------------------------------------

def resolve_espeak_language(code: str) -> str | None:
    """The eSpeak language for a code such as "en", "en-US" or "ko_KR", or None if eSpeak lacks it."""
    code = language_tag(code)
    if not LANGUAGE_CODE.match(code):
        return None
    for candidate in dict.fromkeys((ESPEAK_LANGUAGE_ALIASES.get(code, code), language_base(code))):
        if espeak.has_voice(candidate):
            return candidate
    return None


def normalise_gender(value: object) -> str | None:
    value = str(value or "").strip().lower()
    if value in ("female", "f", "woman"):
        return "female"
    if value in ("male", "m", "man"):
        return "male"
    return None


def speaking_rate(voice_settings: dict | None) -> int:
    speed = float((voice_settings or {}).get("speed") or 1.0)
    return round(espeak.RATE_NORMAL * speed)


def wav_from_pcm(pcm: bytes, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm)
    return buffer.getvalue()


def word_timings(text: str, events: Sequence[espeak.WordEvent], duration_ms: int) -> list[WordTiming]:
    """One timing per written word. eSpeak skips some words (Korean endings) and splits others
    (numbers), so each word takes the first eSpeak event inside it; words without one share the
    time up to the next anchored word in proportion to their length."""
    tokens = [(match.start(), word) for match in TOKEN.finditer(text)
              if (word := EDGE_PUNCTUATION.sub("", match.group()))]
    if not tokens:
        return []
    token_starts = [start for start, _ in tokens]
    anchors: dict[int, int] = {}
    for event in events:
        index = bisect_right(token_starts, event.text_position) - 1
        if index >= 0:
            anchors.setdefault(index, event.audio_ms)
    anchors.setdefault(0, 0)

    # Audio time never runs backwards, nor past the end.
    anchored: list[tuple[int, int]] = []
    latest = 0
    for index, ms in sorted(anchors.items()):
        latest = min(max(latest, ms), duration_ms)
        anchored.append((index, latest))
    anchored.append((len(tokens), duration_ms))

    starts: list[float] = [0.0] * len(tokens)
    for (first, first_ms), (stop, stop_ms) in zip(anchored, anchored[1:]):
        lengths = [len(word) for _, word in tokens[first:stop]]
        total = sum(lengths)
        for offset, before in enumerate(accumulate([0, *lengths[:-1]])):
            starts[first + offset] = first_ms + (stop_ms - first_ms) * before / total
    ends = [*starts[1:], duration_ms]
    return [WordTiming(word, round(start), round(end))
            for (_, word), start, end in zip(tokens, starts, ends)]


# --- pitch analysis --------------------------------------------------------------------------

def decode_for_analysis(sample: SampleFile) -> array:
    """The sample's first MAX_ANALYSIS_SECONDS as 4 kHz mono 16-bit PCM.
    Raises ProviderError("invalid_audio") for anything that is not decodable audio."""
    try:
        audio = decode_audio(sample.data, pcm_rate=ANALYSIS_RATE, stop_after_seconds=MAX_ANALYSIS_SECONDS)
    except UndecodableAudio as exc:
        raise ProviderError("invalid_audio", f"{sample.filename}: {exc}") from exc
    return audio.pcm[: ANALYSIS_RATE * MAX_ANALYSIS_SECONDS]


def estimate_f0(signals: Sequence[array]) -> float:
    """Median fundamental frequency (Hz) over the loudest voiced frames of ANALYSIS_RATE PCM signals."""
    frames = [signal[i:i + FRAME] for signal in signals for i in range(0, len(signal) - FRAME + 1, FRAME)]
    min_energy = MIN_FRAME_RMS ** 2 * FRAME
    loud = sorted((energy, i) for i, frame in enumerate(frames)
                  if (energy := sum(map(operator.mul, frame, frame))) >= min_energy)
    f0s = sorted(f0 for _, i in loud[-MAX_FRAMES:] if (f0 := frame_f0(frames[i])) is not None)
    if len(f0s) < MIN_VOICED_FRAMES:
        raise ProviderError("invalid_audio", "no voiced speech found in the samples")
    return f0s[len(f0s) // 2]


def frame_f0(frame: array) -> float | None:
    """F0 of one frame by normalised autocorrelation, or None when the frame is not voiced."""
    mean = sum(frame) / len(frame)
    x = [value - mean for value in frame]
    n = len(x)
    squares = [0.0, *accumulate(value * value for value in x)]
    corr = {}
    for lag in range(LAG_MIN - 1, LAG_MAX + 2):
        # Normalised by the energy of both overlapping parts, so long lags are not penalised.
        norm = math.sqrt(squares[n - lag] * (squares[n] - squares[lag]))
        corr[lag] = sum(map(operator.mul, x, x[lag:])) / norm if norm else 0.0
    best = max(range(LAG_MIN, LAG_MAX + 1), key=corr.__getitem__)
    if corr[best] < VOICING_THRESHOLD:
        return None
    # The period's multiples correlate almost as well: take the shortest lag near the best peak.
    for lag in range(LAG_MIN, best):
        if corr[lag] >= 0.9 * corr[best] and corr[lag - 1] <= corr[lag] >= corr[lag + 1]:
            best = lag
            break
    before, peak, after = corr[best - 1], corr[best], corr[best + 1]
    curvature = before - 2 * peak + after
    offset = 0.5 * (before - after) / curvature if curvature else 0.0
    return ANALYSIS_RATE / (best + offset)


def pitch_for_f0(f0: float, variant: str) -> int:
    """eSpeak's 0-100 pitch at which `variant` speaks at `f0` (clamped), interpolated on a log scale."""
    table = F0_AT_PITCH[variant]
    if f0 <= table[0]:
        return 0
    if f0 >= table[-1]:
        return 100
    i = bisect_right(table, f0) - 1  # table[i] <= f0 < table[i + 1]
    step = 100 / (len(table) - 1)
    return round(step * (i + math.log(f0 / table[i]) / math.log(table[i + 1] / table[i])))
