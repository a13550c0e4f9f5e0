"""Loudness matching on its own (no database): clips of every awkward kind come out at the
target under the true-peak limit, measured by an independent meter (pyloudnorm, with scipy's
4x oversampling for the true peak), and never change length."""

import math
import random
from array import array

import numpy as np
import pyloudnorm
import pytest
from scipy.signal import resample_poly

from tts.audio import decode_audio
from tts.loudness import match_encoded, measure

RATE = 44_100
TARGET, PEAK = -16.0, -1.5


def tone(seconds: float, *, amplitude: float, freq: float = 220.0, spikes: int = 0) -> bytes:
    samples = array("h", (int(amplitude * 32767 * math.sin(2 * math.pi * freq * i / RATE))
                          for i in range(int(seconds * RATE))))
    rng = random.Random(7)
    for _ in range(spikes):  # clicks far above the body of the sound: the limiter's case
        samples[rng.randrange(len(samples))] = 32767
    return samples.tobytes()


def independent(pcm: bytes) -> tuple[float, float]:
    x = np.frombuffer(pcm, dtype=np.int16).astype(np.float64) / 32768
    level = pyloudnorm.Meter(RATE).integrated_loudness(np.tile(x, math.ceil(RATE / len(x))))
    return level, 20 * math.log10(np.max(np.abs(resample_poly(x, 4, 1))))


@pytest.mark.parametrize("pcm", [
    tone(2.0, amplitude=0.02),               # very quiet: a big gain, no limiting
    tone(2.0, amplitude=0.9),                # loud: turned down
    tone(2.0, amplitude=0.1, spikes=40),     # peaky: the gain alone would clip
    tone(0.05, amplitude=0.2),               # 50 ms, under one 400 ms measuring block
], ids=["quiet", "loud", "peaky", "50ms"])
def test_every_kind_of_clip_comes_out_at_the_target_under_the_limit(pcm):
    matched = match_encoded(pcm, RATE, target_lufs=TARGET, true_peak_dbtp=PEAK, output_format="mp3_44100_128")
    decoded = decode_audio(matched.data, pcm_rate=RATE).pcm.tobytes()
    level, true_peak = independent(decoded)
    assert abs(level - TARGET) <= 0.5, level
    assert true_peak <= PEAK, true_peak
    assert matched.samples == len(pcm) // 2 == len(decoded) // 2  # word timings stay where they were
    assert abs(matched.loudness.integrated_lufs - level) < 0.3  # what it records is what it measures


def test_silence_is_left_silent():
    pcm = bytes(RATE * 2)
    assert measure(pcm, RATE).integrated_lufs is None
    matched = match_encoded(pcm, RATE, target_lufs=TARGET, true_peak_dbtp=PEAK, output_format="mp3_44100_128")
    assert matched.loudness.integrated_lufs is None
    assert max(abs(s) for s in decode_audio(matched.data, pcm_rate=RATE).pcm) <= 1


def test_the_meter_agrees_with_an_independent_one():
    pcm = tone(3.0, amplitude=0.3, freq=1000.0)
    ours = measure(pcm, RATE)
    level, true_peak = independent(pcm)
    assert abs(ours.integrated_lufs - level) < 0.2 and abs(ours.true_peak_dbtp - true_peak) < 0.2
