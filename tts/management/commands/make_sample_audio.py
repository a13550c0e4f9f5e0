"""Write a spoken WAV file with the offline eSpeak NG engine: a voice sample to try cloning with
when no recording is at hand (`manage.py make_sample_audio sample1.wav`)."""

import wave
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from tts.providers import espeak

DEFAULT_TEXT = (
    "Once upon a time, a little fox found a lantern in the forest. "
    "She carried it home, and every night it told her a new story."
)


class Command(BaseCommand):
    help = "Speak a text into a WAV file (offline eSpeak NG), e.g. a sample for POST /tts/voices/clone."

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", help="where to write the WAV file")
        parser.add_argument("--text", default=DEFAULT_TEXT)
        parser.add_argument("--voice", default="en-us+f3", help="an eSpeak voice name (en-us+f3, ko, ...)")
        parser.add_argument("--pitch", type=int, default=50, help="0-100")

    def handle(self, *args, path: str, text: str, voice: str, pitch: int, **options) -> None:
        if not espeak.has_voice(voice):
            raise CommandError(f"eSpeak NG has no voice {voice!r}")
        result = espeak.synthesize(text, voice=voice, pitch=pitch)
        with wave.open(str(Path(path)), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(result.sample_rate)
            out.writeframes(result.pcm)
        self.stdout.write(f"wrote {path} ({result.duration_ms / 1000:.1f} s)")
