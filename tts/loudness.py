"""Loudness matching (ITU-R BS.1770 / EBU R128) with FFmpeg's own filters through PyAV.

FFmpeg's `ebur128` meter measures a clip (integrated loudness, and true peak at 4x oversampling;
its summary reaches us through PyAV's log capture). A linear gain brings the clip to the target;
where that gain would push the true peak over the limit, a lookahead limiter (`alimiter`) runs
at 4x the sample rate, where inter-sample peaks are visible. The encoded file is what gets
judged: lossy coding lifts peaks and trims the top octave a little, so the gain and the limiter
move by what the decoded file missed until it fits. Timing never moves: the output has exactly
as many samples as the input, so word timings stay valid.
"""

import math
import re
import threading
from dataclasses import dataclass
from fractions import Fraction

import av
import av.logging

from .audio import decode_audio, encode_audio

# The meter prints one decimal: judge the peak against a limit that much lower.
_METER_STEP_DB = 0.1
# The limiter aims this far under the limit: downsampling from 4x can lift peaks a little.
_LIMITER_MARGIN_DB = 0.3
_TOLERANCE_LU = 0.2
_ATTEMPTS = 4
# BS.1770 gates 400 ms blocks; a clip shorter than this is measured repeated end to end.
_SHORT_SECONDS = 1.0
_SILENT_LUFS = -69.0  # the meter's floor is -70: nothing to match
_FRAME = 4096
_SUMMARY = re.compile(r"I:\s*(-?[\d.]+|-?inf) LUFS")
_PEAK = re.compile(r"Peak:\s*(-?[\d.]+|-?inf) dBFS")

# FFmpeg's log level is process-wide: one measurement at a time raises it and puts it back.
_log_lock = threading.Lock()


@dataclass(frozen=True)
class Loudness:
    integrated_lufs: float | None  # None: silent
    true_peak_dbtp: float | None


@dataclass(frozen=True)
class Matched:
    data: bytes  # encoded in the asked format
    samples: int  # as it decodes
    source: Loudness  # what the input measured
    loudness: Loudness  # what the encoded file measures, decoded


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


def _number(pattern: re.Pattern, text: str) -> float | None:
    match = pattern.search(text)
    value = float(match.group(1)) if match else float("-inf")
    return value if math.isfinite(value) else None


def measure(pcm: bytes, rate: int) -> Loudness:
    """Integrated loudness (LUFS) and true peak (dBTP) of mono 16-bit PCM."""
    if len(pcm) < 4:
        return Loudness(None, None)
    if len(pcm) // 2 < rate * _SHORT_SECONDS:
        # A clip shorter than the gating blocks ("Hi!") has no integrated loudness of its own:
        # measured repeated, it gets the loudness it has while it sounds.
        pcm = pcm * math.ceil(rate * _SHORT_SECONDS / (len(pcm) // 2))
    with _log_lock:
        previous, skipping = av.logging.get_level(), av.logging.get_skip_repeated()
        av.logging.set_level(av.logging.INFO)
        av.logging.set_skip_repeated(False)  # the same clip measured twice prints the same summary
        try:
            with av.logging.Capture(local=True) as logs:
                # The summary is printed when the graph is freed, on return.
                _run(pcm, rate, [("ebur128", "peak=true:framelog=verbose")])
        finally:
            av.logging.set_level(previous)
            av.logging.set_skip_repeated(skipping)
    summary = "".join(message for _level, name, message in logs if name == "ebur128")
    if "Summary" not in summary:
        raise RuntimeError("FFmpeg's ebur128 meter printed no summary")
    integrated = _number(_SUMMARY, summary)
    if integrated is not None and integrated <= _SILENT_LUFS:
        integrated = None
    return Loudness(integrated, _number(_PEAK, summary))


def _gain(pcm: bytes, rate: int, *, gain_db: float, limit_db: float | None) -> bytes:
    """`pcm` louder by `gain_db`, peaks held under `limit_db` (if given), exactly as long."""
    chain = [("aformat", "sample_fmts=dbl"), ("volume", f"{gain_db:.3f}dB")]
    if limit_db is not None:
        chain += [("aresample", str(rate * 4)),
                  ("alimiter", f"limit={10 ** (limit_db / 20):.6f}:level=false:attack=1:release=50:latency=true"),
                  ("aresample", str(rate))]
    chain.append(("aformat", "sample_fmts=s16"))
    out = _run(pcm, rate, chain)
    return out[: len(pcm)].ljust(len(pcm), b"\0")  # resampling can add or drop a sample at the end


def match_encoded(pcm: bytes, rate: int, *, target_lufs: float, true_peak_dbtp: float,
                  output_format: str) -> Matched:
    """Mono 16-bit `pcm` at `target_lufs` with no true peak over `true_peak_dbtp`, encoded as
    `output_format` and judged as that file decodes. A silent clip is encoded as it is."""
    source = measure(pcm, rate)
    gain, aim_peak = 0.0, true_peak_dbtp - _METER_STEP_DB
    if source.integrated_lufs is not None:
        gain = target_lufs - source.integrated_lufs
    for _ in range(_ATTEMPTS):
        limited = source.true_peak_dbtp is not None and source.true_peak_dbtp + gain > aim_peak
        matched = _gain(pcm, rate, gain_db=gain, limit_db=aim_peak - _LIMITER_MARGIN_DB if limited else None)
        data = encode_audio(pcm=matched, sample_rate=rate, output_format=output_format)
        decoded = decode_audio(data, pcm_rate=rate).pcm.tobytes()
        result = measure(decoded, rate)
        if source.integrated_lufs is None or result.integrated_lufs is None or result.true_peak_dbtp is None:
            break
        peak_over = result.true_peak_dbtp - (true_peak_dbtp - _METER_STEP_DB)
        level_off = target_lufs - result.integrated_lufs
        if peak_over <= 0 and abs(level_off) <= _TOLERANCE_LU:
            break
        if peak_over > 0:
            aim_peak -= peak_over + _METER_STEP_DB
        gain += level_off
    return Matched(data=data, samples=len(decoded) // 2, source=source, loudness=result)
