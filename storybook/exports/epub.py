"""EPUB 3 export of a narrated book: a package document, a navigation document, an optional
cover page and one XHTML content document per book page, each written word in its own span.
A page with lines also gets its own audio (its lines joined by `storybook.audio.render`) and a
Media Overlay (SMIL) with one `<par>` per word, so reading systems play the page and highlight
each word as it is read."""

import io
import re
import uuid
import zipfile
from datetime import datetime
from xml.sax.saxutils import escape, quoteattr


from storybook.audio import Segment, render
from storybook.exports.snapshot import BookSnapshot, LineSnapshot, PageSnapshot
from storybook.images import stored_image

ROOT = "EPUB"
ACTIVE_CLASS = "-epub-media-overlay-active"
CSS = f"""body {{ font-family: serif; line-height: 1.5; }}
.picture {{ text-align: center; }}
.picture img {{ max-width: 100%; }}
.speaker {{ font-weight: bold; }}
.{ACTIVE_CLASS} {{ background-color: #ffe066; }}
"""
CONTAINER = f"""<?xml version="1.0" encoding="UTF-8"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
  <rootfiles>
    <rootfile full-path="{ROOT}/package.opf" media-type="application/oebps-package+xml"/>
  </rootfiles>
</container>
"""
# Characters XML 1.0 cannot hold at all, even escaped.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: str) -> str:
    return escape(_NOT_XML.sub("", value))


def _attr(value: str) -> str:
    return quoteattr(_NOT_XML.sub("", value))


def _clock(ms: int) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def _clip(*, start: int, end: int, limit: int) -> tuple[int, int]:
    """[start, end) inside [0, limit] and at least 1 ms long, so even a zero-length word plays."""
    end = min(max(end, start + 1), limit)
    return max(0, min(start, end - 1)), end


def _xhtml(*, language: str, title: str, body: str) -> str:
    lang = _attr(language)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n'
            f'<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops" '
            f'lang={lang} xml:lang={lang}>\n<head>\n<meta charset="UTF-8"/>\n<title>{_text(title)}</title>\n'
            f'<link rel="stylesheet" type="text/css" href="style.css"/>\n</head>\n<body>\n{body}</body>\n</html>\n')


def _picture(name: str, stem: str) -> tuple[str, str, bytes]:
    """(href, media type, bytes) of a stored image."""
    data, extension, media_type = stored_image(name)
    return f"images/{stem}.{extension}", media_type, data


def _line_html(line: LineSnapshot, *, line_id: str) -> str:
    """The line as written, each word in its span and everything between words outside them."""
    parts, pos = [], 0
    if line.speaker:
        parts.append(f'<span class="speaker">{_text(line.speaker)}:</span> ')
    for number, word in enumerate(line.words, 1):
        at = line.text.find(word.text, pos)
        # A word missing from the text (timed against another version) still gets its span.
        parts.append(_text(line.text[pos:at] if at >= 0 else " "))
        parts.append(f'<span id="{line_id}-w{number}">{_text(word.text)}</span>')
        pos = at + len(word.text) if at >= 0 else pos
    parts.append(_text(line.text[pos:]))
    return f'<p class="line" id="{line_id}">{"".join(parts)}</p>\n'


def _page_html(page: PageSnapshot, *, stem: str, language: str, picture: str | None) -> str:
    body = [f'<section id="{stem}" aria-label="Page {page.number}">\n']
    if picture:
        body.append(f'<div class="picture"><img src="{picture}" alt="Illustration for page {page.number}"/></div>\n')
    if page.text:
        body.append(f'<p class="page-text">{_text(page.text)}</p>\n')
    body += [_line_html(line, line_id=f"p{page.number}-l{order}") for order, line in enumerate(page.lines, 1)]
    return _xhtml(language=language, title=f"Page {page.number}", body="".join(body) + "</section>\n")


def _smil(page: PageSnapshot, *, stem: str, duration_ms: int, line_index: list[dict]) -> str:
    """One <par> per word span (or per line paragraph when a line has no written word), clips
    on the page audio's clock: the line's start there plus the word's time on the line's clock."""
    pars = []
    for order, (line, placed) in enumerate(zip(page.lines, line_index, strict=True), 1):
        line_id = f"p{page.number}-l{order}"
        # A word never runs past its own line's audio into the pause or the next line.
        limit = min(placed["end_ms"], duration_ms)
        targets = [(f"{line_id}-w{n}", placed["start_ms"] + w.start_ms, placed["start_ms"] + w.end_ms)
                   for n, w in enumerate(line.words, 1)] or [(line_id, placed["start_ms"], placed["end_ms"])]
        for target, start, end in targets:
            begin, end = _clip(start=start, end=end, limit=limit)
            pars.append(f'    <par id="par-{target}">\n      <text src="../{stem}.xhtml#{target}"/>\n'
                        f'      <audio src="../audio/{stem}.mp3" clipBegin="{_clock(begin)}"'
                        f' clipEnd="{_clock(end)}"/>\n    </par>\n')
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<smil xmlns="http://www.w3.org/ns/SMIL" xmlns:epub="http://www.idpf.org/2007/ops" version="3.0">\n'
            f'  <body>\n  <seq id="seq-{stem}" epub:textref="../{stem}.xhtml">\n{"".join(pars)}  </seq>\n'
            '  </body>\n</smil>\n')


