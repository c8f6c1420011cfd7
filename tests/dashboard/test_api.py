"""The /api/v1 endpoints: tokens, namespaces, contributors, activity."""

import pytest
from rest_framework.test import APIClient

from dashboard.models import ApiToken, Profile


def test_it_answers_whoami_with_a_token(api, member):
    body = api(member).get("/api/v1/whoami").json()
    assert body["email"] == "member@example.com"
    assert body["namespaces"] == [
        {"name": "team-a", "owner": "owner@example.com", "role": "edit",
         "created_at": body["namespaces"][0]["created_at"]}
    ]


def test_it_records_when_a_token_was_last_used(api, owner):
    client = api(owner)
    token = ApiToken.objects.get(user=owner)
    assert token.last_used_at is None
    client.get("/api/v1/whoami")
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None
    client.get("/api/v1/whoami")
    token.refresh_from_db()
    assert token.last_used_at == first  # written at most once a minute


@pytest.mark.parametrize("header", ["Bearer kfd_forged", "Bearer", "Basic abc", "Bearer a b"])
def test_it_refuses_bad_credentials_with_401(db, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/whoami")
    assert response.status_code == 401
    assert response.json()["code"] == 16


def test_it_refuses_revoked_tokens(owner):
    token, secret = ApiToken.issue(owner, "x")
    token.revoke()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = client.get("/api/v1/whoami")
    assert response.status_code == 401
    assert "revoked" in response.json()["message"]


def test_it_refuses_tokens_of_deactivated_users(owner):
    _, secret = ApiToken.issue(owner, "x")
    owner.is_active = False
    owner.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/v1/whoami").status_code == 401


def test_it_asks_anonymous_callers_to_authenticate(db):
    response = APIClient().get("/api/v1/whoami")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_it_enforces_csrf_for_session_callers(owner):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.get("/api/v1/whoami").status_code == 200
    response = client.post("/api/v1/tokens", {"name": "x"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["message"]
    assert not ApiToken.objects.exists()


def test_it_needs_no_csrf_for_bearer_tokens(api, owner):
    response = api(owner).post("/api/v1/tokens", {"name": "ci"}, format="json")
    assert response.status_code == 201
    secret = response.json()["token"]
    assert ApiToken.objects.get(digest=ApiToken.digest_of(secret)).name == "ci"


def test_it_lists_and_revokes_tokens(api, owner):
    client = api(owner)
    listed = client.get("/api/v1/tokens").json()
    assert [t["name"] for t in listed] == ["test"]
    assert "token" not in listed[0] and "digest" not in listed[0]
    other, _ = ApiToken.issue(owner, "other")
    assert client.delete(f"/api/v1/tokens/{other.pk}").status_code == 204
    other.refresh_from_db()
    assert not other.is_active


def test_it_creates_namespaces(api, make_user):
    client = api(make_user("new@example.com"))
    response = client.post("/api/v1/namespaces", {"name": "fresh"}, format="json")
    assert response.status_code == 201
    assert response.json()["role"] == "admin"
    assert Profile.objects.get(name="fresh").owner.email == "new@example.com"


@pytest.mark.parametrize(("name", "status"), [("Bad Name", 400), ("team-a", 400), ("", 400)])
def test_it_refuses_bad_namespace_names(api, make_user, profile, name, status):
    response = api(make_user("new@example.com")).post(
        "/api/v1/namespaces", {"name": name}, format="json")
    assert response.status_code == status
    body = response.json()
    assert body["code"] == 3 and body["message"]
    assert Profile.objects.count() == 1


def test_it_manages_contributors(api, owner, profile):
    client = api(owner)
    response = client.post("/api/v1/namespaces/team-a/contributors",
                           {"email": "Dev@Example.com", "role": "edit"}, format="json")
    assert response.status_code == 201
    assert response.json()["email"] == "dev@example.com"
    listed = client.get("/api/v1/namespaces/team-a/contributors").json()
    assert {(c["email"], c["role"], c["is_owner"]) for c in listed} == {
        ("owner@example.com", "admin", True), ("dev@example.com", "edit", False)}
    assert client.delete("/api/v1/namespaces/team-a/contributors/dev@example.com").status_code \
        == 204
    assert profile.contributors.count() == 1


def test_it_explains_contributor_errors(api, owner, profile):
    client = api(owner)
    bad_role = client.post("/api/v1/namespaces/team-a/contributors",
                           {"email": "x@example.com", "role": "root"}, format="json")
    assert bad_role.status_code == 400 and "role" in bad_role.json()["message"]
    last_owner = client.delete("/api/v1/namespaces/team-a/contributors/owner@example.com")
    assert last_owner.status_code == 400 and "last owner" in last_owner.json()["message"]
    missing = client.delete("/api/v1/namespaces/team-a/contributors/nobody@example.com")
    assert missing.status_code == 404


def test_it_refuses_members_managing_contributors(api, member, viewer, profile):
    response = api(member).post("/api/v1/namespaces/team-a/contributors",
                                {"email": "x@example.com", "role": "view"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == 7


def test_it_refuses_admins_promoting_themselves(api, owner, member, profile):
    profile.set_contributor(member.email, "admin", owner)
    response = api(member).post("/api/v1/namespaces/team-a/contributors",
                                {"email": member.email, "role": "view"}, format="json")
    assert response.status_code == 400
    assert "your own role" in response.json()["message"]


def test_it_hides_foreign_namespaces(api, stranger, profile):
    client = api(stranger)
    for url in ["/api/v1/namespaces/team-a", "/api/v1/namespaces/team-a/contributors",
                "/api/v1/namespaces/team-a/activities"]:
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.json()["code"] == 5
    assert client.get("/api/v1/namespaces").json() == []


def test_it_pages_activity(api, owner, profile):
    for i in range(5):
        profile.record(owner, "note", f"note {i}")
    body = api(owner).get("/api/v1/namespaces/team-a/activities?limit=2").json()
    assert body["count"] == 6
    assert [a["message"] for a in body["results"]] == ["note 4", "note 3"]


def test_it_serves_an_openapi_schema(api, owner):
    response = api(owner).get("/api/schema", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json() if response["Content-Type"].startswith("application/json") else None
    if schema is None:
        import yaml

        schema = yaml.safe_load(response.content)
    assert "/api/v1/namespaces/{namespace}/contributors" in schema["paths"]


def openapi(client) -> dict:
    return client.get("/api/schema?format=json").json()


def test_its_schema_documents_the_201_of_adding_a_contributor(api, owner, profile):
    """Found by the API fuzz test: the schema said 200."""
    client = api(owner)
    response = client.post("/api/v1/namespaces/team-a/contributors",
                           {"email": "dev@example.com", "role": "edit"}, format="json")
    assert response.status_code == 201
    operation = openapi(client)["paths"]["/api/v1/namespaces/{namespace}/contributors"]["post"]
    assert "201" in operation["responses"] and "200" not in operation["responses"]


@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/api/v1/tokens/null,null"])
def test_it_answers_unknown_api_paths_with_a_json_404(api, owner, path):
    """Found by the API fuzz test: a token id that is no number got Django's HTML 404."""
    for client in (api(owner), APIClient()):
        for method in (client.get, client.post, client.delete):
            response = method(path)
            assert response.status_code == 404
            assert response.json() == {"error": f"No such API path: {path}", "code": 5,
                                       "message": f"No such API path: {path}", "details": []}


def test_it_serves_swagger_ui_from_local_assets(client, db):
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "https://" not in html  # nothing from a CDN: the product works offline
    asset = client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert asset.status_code == 200
