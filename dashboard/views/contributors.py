"""Manage contributors: who may view, edit or administer a namespace."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from dashboard.choices import Role
from dashboard.decorators import namespace_view
from dashboard.forms import ContributorForm, RemoveContributorForm
from dashboard.namespaces import BackendError


@namespace_view(methods=("GET", "HEAD", "POST"))  # admins add contributors here
def contributors(request, profile):
    can_manage = profile.role.allows(Role.ADMIN)
    form = ContributorForm(request.POST or None)
    if request.method == "POST":
        if not can_manage:
            raise PermissionDenied("Only the namespace's admins manage its contributors.")
        if form.is_valid():
            try:
                profile.set_contributor(
                    form.cleaned_data["email"], form.cleaned_data["role"], request.user
                )
            except (ValidationError, BackendError) as exc:
                form.add_error(None, exc.messages if isinstance(exc, ValidationError) else str(exc))
            else:
                messages.success(
                    request, f"{form.cleaned_data['email']} now has the "
                    f"{form.cleaned_data['role']} role in {profile.name}.")
                return redirect("ns-contributors", profile.name)
    return render(request, "dashboard/contributors.html", {
        "profile": profile,
        "contributors": profile.contributors.select_related("added_by"),
        "form": form,
        "can_manage": can_manage,
        "roles": Role.choices,
    })


@namespace_view(Role.ADMIN)
@require_POST
def remove_contributor(request, profile):
    form = RemoveContributorForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say whom to remove (an email address).")
    else:
        try:
            profile.remove_contributor(form.cleaned_data["email"], request.user)
        except (ValidationError, BackendError) as exc:
            messages.error(request, " ".join(exc.messages) if isinstance(exc, ValidationError)
                           else str(exc))
        else:
            messages.success(request, f"{form.cleaned_data['email']} no longer has access.")
    return redirect("ns-contributors", profile.name)

