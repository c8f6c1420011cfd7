"""Personal API tokens: create (shown once), list, revoke."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache

from dashboard.forms import TokenForm
from dashboard.models import ApiToken


@never_cache  # the page that shows a new token must not be kept by any cache
@login_required
def tokens(request):
    form = TokenForm(request.POST or None)
    secret = None
    if request.method == "POST" and form.is_valid():
        _, secret = ApiToken.issue(request.user, form.cleaned_data["name"])
        form = TokenForm()
    return render(request, "dashboard/tokens.html", {
        "form": form,
        "tokens": request.user.api_tokens.all(),
        "new_secret": secret,
    })


@login_required
def revoke_token(request, token_id: int):
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    token.revoke()
    messages.success(request, f"The token '{token.name}' is revoked.")
    return redirect("tokens")
