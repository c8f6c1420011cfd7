"""Namespaces and contributors: the rules live in the models."""

import pytest
from django.core.exceptions import ValidationError

from dashboard.models import Activity, Contributor, Profile, User


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("Ana.Smith@Example.com", "ana-smith-example-com"),
        ("a+b__c@x.io", "a-b-c-x-io"),
        ("---@--", "user"),
        ("kube-x@y.z", "user-kube-x-y-z"),
        ("x" * 80 + "@example.com", "x" * 63),
    ],
)
def test_it_derives_a_dns_label_from_an_email(db, email, expected):
    name = Profile.name_for_email(email)
    assert name == expected
    assert len(name) <= 63


def test_it_proposes_a_free_name_when_taken(owner, profile, make_user):
    make_user("team-a@x.y")
    Profile.objects.create(name="owner-example-com", owner=owner)
    assert Profile.name_for_email("owner@example.com") == "owner-example-com-2"


def test_it_prefixes_reserved_names(db):
    assert Profile.name_for_email("default@") == "user-default"


def test_it_registers_a_namespace_with_its_owner_as_admin(owner):
    profile = Profile.register("ml", owner)
    assert profile.owner == owner
    assert list(profile.contributors.values_list("email", "role")) == [(owner.email, "admin")]
    assert Activity.objects.get(profile=profile).message == (
        "owner@example.com created the namespace ml"
    )
    owner.refresh_from_db()
    assert owner.selected_namespace == "ml"


@pytest.mark.parametrize("name", ["Team", "a_b", "-ab", "ab-", "", "a" * 64, "kube-system",
                                  "default", "kubeflow"])
def test_it_refuses_invalid_names(owner, name):
    with pytest.raises(ValidationError):
        Profile.register(name, owner)
    assert not Profile.objects.exists()


def test_it_refuses_a_taken_name(profile, make_user):
    other = make_user("other@example.com")
    with pytest.raises(ValidationError, match="taken"):
        Profile.register("team-a", other)


def test_it_allows_one_namespace_per_user_but_more_for_cluster_admins(profile, owner,
                                                                        cluster_admin):
    with pytest.raises(ValidationError, match="already own"):
        Profile.register("second", owner)
    Profile.register("admin-1", cluster_admin)
    Profile.register("admin-2", cluster_admin)
    assert cluster_admin.owned_profiles.count() == 2


def test_it_adds_changes_and_removes_contributors(profile, owner):
    profile.set_contributor("Bob@Example.com", "view", owner)
    assert profile.contributors.get(email="bob@example.com").role == "view"
    profile.set_contributor("bob@example.com", "edit", owner)
    assert profile.contributors.get(email="bob@example.com").role == "edit"
    profile.remove_contributor("BOB@example.com", owner)
    assert not profile.contributors.filter(email="bob@example.com").exists()
    messages = list(profile.activities.values_list("message", flat=True))
    assert messages[:3] == [
        "owner@example.com removed bob@example.com",
        "owner@example.com changed the role of bob@example.com as edit",
        "owner@example.com added bob@example.com as view",
    ]


def test_it_refuses_unknown_roles_and_bad_emails(profile, owner):
    with pytest.raises(ValidationError, match="not a role"):
        profile.set_contributor("bob@example.com", "superuser", owner)
    with pytest.raises(ValidationError, match="not an email"):
        profile.set_contributor("bob", "view", owner)
    assert profile.contributors.count() == 1


def test_it_refuses_to_remove_or_demote_the_owner(profile, owner, cluster_admin):
    with pytest.raises(ValidationError, match="last owner"):
        profile.remove_contributor(owner.email, cluster_admin)
    with pytest.raises(ValidationError, match="owns this namespace"):
        profile.set_contributor(owner.email, "view", cluster_admin)
    assert profile.contributors.get(email=owner.email).role == "admin"


def test_it_refuses_contributors_changing_their_own_role(profile, owner, member):
    profile.set_contributor(member.email, "admin", owner)
    with pytest.raises(ValidationError, match="your own role"):
        profile.set_contributor(member.email, "edit", member)


def test_it_refuses_removing_someone_who_is_not_there(profile, owner):
    with pytest.raises(ValidationError, match="not a contributor"):
        profile.remove_contributor("nobody@example.com", owner)


def test_it_rolls_back_when_the_backend_fails(owner, monkeypatch):
    from dashboard.namespaces import BackendError, get_backend

    def fail(profile):
        raise BackendError("cluster says no")

    monkeypatch.setattr(get_backend(), "create_namespace", fail)
    with pytest.raises(BackendError):
        Profile.register("doomed", owner)
    assert not Profile.objects.filter(name="doomed").exists()
    assert not Contributor.objects.exists()
    assert not Activity.objects.exists()


def test_it_keys_users_by_lowercased_email(db):
    user = User.objects.create_user("Mixed@Case.COM", "pw")
    assert user.email == "mixed@case.com"
    assert User.objects.get_by_natural_key("MIXED@case.com") == user


def test_it_makes_a_folder_per_namespace_in_local_mode(owner, settings):
    from dashboard.namespaces.local import namespace_dir

    Profile.register("with-folder", owner)
    assert namespace_dir("with-folder").is_dir()
