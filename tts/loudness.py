"""Loudness matching (ITU-R BS.1770 / EBU R128) with FFmpeg's own filters through PyAV.

`loudnorm` measures a clip (integrated loudness and true peak, printed as JSON when its graph is
freed; PyAV hands FFmpeg's log to us). A linear gain then brings it to the target; when that gain
would push the true peak over the limit, a lookahead limiter (`alimiter`) runs at 4x the sample
rate, where inter-sample peaks are visible, and the result is measured again and the gain
corrected. Timing never moves: the output has exactly as many samples as the input, so word
timings stay valid.
"""

import json
import math
import threading
from dataclasses import dataclass
from fractions import Fraction

import av
import av.logging

from .audio import decode_audio, encode_audio

# How far under the limit the limiter aims: downsampling from 4x can lift peaks a little.
_LIMITER_MARGIN_DB = 0.3
# A result this close to the target is kept; otherwise the gain is corrected and tried again.
_TOLERANCE_LU = 0.1
_ATTEMPTS = 4
# BS.1770 gating: a silent clip has no integrated loudness.
_NO_LOUDNESS_BELOW = -69.0
_SHORT_SECONDS = 1.0
_FRAME = 4096

# FFmpeg's log level is process-wide: one measurement at a time raises it and puts it back.
_log_lock = threading.Lock()


@dataclass(frozen=True)
class Loudness:
    integrated_lufs: float | None  # None: silent
    true_peak_dbtp: float | None


