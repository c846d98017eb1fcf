"""One narrow exception tree; the type says whether retrying can help."""

from __future__ import annotations


class SaygoodbyeError(Exception):
    """Base of every error this service raises on purpose."""

    exit_code = 1


class ConfigError(SaygoodbyeError):
    """The configuration file is missing, unreadable or invalid.

    The message always names the file and the key, and never contains a secret.
    """

    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None):
        self.path = path
        self.key = key
        where = path or "configuration"
        if key:
            where = f"{where}: {key}"
        super().__init__(f"{where}: {message}")


class UsageError(SaygoodbyeError):
    """The command line asked for something that cannot be done as asked."""

    exit_code = 2


class StoreError(SaygoodbyeError):
    """The database could not be reached or migrated."""


class MailboxError(SaygoodbyeError):
    """Talking to the IMAP server failed.

    ``transient`` is True for network-level faults worth retrying with backoff,
    False for faults that retrying cannot fix (bad credentials, missing folder).
    """

    def __init__(self, message: str, *, transient: bool = True):
        self.transient = transient
        super().__init__(message)


class DeliveryError(SaygoodbyeError):
    """Handing a message to the SMTP server failed.

    ``transient`` failures happened before DATA or were 4xx replies and may be
    retried; permanent ones (5xx, refused recipients) must not be.
    """

    def __init__(self, message: str, *, transient: bool, smtp_code: int | None = None):
        self.transient = transient
        self.smtp_code = smtp_code
        super().__init__(message)


class SourceError(SaygoodbyeError):
    """An offline source (mbox file, Maildir folder) cannot be read."""

    exit_code = 2
