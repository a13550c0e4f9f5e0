"""Real audio files made on the fly for upload tests."""

import functools
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


STORY = (
    "Once upon a time, in a little house at the edge of the forest, there lived a rabbit called Pip.",
    "Every morning Pip hopped down to the river to count the stones.",
    "One day the river was gone, and in its place lay a long silver road.",
    "Where does it go, asked Pip. Nobody knew, so Pip decided to find out.",
)


@functools.lru_cache(maxsize=None)
def _speech_pcm(pause_seconds: float) -> tuple:
    """eSpeak NG reading the story, sentences apart by a pause, as (pcm array bytes, rate)."""
    from tts.providers import espeak

    parts, rate = [], 22050
    for sentence in STORY:
        spoken = espeak.synthesize(sentence, voice="en-us+f3")
        rate = spoken.sample_rate
        parts.append(spoken.pcm + bytes(2 * int(pause_seconds * rate)))
    return b"".join(parts), rate


def _samples(seconds: float, pause_seconds: float = 0.4) -> tuple:
    import numpy as np

    pcm, rate = _speech_pcm(pause_seconds)
    speech = np.frombuffer(pcm, dtype=np.int16).astype(np.float64)
    reps = int(np.ceil(seconds * rate / len(speech)))
    return np.tile(speech, reps)[: int(seconds * rate)], rate


def _wav(samples, rate: int) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes())
    return buf.getvalue()


def speech_wav_bytes(seconds: float = 3.0, *, gain: float = 1.0) -> bytes:
    """Real speech (eSpeak NG), `gain` times its natural level; a gain that overshoots full scale
    clips, as a recording made too loud does."""
    samples, rate = _samples(seconds)
    return _wav(samples * gain, rate)


def noisy_speech_wav_bytes(seconds: float = 6.0, *, snr_db: float = 12.0, seed: int = 7) -> bytes:
    """Speech as a phone records it in a living room: a little quieter, room noise (pinkish, so
    mostly low), mains hum, at `snr_db` below the speech."""
    import numpy as np

    samples, rate = _samples(seconds)
    rng = np.random.default_rng(seed)
    white = rng.normal(size=len(samples))
    pink = np.convolve(white, np.ones(8) / 8, mode="same") + 0.3 * white  # low-heavy
    t = np.arange(len(samples)) / rate
    noise = pink + 0.5 * np.sin(2 * np.pi * 50 * t) * np.std(pink)
    speech = samples * 0.6
    noise *= np.sqrt(np.mean(speech ** 2) / np.mean(noise ** 2)) / 10 ** (snr_db / 20)
    return _wav(speech + noise, rate)


def white_noise_wav_bytes(seconds: float = 3.0, rate: int = 16000, seed: int = 3) -> bytes:
    import numpy as np

    return _wav(np.random.default_rng(seed).normal(scale=6000, size=int(seconds * rate)), rate)


def silence_wav_bytes(seconds: float = 3.0, rate: int = 16000) -> bytes:
    return _wav([0] * int(seconds * rate), rate)


def encoded_speech(output_format: str, seconds: float = 3.0) -> bytes:
    """Speech in another container (`mp3_44100_128`, `opus_48000_64`, ...), as phones upload it."""
    from tts.audio import encode_audio

    pcm, rate = _speech_pcm(0.4)
    whole = pcm * int(1 + seconds * rate * 2 // len(pcm))
    return encode_audio(pcm=whole[: int(seconds * rate) * 2], sample_rate=rate, output_format=output_format)
