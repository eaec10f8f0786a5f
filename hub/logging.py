"""Structured logging: each record becomes one JSON object on one line."""

import json
import logging

from django.http import HttpRequest

# Attributes every LogRecord has; anything else was passed through ``extra=`` and is data.
_RECORD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Formats a record as JSON with its ``extra`` fields as top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = _loggable(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _loggable(value):
    # Django passes the request with its 4xx/5xx records; its repr carries the query
    # string, and the OAuth callback's query carries the authorization code.
    if isinstance(value, HttpRequest):
        return f"{value.method} {value.path}"
    return value
