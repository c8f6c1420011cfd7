"""The kfdash API for identity and namespaces (``/api/v1/``)."""

from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard import access
from dashboard.api import serializers as s
from dashboard.api.errors import error_body
from dashboard.choices import Role
from dashboard.models import ApiToken, Contributor, Profile


@csrf_exempt  # it changes nothing; a POST to a mistyped path gets this 404, not a CSRF page
def not_found(request, *args, **kwargs):
    """Unknown paths under /api/ and /apis/ answer with the APIs' error body, not with an
    HTML page (the KFP server does the same)."""
    return JsonResponse(error_body(f"No such API path: {request.path}", 404), status=404)


def roles_of(user) -> dict[str, Role]:
    """The user's role in every namespace they belong to, in one query."""
    return {
        name: Role(role)
        for name, role in Contributor.objects.filter(email=user.email).values_list(
            "profile__name", "role"
        )
    }


def namespace_context(user) -> dict:
    roles = roles_of(user)
    if user.is_cluster_admin:
        roles = {p: Role.ADMIN for p in Profile.objects.values_list("name", flat=True)}
    return {"roles": roles}


class WhoAmIView(APIView):
    @extend_schema(responses=s.WhoAmISerializer)
    def get(self, request):
        user = request.user
        namespaces = access.namespaces_for(user).select_related("owner")
        data = {
            "email": user.email, "name": user.name, "is_cluster_admin": user.is_cluster_admin,
            "groups": user.idp_groups,
            "namespaces": s.NamespaceSerializer(
                namespaces, many=True, context=namespace_context(user)).data,
        }
        return Response(data)


class NamespaceListView(generics.ListCreateAPIView):
    serializer_class = s.NamespaceSerializer
    pagination_class = None

    def get_queryset(self):
        return access.namespaces_for(self.request.user).select_related("owner")

    def get_serializer_context(self):
        return {**super().get_serializer_context(), **namespace_context(self.request.user)}

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        profile = Profile.register(serializer.validated_data["name"], request.user)
        profile.role = Role.ADMIN
        return Response(self.get_serializer(profile).data, status=status.HTTP_201_CREATED)


class NamespaceDetailView(APIView):
    @extend_schema(responses=s.NamespaceSerializer)
    def get(self, request, namespace):
        profile = access.get_namespace(request.user, namespace)
        return Response(s.NamespaceSerializer(profile).data)


class ContributorListView(APIView):
    @extend_schema(responses=s.ContributorSerializer(many=True))
    def get(self, request, namespace):
        profile = access.get_namespace(request.user, namespace)
        contributors = profile.contributors.select_related("added_by")
        return Response(s.ContributorSerializer(
            contributors, many=True, context={"profile": profile}).data)

    @extend_schema(request=s.ContributorSerializer, responses={201: s.ContributorSerializer})
    def post(self, request, namespace):
        """Add a contributor, or change their role (admins of the namespace only)."""
        profile = access.get_namespace(request.user, namespace, Role.ADMIN)
        serializer = s.ContributorSerializer(data=request.data, context={"profile": profile})
        serializer.is_valid(raise_exception=True)
        contributor = profile.set_contributor(
            serializer.validated_data["email"], serializer.validated_data["role"], request.user
        )
        return Response(s.ContributorSerializer(contributor, context={"profile": profile}).data,
                        status=status.HTTP_201_CREATED)


class ContributorDetailView(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request, namespace, email):
        profile = access.get_namespace(request.user, namespace, Role.ADMIN)
        get_object_or_404(Contributor, profile=profile, email=email.lower())
        profile.remove_contributor(email, request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ActivityPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


class ActivityListView(generics.ListAPIView):
    serializer_class = s.ActivitySerializer
    pagination_class = ActivityPagination

    def get_queryset(self):
        profile = access.get_namespace(self.request.user, self.kwargs["namespace"])
        return profile.activities.select_related("actor")


class TokenListView(generics.ListCreateAPIView):
    serializer_class = s.TokenSerializer
    pagination_class = None

    def get_queryset(self):
        return self.request.user.api_tokens.all()

    @extend_schema(responses={201: s.NewTokenSerializer})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, secret = ApiToken.issue(request.user, serializer.validated_data["name"])
        token.token = secret
        return Response(s.NewTokenSerializer(token).data, status=status.HTTP_201_CREATED)


class TokenDetailView(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request, token_id):
        """Revoke a token (it stays listed, marked revoked)."""
        get_object_or_404(ApiToken, pk=token_id, user=request.user).revoke()
        return Response(status=status.HTTP_204_NO_CONTENT)
