"""Decoding audio with PyAV (bundled FFmpeg): proves a file is audio and measures its real
duration by decoding every frame (headers can lie; mutagen-style header reads would trust them)."""

import io
import struct
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain

import av

# Container names FFmpeg reports -> the format we name to clients.
_FORMATS = {
    "wav": "wav",
    "mp3": "mp3",
    "flac": "flac",
    "ogg": "ogg",
    "aac": "aac",
    "mov,mp4,m4a,3gp,3g2,mj2": "m4a",
    "matroska,webm": "webm",
}
ACCEPTED_FORMATS = ("wav", "mp3", "m4a", "aac", "ogg", "opus", "flac", "webm")


class UndecodableAudio(ValueError):
    """`reason` is the stable code clients get in `details.reason`; the message says it for people."""

    def __init__(self, message: str, *, reason: str = "undecodable") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class DecodedAudio:
    format: str
    duration_seconds: float
    sample_rate: int
    pcm: array | None = None  # mono signed 16-bit at `sample_rate`, when asked for


def decode_audio(data: bytes, *, pcm_rate: int | None = None, max_seconds: float | None = None,
                 stop_after_seconds: float | None = None) -> DecodedAudio:
    """Decode every frame of `data`. With `pcm_rate`, also return mono 16-bit samples at that rate.

    Raises UndecodableAudio for empty, non-audio, undecodable or lying files, and as soon as more
    than `max_seconds` of audio has been decoded. With `stop_after_seconds`, decoding simply
    ends there (for analysis that needs only the start; the duration is then a lower bound).
    """
    if not data:
        raise UndecodableAudio("the file is empty", reason="empty")
    try:
        with av.open(io.BytesIO(data)) as container:
            if not container.streams.audio:
                raise UndecodableAudio("the file has no audio stream")
            fmt = _FORMATS.get(container.format.name)
            if fmt is None:
                raise UndecodableAudio(f"unsupported format {container.format.name!r}")
            stream = container.streams.audio[0]
            if fmt == "ogg" and stream.codec_context.name == "opus":
                fmt = "opus"
            resampler = av.AudioResampler(format="s16", layout="mono", rate=pcm_rate) if pcm_rate else None
            pcm = array("h") if pcm_rate else None
            samples = 0
            rate = 0
            stopped_early = False
            for frame in container.decode(stream):
                samples += frame.samples
                rate = frame.sample_rate or rate
                if max_seconds is not None and rate and samples / rate > max_seconds:
                    raise UndecodableAudio(f"longer than {max_seconds:g} s", reason="too_long")
                if resampler is not None:
                    for out in resampler.resample(frame):
                        pcm.frombytes(bytes(out.planes[0])[: out.samples * 2])
                if stop_after_seconds is not None and rate and samples / rate >= stop_after_seconds:
                    stopped_early = True
                    break
            if resampler is not None:
                for out in resampler.resample(None):
                    pcm.frombytes(bytes(out.planes[0])[: out.samples * 2])
    except UndecodableAudio:
        raise
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise UndecodableAudio(f"the file is not decodable audio ({exc.__class__.__name__})") from exc
    if samples == 0 or rate == 0:
        raise UndecodableAudio("the file contains no audio samples")
    duration = samples / rate
    if fmt == "wav" and not stopped_early:
        _check_wav_header(data, duration)
    return DecodedAudio(format=fmt, duration_seconds=duration, sample_rate=pcm_rate or rate, pcm=pcm)


