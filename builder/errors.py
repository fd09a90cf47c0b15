"""Errors the builder raises. Callers catch :class:`BuilderError`; the CLI and the API
turn each class into an exit code or an ErrorResponse in one place each.

BuilderError
├── ManifestError          the manifest itself is wrong (names the field)
├── AssetError             an asset could not be had
│   ├── AssetNotAllowed    scheme, path outside the allowed roots, forbidden address
│   ├── AssetTooLarge      larger than the configured limit
│   ├── DigestMismatch     content does not match the sha256 given for it
│   └── DownloadFailed     network or HTTP failure, after retries
├── UnpackError            archive unsafe (escaping paths, links, devices) or too big
├── RequirementsError      bad pip / conda file, conda-only packages, resolution failure
├── BaseImageError         base image neither present, pullable nor bootstrappable
├── UnsupportedRuntime     a runtimeType this version cannot build
├── TemplateError          a value reached a template without an escaping filter
└── BuildError             the engine failed to build; carries the log tail
    └── OutputError        push or export failed after a good build
"""

from __future__ import annotations

from pathlib import Path


class BuilderError(Exception):
    """Base of every error the builder raises on purpose."""


class ManifestError(BuilderError):
    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class AssetError(BuilderError):
    pass


class AssetNotAllowed(AssetError):
    pass


class AssetTooLarge(AssetError):
    pass


class DigestMismatch(AssetError):
    pass


class DownloadFailed(AssetError):
    pass


class UnpackError(BuilderError):
    pass


class RequirementsError(BuilderError):
    pass


class BaseImageError(BuilderError):
    pass


class UnsupportedRuntime(BuilderError):
    pass


class TemplateError(BuilderError):
    pass


class BuildError(BuilderError):
    def __init__(self, reason: str, log_tail: list[str] | None = None,
                 log_path: Path | None = None) -> None:
        self.reason = reason
        self.log_tail = list(log_tail or [])
        self.log_path = log_path
        super().__init__(reason)

    def __str__(self) -> str:
        lines = [self.reason]
        if self.log_tail:
            lines.append("last lines of the build log:")
            lines.extend(f"  {line}" for line in self.log_tail)
        if self.log_path:
            lines.append(f"full log: {self.log_path}")
        return "\n".join(lines)


class OutputError(BuildError):
    pass
