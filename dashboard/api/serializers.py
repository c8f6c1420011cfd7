"""API shapes of users, namespaces, contributors, tokens and activity."""

from __future__ import annotations

from rest_framework import serializers

from dashboard.choices import Role
from dashboard.models import Activity, ApiToken, Contributor, Profile, validate_namespace_name


class NamespaceSerializer(serializers.ModelSerializer):
    owner = serializers.EmailField(source="owner.email", read_only=True)
    role = serializers.SerializerMethodField(help_text="The caller's role here.")
    name = serializers.CharField(max_length=63, validators=[validate_namespace_name])

    class Meta:
        model = Profile
        fields = ["name", "owner", "role", "created_at"]
        read_only_fields = ["created_at"]

    def get_role(self, profile) -> str | None:
        roles = self.context.get("roles", {})
        role = roles.get(profile.name, getattr(profile, "role", None))
        return str(role.value if isinstance(role, Role) else role) if role else None


class ContributorSerializer(serializers.ModelSerializer):
    role = serializers.ChoiceField(choices=Role.choices)
    is_owner = serializers.SerializerMethodField()
    added_by = serializers.EmailField(source="added_by.email", read_only=True, default=None)

    class Meta:
        model = Contributor
        fields = ["email", "role", "is_owner", "added_by", "added_at"]
        read_only_fields = ["added_at"]

    def get_is_owner(self, contributor) -> bool:
        return contributor.email == self.context["profile"].owner.email


class TokenSerializer(serializers.ModelSerializer):
    active = serializers.BooleanField(source="is_active", read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "hint", "created_at", "last_used_at", "revoked_at", "active"]
        read_only_fields = ["id", "hint", "created_at", "last_used_at", "revoked_at"]


class NewTokenSerializer(TokenSerializer):
    token = serializers.CharField(read_only=True, help_text="The secret; shown only once.")

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token"]


class ActivitySerializer(serializers.ModelSerializer):
    actor = serializers.EmailField(source="actor.email", read_only=True, default=None)

    class Meta:
        model = Activity
        fields = ["id", "verb", "target", "message", "actor", "created_at"]


class WhoAmISerializer(serializers.Serializer):
    email = serializers.EmailField()
    name = serializers.CharField()
    is_cluster_admin = serializers.BooleanField()
    groups = serializers.ListField(child=serializers.CharField())
    namespaces = NamespaceSerializer(many=True)
