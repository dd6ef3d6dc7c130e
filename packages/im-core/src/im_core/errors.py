"""Every error im raises, rooted at :class:`ImError`.

Each class has a section in ``docs/errors.md`` (what happened, why, how to fix); ``help_url`` points at it and is
derived from the class name, never typed at a raise site. A test checks that every class has its section.

Hierarchy::

    ImError
    ├── ConfigurationError                      bad IM_* environment value or setting
    ├── InvalidParameterError (ValueError)      a bad argument to a public function
    ├── ModelInputError (ValueError)            an image the model cannot take
    ├── ModelRuntimeError                       the backend failed while running
    ├── DependencyError
    │   ├── MissingDependencyError (ImportError)  a package/extra is not installed
    │   └── PluginError                           a plugin is unknown, broken or misdeclared
    ├── RetrievalError                          asking a weights provider about a model
    │   ├── ModelNotFoundError (404)
    │   ├── UnauthorizedError (401)
    │   ├── PaymentRequiredError (402)
    │   ├── ForbiddenError (403)
    │   ├── UsagePausedError (423)
    │   ├── ProviderUnavailableError            connection refused / retries exhausted
    │   ├── MalformedMetadataError              the provider answered something we cannot parse
    │   └── OfflineModeError                    offline, and the cache does not hold what is asked
    ├── DownloadError
    │   ├── ChecksumMismatchError
    │   ├── IncompleteDownloadError
    │   ├── DownloadTooSlowError                  below IM_DOWNLOAD_MIN_SPEED on every attempt
    │   ├── CacheLockTimeoutError
    │   └── CacheStorageError                   IM_HOME is full or read-only: a file cannot be stored
    ├── NegotiationError
    │   └── NoCompatiblePackageError            carries the NegotiationReport
    └── ModelLoadingError
        ├── CorruptedModelPackageError
        ├── UnsafePathError                     a file name that escapes its folder
        ├── ModelImplementationNotFoundError
        ├── DependencyModelError                dependent models declared or passed wrongly
        └── AllPackagesFailedError              every ranked candidate failed to load
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "DOCS_ERRORS_URL",
    "AllPackagesFailedError",
    "CacheLockTimeoutError",
    "CacheStorageError",
    "ChecksumMismatchError",
    "ConfigurationError",
    "CorruptedModelPackageError",
    "DependencyError",
    "DependencyModelError",
    "DownloadError",
    "DownloadTooSlowError",
    "ForbiddenError",
    "ImError",
    "IncompleteDownloadError",
    "InvalidParameterError",
    "MalformedMetadataError",
    "MissingDependencyError",
    "ModelImplementationNotFoundError",
    "ModelInputError",
    "ModelLoadingError",
    "ModelNotFoundError",
    "ModelRuntimeError",
    "NegotiationError",
    "NoCompatiblePackageError",
    "OfflineModeError",
    "PaymentRequiredError",
    "PluginError",
    "ProviderUnavailableError",
    "RetrievalError",
    "UnauthorizedError",
    "UnsafePathError",
    "UsagePausedError",
    "all_error_classes",
]

#: The documentation site (``mkdocs.yml``'s ``site_url`` and every ``pyproject.toml``'s ``Documentation`` URL; a
#: test checks they agree). Every help link is derived from it.
DOCS_URL = "https://im-vision.github.io/im/"
#: Where ``docs/errors.md`` is published; anchors are the lower-cased class names.
DOCS_ERRORS_URL = f"{DOCS_URL}errors/"


class ImError(Exception):
    """Root of every error im raises.

    Attributes:
        message: what went wrong and how to fix it, in words.
        help_url: link to this class's section in ``docs/errors.md``.
    """

    category: ClassVar[str] = "general"

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        #: Structured extras for callers (e.g. ``status_code``, ``report``); never secrets.
        self.context = context

    @classmethod
    def help_anchor(cls) -> str:
        """The anchor of this class's section in ``docs/errors.md``."""
        return cls.__name__.lower()

    @property
    def help_url(self) -> str:
        return f"{DOCS_ERRORS_URL}#{self.help_anchor()}"

    def __str__(self) -> str:
        return f"{self.message}\n(help: {self.help_url})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.context))


