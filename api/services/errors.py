"""``ServiceError``: an error the service reports to the client with a status and a clear message."""

from __future__ import annotations

from anatomy_vlm.exceptions import AnatomyVLMError


class ServiceError(AnatomyVLMError):
    """Answered as ``{"detail": message}`` with ``status_code``."""

    def __init__(self, status_code: int, message: str):
        super().__init__(message)
        self.status_code = status_code
        self.message = message
