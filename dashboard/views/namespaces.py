"""Landing, registration, the namespace home page and the namespace selector."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from dashboard import access
from dashboard.decorators import namespace_view
from dashboard.forms import RegisterForm
from dashboard.models import Contributor, Profile
from dashboard.namespaces import BackendError

FEED_LENGTH = 50


@login_required
def home(request):
    """Land in the namespace chosen last, else the first one, else registration."""
    profile = access.default_namespace(request.user)
    if profile is not None:
        return redirect("ns-home", profile.name)
    return redirect("register")


@login_required
def register(request):
    """First login without a namespace: propose one derived from the email."""
    user = request.user
    if user.owned_profiles.exists() and not user.is_cluster_admin:
        messages.info(request, "You already own a namespace.")
        return redirect("home")
    form = RegisterForm(request.POST or None,
                        initial={"name": Profile.name_for_email(user.email)})
    if request.method == "POST" and form.is_valid():
        try:
            profile = Profile.register(form.cleaned_data["name"], user)
        except (ValidationError, BackendError) as exc:
            form.add_error("name", exc.messages if isinstance(exc, ValidationError) else str(exc))
        else:
            messages.success(request, f"Your namespace {profile.name} is ready.")
            return redirect("ns-home", profile.name)
    return render(request, "dashboard/register.html", {"form": form})


@namespace_view()
def namespace_home(request, profile):
    activities = profile.activities.select_related("actor")[:FEED_LENGTH]
    return render(request, "dashboard/home.html", {
        "profile": profile,
        "activities": activities,
        "contributor_count": profile.contributors.count(),
    })


@login_required
def memberships(request):
    """Every namespace the user belongs to, with their role in it."""
    mine = Contributor.objects.filter(email=request.user.email).select_related("profile__owner")
    others = (
        Profile.objects.exclude(contributors__email=request.user.email).select_related("owner")
        if request.user.is_cluster_admin else Profile.objects.none()
    )
    return render(request, "dashboard/memberships.html",
                  {"memberships": mine, "admin_namespaces": others})


@login_required
@require_POST
def switch_namespace(request):
    """The top bar's selector: show the same section of another namespace."""
    name = request.POST.get("namespace", "")
    profile = access.get_namespace(request.user, name)
    request.user.remember_namespace(profile.name)
    target = reverse("ns-home", args=[profile.name])
    here = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(here, allowed_hosts={request.get_host()}):
        parts = here.split("/")
        # /ns/<old>/<section>/... -> /ns/<new>/<section>/ (objects don't carry over)
        if len(parts) > 4 and parts[1] == "ns" and parts[3]:
            target = f"{target}{parts[3]}/"
    return redirect(target)
