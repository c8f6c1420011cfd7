"""Forms of the dashboard app: registration, contributors, API tokens."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from dashboard.choices import Role
from dashboard.models import Profile, validate_namespace_name


class RegisterForm(forms.Form):
    name = forms.CharField(
        label="Namespace name",
        max_length=63,
        help_text="Lower-case letters, digits and '-'; at most 63 characters.",
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        validate_namespace_name(name)
        if Profile.objects.filter(name=name).exists():
            raise ValidationError(f"The namespace '{name}' is taken; choose another name.")
        return name


class ContributorForm(forms.Form):
    email = forms.EmailField(label="Email")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.EDIT)


class RemoveContributorForm(forms.Form):
    email = forms.EmailField()


class TokenForm(forms.Form):
    name = forms.CharField(
        label="Token name", max_length=100, help_text="Say where it is used, e.g. 'CI' or 'laptop'."
    )
