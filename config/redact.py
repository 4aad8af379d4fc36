"""A logging filter that blanks out credentials before a record is written anywhere."""

import logging
import re

REDACTED = "[redacted]"
SECRETS = re.compile(
    r"gp_[\w-]{16,}"  # an agent token (approvals.models.AGENT_TOKEN_PREFIX)
    r"|(?<=[Bb]earer )[^\s'\",]+"
    r"|(?<=HTTP_AUTHORIZATION': ')[^']+"
    r"|(?<='password': ')[^']+"
    r"|(?<=\"password\": \")[^\"]+"
)


def redact(text: str) -> str:
    return SECRETS.sub(REDACTED, text)


class RedactSecrets(logging.Filter):
    """Rewrites the record's message and traceback with agent tokens, bearer values and passwords blanked.

    Django's template engine logs a failed variable lookup at DEBUG with the whole context, which may hold a
    token just shown once; this keeps such a record from carrying it to the console.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
            record.exc_info = None
        return True
