"""Real audio files made on the fly for upload tests."""

import io
import math
import struct
import wave


def wav_bytes(seconds: float = 2.0, freq: float = 180.0, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        frames = bytearray()
        for i in range(int(seconds * rate)):
            # A tone with a few harmonics, so pitch estimators see a voice-like signal.
            t = i / rate
            value = 0.5 * math.sin(2 * math.pi * freq * t) + 0.2 * math.sin(4 * math.pi * freq * t)
            frames += struct.pack("<h", int(value * 12000))
        w.writeframes(bytes(frames))
    return buf.getvalue()


def lying_wav_bytes(real_seconds: float = 2.0, claimed_seconds: float = 60.0, rate: int = 16000) -> bytes:
    """A WAV whose header claims far more audio than the file holds."""
    data = bytearray(wav_bytes(real_seconds, rate=rate))
    claimed = int(claimed_seconds * rate * 2)
    data[40:44] = struct.pack("<I", claimed)
    data[4:8] = struct.pack("<I", 36 + claimed)
    return bytes(data)
