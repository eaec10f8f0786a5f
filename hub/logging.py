"""Structured logging: each record becomes one JSON object on one line.

Logs never hold personal data: callers pass ids, codes and counts, and whatever an
exception says is left out here (a message may quote the value that failed, a guest's
name or birthday); its class and the traceback's lines say where to look.
"""

import json
import logging
import traceback

from django.http import HttpRequest

from hub.log_scrubbing import text_scrub, uri_scrub

# Attributes every LogRecord has; anything else was passed through ``extra=`` and is data.
_RECORD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


class JsonFormatter(logging.Formatter):
    """Formats a record as JSON with its ``extra`` fields as top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            # Django's request errors name the path, which may carry an intake token.
            "message": text_scrub(_message(record)),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = _loggable(_trace_scrubbed(value, record))
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = self.formatException(record.exc_info)
            entry.setdefault("error_class", error_class(record.exc_info[1]))
        return json.dumps(entry, ensure_ascii=False, default=str)

    def formatException(self, ei) -> str:
        """The traceback with each exception's class but not its message."""
        if ei[0] is None:  # logger.exception() called outside an exception handler
            return ""
        return "".join(_without_messages(traceback.TracebackException(*ei))).rstrip("\n")


def error_class(error: BaseException | None) -> str:
    """An exception's class as logs show it: ``module.Name``."""
    if error is None:
        return ""
    kind = type(error)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


def _message(record: logging.LogRecord) -> str:
    if isinstance(record.args, dict) and "exc" in record.args:
        return str(record.msg) % _trace_scrubbed(record.args, record)
    return record.getMessage()


def _trace_scrubbed(value, record: logging.LogRecord):
    """Celery's task trace without the exception's text.

    Celery logs a failed or retried task with the exception's repr (``exc``) and its
    traceback as text, both as the message's arguments and as ``data``.
    """
    if not (isinstance(value, dict) and "exc" in value):
        return value
    error = record.exc_info[1] if record.exc_info else None
    kind = error_class(error) if error is not None else "error"
    scrubbed = {**value, "exc": f"{kind} (message not logged)"}
    if "traceback" in scrubbed:
        scrubbed["traceback"] = ""
    return scrubbed


def _without_messages(exception: traceback.TracebackException) -> list[str]:
    lines = []
    if exception.__cause__ is not None:
        lines += [*_without_messages(exception.__cause__), _CAUSE]
    elif exception.__context__ is not None and not exception.__suppress_context__:
        lines += [*_without_messages(exception.__context__), _CONTEXT]
    lines.append("Traceback (most recent call last):\n")
    lines.extend(exception.stack.format())
    module, name = exception.exc_type.__module__, exception.exc_type.__qualname__
    lines.append(f"{name if module == 'builtins' else f'{module}.{name}'} (message not logged)\n")
    return lines


def _loggable(value):
    # Django passes the request with its 4xx/5xx records; its repr carries the query
    # string, and the OAuth callback's query carries the authorization code.
    if isinstance(value, HttpRequest):
        return f"{value.method} {uri_scrub(value.path)}"
    # An exception's text may quote a bad value: only its class is logged.
    if isinstance(value, BaseException):
        return error_class(value)
    return value
