"""The offline bundle: a zip the app plays a whole book from with no network. `manifest.json`
(format `storybook-bundle`, version 1, described by `bundle-manifest.v1.schema.json` beside this
file) names every other file: one loudness-matched mp3 per line and the pictures."""

import hashlib
import io
import json
import zipfile
from pathlib import Path

from django.core.files.storage import default_storage

from ..audio import LINE_PAUSE_MS, PAGE_PAUSE_MS
from ..images import stored_image
from .snapshot import BookSnapshot

FORMAT, VERSION = "storybook-bundle", 1
SCHEMA_PATH = Path(__file__).with_name("bundle-manifest.v1.schema.json")


def _read(name: str) -> bytes:
    with default_storage.open(name, "rb") as f:
        return f.read()


def build_bundle(snapshot: BookSnapshot) -> bytes:
    files: dict[str, tuple[bytes, str]] = {}  # zip name -> (bytes, media type)

    def add_image(stored: str | None, stem: str) -> str | None:
        if not stored:
            return None
        data, extension, media_type = stored_image(stored)
        name = f"images/{stem}.{extension}"
        files[name] = (data, media_type)
        return name

    pages = []
    for page in snapshot.pages:
        lines = []
        for line in page.lines:
            audio = f"audio/p{page.number:03d}-l{line.order:02d}.mp3"
            files[audio] = (_read(line.audio_name), "audio/mpeg")
            lines.append({
                "id": line.id, "order": line.order, "speaker": line.speaker, "text": line.text, "voice": line.voice_name,
                "audio": audio, "duration_ms": line.duration_ms,
                "book_start_ms": line.start_ms, "book_end_ms": line.end_ms,
                "loudness": {"integrated_lufs": line.loudness_lufs, "true_peak_dbtp": line.true_peak_dbtp,
                             "source_integrated_lufs": line.source_loudness_lufs},
                "words": [{"text": w.text, "start_ms": w.start_ms, "end_ms": w.end_ms} for w in line.words],
            })
        pages.append({"number": page.number, "text": page.text, "image": add_image(page.image_name, f"page-{page.number:03d}"),
                      "start_ms": page.start_ms, "end_ms": page.end_ms, "lines": lines})
    manifest = {
        "format": FORMAT, "version": VERSION, "fingerprint": snapshot.fingerprint, "modified": snapshot.modified,
        "book": {"id": snapshot.id, "title": snapshot.title, "description": snapshot.description,
                 "language": snapshot.language, "author": snapshot.author,
                 "cover": add_image(snapshot.cover_name, "cover"), "duration_ms": snapshot.audio_duration_ms,
                 # The app's own player keeps the whole book's rhythm with these.
                 "pauses_ms": {"between_lines": LINE_PAUSE_MS, "between_pages": PAGE_PAUSE_MS},
                 "loudness": {"target_lufs": snapshot.loudness_target_lufs,
                                                     "true_peak_limit_dbtp": snapshot.true_peak_limit_dbtp}},
        "pages": pages,
        "files": [{"name": name, "media_type": media_type, "size_bytes": len(data),
                   "sha256": hashlib.sha256(data).hexdigest()} for name, (data, media_type) in sorted(files.items())],
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=1), zipfile.ZIP_DEFLATED)
        for name, (data, _) in sorted(files.items()):
            archive.writestr(name, data, zipfile.ZIP_STORED)  # mp3 and pictures are compressed already
    return buffer.getvalue()