def _rebuild(cls: type[ImError], message: str, context: dict[str, Any]) -> ImError:
    return cls(message, **context)


class ConfigurationError(ImError):
    """An ``IM_*`` environment variable or a setting has a value im cannot use."""

    category = "configuration"


class InvalidParameterError(ImError, ValueError):
    """A public function got an argument it cannot use."""

    category = "input"


class ModelInputError(ImError, ValueError):
    """An image (or other model input) is of a type or shape the model cannot take."""

    category = "input"


class ModelRuntimeError(ImError):
    """The backend failed while running the model."""

    category = "runtime"


class DependencyError(ImError):
    """Something im needs from the installed environment is missing or broken."""

    category = "dependency"


class MissingDependencyError(DependencyError, ImportError):
    """A Python package (usually an im extra or backend) is not installed."""


class PluginError(DependencyError):
    """A plugin is unknown, failed to import, or declares something invalid."""


class RetrievalError(ImError):
    """Asking a weights provider about a model failed."""

    category = "retrieval"


class ModelNotFoundError(RetrievalError):
    """The provider does not know the model id (HTTP 404 or no such registry entry)."""


class UnauthorizedError(RetrievalError):
    """The provider refused the credentials (HTTP 401)."""


class PaymentRequiredError(RetrievalError):
    """The provider requires a paid plan for this model (HTTP 402)."""


class ForbiddenError(RetrievalError):
    """The credentials are valid but may not access this model (HTTP 403)."""


class UsagePausedError(RetrievalError):
    """The account's usage is paused by the provider (HTTP 423)."""


class ProviderUnavailableError(RetrievalError):
    """The provider could not be reached, or kept failing after every retry."""


class MalformedMetadataError(RetrievalError):
    """The provider answered with metadata im cannot parse."""


class OfflineModeError(RetrievalError):
    """Offline mode is on and the cache does not hold what was asked for."""


class DownloadError(ImError):
    """A model file could not be downloaded and verified."""

    category = "download"


class ChecksumMismatchError(DownloadError):
    """A downloaded or cached file does not have the size or hash its metadata declares."""


class IncompleteDownloadError(DownloadError):
    """The server closed the connection before the whole file arrived."""


class DownloadTooSlowError(DownloadError):
    """A download stayed below the minimum speed (``IM_DOWNLOAD_MIN_SPEED``) on every attempt."""


class CacheLockTimeoutError(DownloadError):
    """Another process held a cache lock and stopped making progress."""


class CacheStorageError(DownloadError):
    """The cache (``IM_HOME``) cannot store a file: the disk is full, the folder is read-only, or a file is too
    large for it; the message names ``IM_HOME``, the free space and the bytes needed."""


class NegotiationError(ImError):
    """Choosing a model package for this machine failed."""

    category = "negotiation"


class NoCompatiblePackageError(NegotiationError):
    """No package of the model passes the filters; the message holds every package's reason."""


class ModelLoadingError(ImError):
    """A model package could not be turned into a working model."""

    category = "loading"


class CorruptedModelPackageError(ModelLoadingError):
    """A package's files are missing, malformed or disagree with each other."""


class UnsafePathError(ModelLoadingError):
    """A file name or model id tries to escape the folder it belongs to."""


class ModelImplementationNotFoundError(ModelLoadingError):
    """No installed model family implements this architecture and task."""


class DependencyModelError(ModelLoadingError):
    """A model's declared dependencies (other models) are invalid or were passed wrongly."""


class AllPackagesFailedError(ModelLoadingError):
    """Every candidate package failed to load; the message lists each attempt."""


def all_error_classes() -> list[type[ImError]]:
    """Every error class defined here, root first (used by the docs test)."""
    out: list[type[ImError]] = []
    stack: list[type[ImError]] = [ImError]
    while stack:
        cls = stack.pop(0)
        if cls not in out:
            out.append(cls)
        stack.extend(sorted(cls.__subclasses__(), key=lambda c: c.__name__))
    return [c for c in out if c.__module__ == __name__]