def _run(pcm: bytes, rate: int, chain: list[tuple[str, str]]) -> bytes:
    """Push mono s16 `pcm` through `chain` (filter name, arguments); mono s16 out."""
    graph = av.filter.Graph()
    nodes = [graph.add_abuffer(format="s16", sample_rate=rate, layout="mono", time_base=Fraction(1, rate))]
    nodes += [graph.add(name, args) for name, args in chain]
    nodes.append(graph.add("abuffersink"))
    for upstream, downstream in zip(nodes, nodes[1:]):
        upstream.link_to(downstream)
    graph.configure()
    out = bytearray()

    def drain() -> None:
        while True:
            try:
                frame = graph.pull()
            except (av.BlockingIOError, av.EOFError):
                return
            out.extend(bytes(frame.planes[0])[: frame.samples * 2])

    total = len(pcm) // 2
    for offset in range(0, total, _FRAME):
        chunk = pcm[2 * offset: 2 * min(total, offset + _FRAME)]
        frame = av.AudioFrame(format="s16", layout="mono", samples=len(chunk) // 2)
        frame.planes[0].update(chunk)
        frame.sample_rate, frame.pts, frame.time_base = rate, offset, Fraction(1, rate)
        graph.push(frame)
        drain()
    graph.push(None)
    drain()
    return bytes(out)


def _db(value: str) -> float | None:
    number = float(value)
    return number if math.isfinite(number) and number > _NO_LOUDNESS_BELOW else None


def measure(pcm: bytes, rate: int) -> Loudness:
    """Integrated loudness (LUFS) and true peak (dBTP) of mono 16-bit PCM."""
    if len(pcm) < 4:
        return Loudness(None, None)
    if len(pcm) // 2 < rate * _SHORT_SECONDS:
        # BS.1770 gates 400 ms blocks, so a shorter clip ("Hi!") has no integrated loudness of its
        # own: it is measured repeated end to end, the loudness it has while it sounds.
        pcm = pcm * math.ceil(rate * _SHORT_SECONDS / (len(pcm) // 2))
    with _log_lock:
        previous, skipping = av.logging.get_level(), av.logging.get_skip_repeated()
        av.logging.set_level(av.logging.INFO)
        av.logging.set_skip_repeated(False)  # the same clip measured twice prints the same report
        try:
            with av.logging.Capture(local=True) as logs:
                _run(pcm, rate, [("loudnorm", "print_format=json")])  # the graph is freed on return
        finally:
            av.logging.set_level(previous)
            av.logging.set_skip_repeated(skipping)
    report = next((message for _level, name, message in logs if name == "loudnorm" and "input_i" in message), None)
    if report is None:
        raise RuntimeError("FFmpeg's loudnorm printed no measurement")
    values = json.loads(report[report.index("{"): report.rindex("}") + 1])
    integrated = _db(values["input_i"])
    peak = float(values["input_tp"])
    return Loudness(integrated, peak if math.isfinite(peak) else None)


def _fit(pcm: bytes, length: int) -> bytes:
    """Exactly `length` samples (resampling can add or drop one or two at the end)."""
    return pcm[: 2 * length].ljust(2 * length, b"\0")


def _gain(pcm: bytes, rate: int, *, gain_db: float, limit_db: float | None) -> bytes:
    chain = [("aformat", "sample_fmts=dbl"), ("volume", f"{gain_db:.3f}dB")]
    if limit_db is not None:
        chain += [("aresample", str(rate * 4)),
                  ("alimiter", f"limit={10 ** (limit_db / 20):.6f}:level=false:attack=1:release=50:latency=true"),
                  ("aresample", str(rate))]
    chain.append(("aformat", "sample_fmts=s16"))
    return _fit(_run(pcm, rate, chain), len(pcm) // 2)


def normalize(pcm: bytes, rate: int, *, target_lufs: float,
              true_peak_dbtp: float) -> tuple[bytes, Loudness, Loudness]:
    """`pcm` at `target_lufs` with no true peak over `true_peak_dbtp`, what the input measured and
    what the output measures. A silent clip is returned as it is."""
    source = measure(pcm, rate)
    if source.integrated_lufs is None:
        return pcm, source, source
    gain = target_lufs - source.integrated_lufs
    out, result = pcm, source
    for _ in range(_ATTEMPTS):
        linear_fits = source.true_peak_dbtp is None or source.true_peak_dbtp + gain <= true_peak_dbtp - 0.1
        out = _gain(pcm, rate, gain_db=gain, limit_db=None if linear_fits else true_peak_dbtp - _LIMITER_MARGIN_DB)
        result = measure(out, rate)
        if result.integrated_lufs is None or abs(result.integrated_lufs - target_lufs) <= _TOLERANCE_LU:
            break
        gain += target_lufs - result.integrated_lufs
    return out, source, result


@dataclass(frozen=True)
class Matched:
    data: bytes  # encoded
    samples: int  # as decoded
    source: Loudness  # what the input measured
    loudness: Loudness  # what the encoded file measures, decoded


def match_encoded(pcm: bytes, rate: int, *, target_lufs: float, true_peak_dbtp: float,
                  output_format: str) -> Matched:
    """`pcm` matched and encoded as `output_format`, judged as the file decodes. Lossy coding
    lifts peaks and trims the top octave a little, so the aims move by what the encoded file
    missed until it fits."""
    aim_lufs, aim_peak = target_lufs, true_peak_dbtp
    for _ in range(3):
        matched, source, _ = normalize(pcm, rate, target_lufs=aim_lufs, true_peak_dbtp=aim_peak)
        data = encode_audio(pcm=matched, sample_rate=rate, output_format=output_format)
        decoded = decode_audio(data, pcm_rate=rate).pcm.tobytes()
        result = measure(decoded, rate)
        if result.integrated_lufs is None or result.true_peak_dbtp is None:
            break  # silent: kept as it is
        peak_over, level_off = result.true_peak_dbtp - true_peak_dbtp, target_lufs - result.integrated_lufs
        if peak_over <= 0 and abs(level_off) <= _TOLERANCE_LU * 2:
            break
        if peak_over > 0:
            aim_peak -= peak_over + 0.1
        aim_lufs += level_off
    return Matched(data=data, samples=len(decoded) // 2, source=source, loudness=result)
