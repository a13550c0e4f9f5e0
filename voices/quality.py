"""The sample quality gate: is there a voice in this recording, at a usable level, unclipped?

Runs on the decoded 16 kHz mono PCM before any provider call, so a clone of silence, a tone or
noise costs no provider slot. WebRTC's voice-activity detector (`webrtcvad-wheels`) decides
which frames sound like speech; it adapts to stationary sounds and calls a steady tone or white
noise "speech", so a frame only counts as voiced when its spectrum also has the shape of voiced
speech: harmonic (not flat like noise) and spread over several harmonics (not one or two
partials like a tone or a plain synthesiser note).
"""

from array import array
from dataclasses import dataclass

import numpy as np
import webrtcvad

RATE = 16000  # one of the rates the VAD accepts; samples are decoded to it
FRAME = 480  # 30 ms, one of the VAD's frame sizes
_FFT = 512
_BAND = (100.0, 4000.0)  # where voiced speech keeps its harmonics

VAD_MODE = 3  # the VAD's most selective mode
MAX_FLATNESS = 0.3  # spectral flatness of a voiced frame (white noise is about 0.56)
MAX_PEAK_SHARE = 0.7  # share of a frame's band energy in its 4 strongest bins (a sine: about 1)
NORMALISED_DBFS = -20.0  # frames are levelled to this before the VAD, so a quiet voice is found
MIN_VOICED_SECONDS = 0.5
MIN_VOICED_SHARE = 0.15  # of the sample's frames; a pause-rich reading is still about 40 %
MIN_SPEECH_DBFS = -40.0  # median voiced-frame level; ElevenLabs suggests -23 to -18 dB RMS
CLIP_LEVEL = 0.98  # of full scale
MAX_CLIPPED_SHARE = 0.01  # of the voiced frames' samples
SPEECH_PAD_FRAMES = 10  # VAD speech within 300 ms of a voiced frame counts as speech time
NOISY_SNR_DB = 15.0  # voiced level over the quietest frames; below it a warning suggests denoising


@dataclass(frozen=True)
class SampleQuality:
    refusal: str | None  # no_speech / too_quiet / clipped, or None when the sample passes
    speech_seconds: float
    speech_dbfs: float | None
    clipped_share: float
    snr_db: float | None


def _dbfs(power: np.ndarray) -> np.ndarray:
    return 10 * np.log10(np.maximum(power, 1e-12))


def sample_quality(pcm: array) -> SampleQuality:
    """Judge mono signed 16-bit PCM at `RATE`."""
    x = np.frombuffer(pcm, dtype=np.int16).astype(np.float64) / 32768.0
    count = len(x) // FRAME
    if count == 0 or not np.any(x):
        return SampleQuality("no_speech", 0.0, None, 0.0, None)
    frames = x[: count * FRAME].reshape(count, FRAME)
    power = np.mean(frames ** 2, axis=1)
    level = _dbfs(power)

    # Level the loud part to a fixed level so the VAD's own energy floor does not decide.
    reference = np.percentile(level, 95)
    gain = 10 ** ((NORMALISED_DBFS - reference) / 20)
    levelled = np.clip(frames * gain * 32768, -32768, 32767).astype(np.int16)
    vad = webrtcvad.Vad(VAD_MODE)
    vad_speech = np.fromiter((vad.is_speech(f.tobytes(), RATE) for f in levelled), dtype=bool, count=count)

    spectrum = np.abs(np.fft.rfft(frames * np.hanning(FRAME), _FFT, axis=1)) ** 2
    freqs = np.fft.rfftfreq(_FFT, 1 / RATE)
    band = spectrum[:, (freqs >= _BAND[0]) & (freqs <= _BAND[1])] + 1e-18
    flatness = np.exp(np.mean(np.log(band), axis=1)) / np.mean(band, axis=1)
    peak_share = np.sort(band, axis=1)[:, -4:].sum(axis=1) / band.sum(axis=1)
    audible = level > reference - 40  # the quiet tail of a fade or a pause is not judged
    voiced = vad_speech & audible & (flatness < MAX_FLATNESS) & (peak_share < MAX_PEAK_SHARE)

    voiced_count = int(voiced.sum())
    if voiced_count * FRAME / RATE < MIN_VOICED_SECONDS or voiced_count < MIN_VOICED_SHARE * count:
        return SampleQuality("no_speech", voiced_count * FRAME / RATE, None, 0.0, None)

    near = np.convolve(voiced.astype(int), np.ones(2 * SPEECH_PAD_FRAMES + 1, dtype=int), mode="same") > 0
    speech_seconds = float((vad_speech & near).sum() * FRAME / RATE)
    speech_dbfs = float(np.median(level[voiced]))
    clipped_share = float(np.mean(np.abs(frames[voiced]) >= CLIP_LEVEL))
    snr_db = float(speech_dbfs - np.percentile(level, 10))
    refusal = None
    if clipped_share > MAX_CLIPPED_SHARE:
        refusal = "clipped"
    elif speech_dbfs < MIN_SPEECH_DBFS:
        refusal = "too_quiet"
    return SampleQuality(refusal, round(speech_seconds, 1), round(speech_dbfs, 1), round(clipped_share, 4),
                         round(snr_db, 1))
