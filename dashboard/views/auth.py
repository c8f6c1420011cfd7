"""Log in and out, whichever identity mode is configured."""

from __future__ import annotations

from django.conf import settings
from django.contrib import auth, messages
from django.contrib.auth.views import LoginView
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from dashboard.auth import oidc


class LocalLoginView(LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True


def login(request):
    """Local accounts get a form; OIDC goes to the provider; header mode explains itself."""
    if settings.KFDASH_AUTH == "oidc":
        if request.user.is_authenticated:
            return redirect("home")
        pending = list(messages.get_messages(request))
        if not pending and "stay" not in request.GET:
            query = request.META.get("QUERY_STRING", "")
            return redirect(reverse("oidc_authentication_init") + (f"?{query}" if query else ""))
        return render(request, "registration/login_oidc.html")
    if settings.KFDASH_AUTH == "header":
        if request.user.is_authenticated:
            return redirect("home")
        return render(
            request, "registration/login_header.html",
            {"header": settings.KFDASH_USERID_HEADER}, status=401,
        )
    return LocalLoginView.as_view()(request)


@require_POST
def logout(request):
    """End the kfdash session, and the provider's too when it offers that."""
    target = "login"
    if settings.KFDASH_AUTH == "oidc" and request.user.is_authenticated:
        target = oidc.provider_logout_url(request)
    auth.logout(request)
    if settings.KFDASH_AUTH == "oidc":
        # A pending message keeps the login page from sending the browser straight
        # back to the provider, which would log a person with a provider session
        # right back in.
        messages.info(request, "You are logged out.")
    return redirect(target)
