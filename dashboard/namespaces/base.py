"""The contract every namespace backend keeps."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dashboard.errors import PlatformError

if TYPE_CHECKING:
    from dashboard.choices import Role
    from dashboard.models import Profile


class BackendError(PlatformError):
    """A namespace backend could not do what was asked."""


class NamespaceBackend:
    """Makes namespaces real. Called inside the database transaction that records the
    change, so raising ``BackendError`` rolls the change back; a backend that fails
    half-way removes what it made before raising."""

    name = "base"

    def create_namespace(self, profile: Profile) -> None:
        """Make the namespace, with its owner as admin. Idempotent for the same owner."""
        raise NotImplementedError

    def delete_namespace(self, profile: Profile) -> None:
        """Remove the namespace and everything in it. Missing is not an error."""
        raise NotImplementedError

    def grant(self, profile: Profile, email: str, role: Role) -> None:
        """Give ``email`` exactly ``role`` in the namespace (replacing any other role)."""
        raise NotImplementedError

    def revoke(self, profile: Profile, email: str) -> None:
        """Take every role of ``email`` in the namespace away. Missing is not an error."""
        raise NotImplementedError
