"""dashboard/access.py: the one access policy."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404

from dashboard import access


def test_it_ranks_roles(profile, owner, member, viewer, stranger, cluster_admin):
    table = {
        owner: {"view": True, "edit": True, "admin": True},
        member: {"view": True, "edit": True, "admin": False},
        viewer: {"view": True, "edit": False, "admin": False},
        stranger: {"view": False, "edit": False, "admin": False},
        cluster_admin: {"view": True, "edit": True, "admin": True},
        AnonymousUser(): {"view": False, "edit": False, "admin": False},
    }
    for user, verbs in table.items():
        for verb, allowed in verbs.items():
            assert access.can(user, verb, profile) is allowed, (user, verb)
            assert access.can(user, verb, profile.name) is allowed, (user, verb)


def test_it_hides_foreign_namespaces_with_404(profile, stranger):
    with pytest.raises(Http404):
        access.get_namespace(stranger, "team-a")
    with pytest.raises(Http404):
        access.get_namespace(stranger, "does-not-exist")


def test_it_refuses_viewers_with_403(profile, viewer):
    assert access.get_namespace(viewer, "team-a").role == "view"
    with pytest.raises(PermissionDenied):
        access.get_namespace(viewer, "team-a", "edit")


def test_it_denies_deactivated_users(profile, member):
    member.is_active = False
    member.save()
    assert not access.can(member, "view", profile)


def test_it_lists_the_namespaces_a_user_may_view(profile, member, stranger, cluster_admin,
                                                  make_user):
    from dashboard.models import Profile

    other = make_user("other@example.com")
    Profile.register("team-b", other)
    assert [p.name for p in access.namespaces_for(member)] == ["team-a"]
    assert list(access.namespaces_for(stranger)) == []
    assert [p.name for p in access.namespaces_for(cluster_admin)] == ["team-a", "team-b"]
    assert list(access.namespaces_for(AnonymousUser())) == []


def test_it_decides_with_one_query(profile, member, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert access.get_namespace(member, "team-a", "edit").role == "edit"
