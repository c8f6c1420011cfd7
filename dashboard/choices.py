"""Enumerations shared by models, forms, the API and the namespace backends."""

from django.db import models


class Role(models.TextChoices):
    """A person's role in a namespace, as Kubeflow's access manager (KFAM) names them.

    Roles are ordered: each one may do everything the ones below it may.
    """

    VIEW = "view", "View"
    EDIT = "edit", "Edit"
    ADMIN = "admin", "Admin"

    def allows(self, verb: "Role | str") -> bool:
        """Whether this role may perform ``verb`` (a role name used as a verb)."""
        return _RANK[self.value] >= _RANK[Role(verb).value]


_RANK = {"view": 1, "edit": 2, "admin": 3}
