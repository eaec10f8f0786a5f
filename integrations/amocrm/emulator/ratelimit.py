"""AmoCRM's request budget: at most N requests in any sliding one-second window."""

from __future__ import annotations

from collections import deque

WINDOW_SECONDS = 1.0


class SlidingWindow:
    """Admits at most ``limit`` requests per second; ``limit`` 0 admits everything.

    Only admitted requests take up the budget, so a client that backs off after a 429
    gets through as soon as its earlier requests have left the window.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self._admitted: deque[float] = deque()

    def admit(self, now: float) -> bool:
        if self.limit <= 0:
            return True
        while self._admitted and self._admitted[0] <= now - WINDOW_SECONDS:
            self._admitted.popleft()
        if len(self._admitted) >= self.limit:
            return False
        self._admitted.append(now)
        return True