def _check_wav_header(data: bytes, decoded_seconds: float) -> None:
    """A WAV header declares its data length; FFmpeg silently trusts the bytes it finds instead.
    A header that claims more audio than the file holds is a broken or doctored file."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return
    pos, byte_rate = 12, 0
    while pos + 8 <= len(data):
        chunk_id, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if chunk_id == b"fmt " and size >= 12:
            byte_rate = struct.unpack("<I", data[pos + 16:pos + 20])[0]
        elif chunk_id == b"data":
            available = len(data) - pos - 8
            if size > available and size != 0xFFFFFFFF:  # 0xFFFFFFFF: streamed, length unknown
                declared = size / byte_rate if byte_rate else 0
                raise UndecodableAudio(
                    f"the WAV header declares {declared:.1f} s of audio but the file holds {decoded_seconds:.1f} s"
                )
            return
        pos += 8 + size + (size & 1)


# The output formats of ElevenLabs' API; both providers store clips in any of them.
OUTPUT_FORMATS = frozenset({
    "mp3_22050_32", "mp3_44100_32", "mp3_44100_64", "mp3_44100_96", "mp3_44100_128", "mp3_44100_192",
    "opus_48000_32", "opus_48000_64", "opus_48000_96", "opus_48000_128", "opus_48000_192",
    "pcm_8000", "pcm_16000", "pcm_22050", "pcm_24000", "pcm_44100", "pcm_48000",
    "wav_8000", "wav_16000", "wav_22050", "wav_24000", "wav_44100", "wav_48000", "ulaw_8000", "alaw_8000",
})

MIME_TYPES = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "opus": "audio/ogg",
    "ulaw": "audio/basic",
    "alaw": "audio/x-alaw-basic",
}


def mime_type_for(output_format: str) -> str:
    kind, _, rest = output_format.partition("_")
    if kind == "pcm":
        # Raw 16-bit little-endian mono; the rate is part of the type (RFC 2586 wants it).
        return f"audio/L16;rate={rest.split('_')[0]}" if rest else "audio/L16"
    return MIME_TYPES.get(kind, "application/octet-stream")


def raw_duration_ms(output_format: str, size: int) -> int | None:
    """The duration of a container-less clip (pcm: 16-bit, ulaw/alaw: 8-bit, mono)."""
    kind, _, rest = output_format.partition("_")
    width = {"pcm": 2, "ulaw": 1, "alaw": 1}.get(kind)
    rate = int(rest.split("_")[0]) if rest.split("_")[0].isdigit() else 0
    return size * 1000 // (width * rate) if width and rate else None


# output format kind -> (container, codec); "pcm" is raw s16le without a container.
_ENCODERS = {
    "mp3": ("mp3", "libmp3lame"),
    "wav": ("wav", "pcm_s16le"),
    "opus": ("ogg", "libopus"),
    "ulaw": ("mulaw", "pcm_mulaw"),
    "alaw": ("alaw", "pcm_alaw"),
}


def encode_audio(*, pcm: bytes, sample_rate: int, output_format: str) -> bytes:
    """16-bit mono PCM as `output_format` (ElevenLabs' names: mp3_44100_128, wav_22050,
    pcm_16000, opus_48000_64, ulaw_8000, ...), resampled with PyAV's FFmpeg."""
    return encode_audio_chunks([pcm], sample_rate=sample_rate, output_format=output_format)


def _frames(chunks: Iterable[bytes], sample_rate: int) -> Iterator[av.AudioFrame]:
    for chunk in chunks:
        if len(chunk) >= 2:
            frame = av.AudioFrame(format="s16", layout="mono", samples=len(chunk) // 2)
            frame.planes[0].update(chunk[: len(chunk) // 2 * 2])
            frame.sample_rate = sample_rate
            yield frame


def encode_audio_chunks(chunks: Iterable[bytes], *, sample_rate: int, output_format: str) -> bytes:
    """`encode_audio` for PCM that arrives in pieces (a whole book, line by line): only one piece
    is held decoded at a time."""
    kind, _, rest = output_format.partition("_")
    numbers = [int(part) for part in rest.split("_") if part.isdigit()]
    if kind not in (*_ENCODERS, "pcm") or not numbers:
        raise ValueError(f"unknown output format {output_format!r}")
    rate, kbps = numbers[0], (numbers[1] if len(numbers) > 1 else None)
    if kind == "pcm":
        resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        out = bytearray()
        for source in chain(_frames(chunks, sample_rate), [None]):
            for frame in resampler.resample(source):
                out += bytes(frame.planes[0])[: frame.samples * 2]
        return bytes(out)
    container_format, codec = _ENCODERS[kind]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate, layout="mono")
        if kbps:
            stream.bit_rate = kbps * 1000
        frame_size = stream.codec_context.frame_size or None
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout="mono", rate=rate,
                                      frame_size=frame_size)
        for source in chain(_frames(chunks, sample_rate), [None]):  # None flushes the resampler
            for frame in resampler.resample(source):
                for packet in stream.encode(frame):
                    container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()
