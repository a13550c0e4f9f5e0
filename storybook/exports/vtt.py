"""WebVTT read-along: one cue per line on the whole-book audio's clock, the speaker as a voice
span, and a karaoke timestamp tag (`<00:00:01.200>`) before each word after the first, so a
player can highlight the word being read."""

from .snapshot import BookSnapshot, PageSnapshot


def _clock(ms: int) -> str:
    hours, rest = divmod(max(0, ms), 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _annotation(speaker: str) -> str:
    # A voice annotation ends at ">" and may not hold line breaks.
    return " ".join(_escape(speaker).split())


def build_vtt(snapshot: BookSnapshot, *, page: int | None = None) -> str:
    """The read-along of the book, or of page number `page` (still on the whole book's clock, so
    one player and one audio file serve every page)."""
    pages: list[PageSnapshot] = [p for p in snapshot.pages if page is None or p.number == page]
    title = " ".join(snapshot.title.split()).replace("-->", "->")
    out = [f"WEBVTT - {title}" if title else "WEBVTT", ""]
    for book_page in pages:
        if not book_page.lines:
            continue
        out += [f"NOTE page {book_page.number}", ""]
        for line in book_page.lines:
            start, end = line.start_ms, max(line.end_ms, line.start_ms + 1)
            parts, latest, position = [], start, 0
            for i, word in enumerate(line.words):
                found = line.text.find(word.text, position)
                if found < 0:
                    continue
                parts.append(_escape(line.text[position:found]))  # spaces and lone punctuation ("&")
                at = line.start_ms + word.start_ms
                # A tag must lie strictly inside the cue and after the one before it.
                if i and latest < at < end:
                    parts.append(f"<{_clock(at)}>")
                    latest = at
                parts.append(_escape(word.text))
                position = found + len(word.text)
            parts.append(_escape(line.text[position:]))
            text = " ".join("".join(parts).split())  # a blank line would end the cue
            if line.speaker:
                text = f"<v {_annotation(line.speaker)}>{text}</v>"
            out += [f"page-{book_page.number}-line-{line.order}", f"{_clock(start)} --> {_clock(end)}", text, ""]
    return "\n".join(out)