def build_epub(snapshot: BookSnapshot) -> bytes:
    """The book as an EPUB 3 file with Media Overlays, pages in order, the cover first if any."""
    title, language = snapshot.title or "Untitled", snapshot.language
    files: dict[str, bytes] = {"style.css": CSS.encode()}
    manifest = ['<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>',
                '<item id="css" href="style.css" media-type="text/css"/>']
    spine, toc, durations = [], [], []

    if snapshot.cover_name:
        href, media_type, files[href] = _picture(snapshot.cover_name, "cover")
        manifest.append(f'<item id="cover-image" href="{href}" media-type="{media_type}" properties="cover-image"/>')
        body = f'<div class="picture"><img src="{href}" alt={_attr(f"Cover: {title}")}/></div>\n'
        files["cover.xhtml"] = _xhtml(language=language, title=title, body=body).encode()
        manifest.append('<item id="cover" href="cover.xhtml" media-type="application/xhtml+xml"/>')
        spine.append('<itemref idref="cover"/>')

    # Files are named by position, so they stay unique even if page numbers are not.
    for position, page in enumerate(snapshot.pages, 1):
        stem = f"page-{position:03d}"
        picture = None
        if page.image_name:
            picture, media_type, files[picture] = _picture(page.image_name, stem)
            manifest.append(f'<item id="image-{position:03d}" href="{picture}" media-type="{media_type}"/>')
        overlay = ""
        if page.lines:
            audio, duration_ms, index = render(
                [Segment(page.id, page.number, line.id, line.audio_name) for line in page.lines])
            files[f"audio/{stem}.mp3"] = audio
            files[f"smil/{stem}.smil"] = _smil(page, stem=stem, duration_ms=duration_ms,
                                               line_index=index[0]["lines"]).encode()
            manifest += [f'<item id="audio-{position:03d}" href="audio/{stem}.mp3" media-type="audio/mpeg"/>',
                         f'<item id="smil-{position:03d}" href="smil/{stem}.smil" media-type="application/smil+xml"/>']
            durations.append((f"smil-{position:03d}", duration_ms))
            overlay = f' media-overlay="smil-{position:03d}"'
        files[f"{stem}.xhtml"] = _page_html(page, stem=stem, language=language, picture=picture).encode()
        manifest.append(f'<item id="{stem}" href="{stem}.xhtml" media-type="application/xhtml+xml"{overlay}/>')
        spine.append(f'<itemref idref="{stem}"/>')
        toc.append(f'<li><a href="{stem}.xhtml">Page {page.number}</a></li>')

    nav = f'<nav epub:type="toc" id="toc">\n<h1>{_text(title)}</h1>\n<ol>\n' + "\n".join(toc) + '\n</ol>\n</nav>\n'
    files["nav.xhtml"] = _xhtml(language=language, title=title, body=nav).encode()

    metadata = [f'<dc:identifier id="book-id">urn:uuid:{uuid.UUID(snapshot.id)}</dc:identifier>',
                f"<dc:title>{_text(title)}</dc:title>", f"<dc:language>{_text(language)}</dc:language>",
                f'<meta property="dcterms:modified">{_text(snapshot.modified)}</meta>',
                f'<meta property="media:active-class">{ACTIVE_CLASS}</meta>']
    if snapshot.author:
        metadata.append(f"<dc:creator>{_text(snapshot.author)}</dc:creator>")
    if snapshot.description:
        metadata.append(f"<dc:description>{_text(snapshot.description)}</dc:description>")
    metadata += [f'<meta property="media:duration" refines="#{item}">{_clock(ms)}</meta>' for item, ms in durations]
    if durations:  # epubcheck checks the total is exactly the sum of the overlays
        metadata.append(f'<meta property="media:duration">{_clock(sum(ms for _, ms in durations))}</meta>')
    package = ('<?xml version="1.0" encoding="UTF-8"?>\n'
               f'<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="book-id" '
               f'xml:lang={_attr(language)}>\n'
               '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">\n' + "\n".join(metadata) + "\n</metadata>\n"
               "<manifest>\n" + "\n".join(manifest) + "\n</manifest>\n<spine>\n" + "\n".join(spine)
               + "\n</spine>\n</package>\n")

    # A fixed entry time (the book's modification) keeps equal snapshots equal bytes.
    stamp = datetime.fromisoformat(snapshot.modified).timetuple()[:6]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        def put(name: str, data: bytes, compression: int = zipfile.ZIP_DEFLATED) -> None:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type, info.external_attr = compression, 0o644 << 16
            archive.writestr(info, data)

        put("mimetype", b"application/epub+zip", zipfile.ZIP_STORED)  # first and stored: the EPUB signature
        put("META-INF/container.xml", CONTAINER.encode())
        put(f"{ROOT}/package.opf", package.encode())
        for name, data in files.items():
            # mp3 is already compressed; deflating it again only costs time.
            put(f"{ROOT}/{name}", data, zipfile.ZIP_STORED if name.endswith(".mp3") else zipfile.ZIP_DEFLATED)
    return buffer.getvalue()
