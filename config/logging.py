"""Log hygiene: signed links are credentials for as long as they last (an audio clip, a picture,
a whole exported book), so the token in their path never reaches a log line. Django's request
logger writes the path of every 4xx and 5xx answer ("Not Found: /exports/<token>")."""

import logging
import re

_SIGNED_PATH = re.compile(r"/(audio|images|exports|samples)/[^\s/?#'\"]+")


def redact(text: str) -> str:
    return _SIGNED_PATH.sub(r"/\1/<redacted>", text)


class RedactSignedLinks(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        # django.request attaches the request; a JSON formatter would print its full path and
        # query string. Keep the method and the redacted path only.
        request = getattr(record, "request", None)
        if request is not None and not isinstance(request, str):
            record.request = f"{getattr(request, 'method', '')} {redact(getattr(request, 'path', ''))}"
        return True
