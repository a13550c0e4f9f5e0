"""The speech engine's writes. Voices are addressed as provider + provider voice id only."""

import hashlib
import json
from collections.abc import Mapping, Sequence


def speech_content_hash(*, provider: str, provider_voice_id: str, model_id: str, language: str, text: str,
                        previous_text: str, next_text: str, voice_settings: Mapping, pronunciation_locators: Sequence,
                        seed: int | None, output_format: str) -> str:
    """The key of an AudioClip: every input that changes the audio, in one canonical form, so
    equal requests share a clip and any difference (a setting, the format, the neighbouring
    text that shapes prosody) makes a new one."""
    canonical = json.dumps(
        {
            "provider": provider, "provider_voice_id": provider_voice_id, "model_id": model_id,
            "language": language, "text": text, "previous_text": previous_text, "next_text": next_text,
            "voice_settings": dict(voice_settings), "pronunciation_locators": list(pronunciation_locators),
            "seed": seed, "output_format": output_format,
        },
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
