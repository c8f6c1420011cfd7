"""The sandboxed endpoint of HTML outputs: who may open it, what it serves, and the headers
that keep the page from acting as the person looking at it."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

CSP = ("sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline'; "
       "style-src 'unsafe-inline'; img-src data: blob:; font-src data:; connect-src 'none'; "
       "form-action 'none'; frame-ancestors 'self'; base-uri 'none'")
PAGE = "<html><body><h1>Report</h1><script>document.title = 'x'</script></body></html>"


@pytest.fixture
def outputs(v1_run, add_task, add_artifact):
    step = add_task(v1_run, "step")
    return {
        "page": add_artifact(step, "page", PAGE, type="system.HTML"),
        "site": add_artifact(step, "site", {"index.html": "<p>site</p>", "x.js": "1"},
                             folder=True, type="system.HTML"),
        "pages": add_artifact(step, "step-pages", {"index.html": "<p>declared</p>"},
                              folder=True),
        "ui": add_artifact(step, "mlpipeline-ui-metadata", {"outputs": [
            {"type": "markdown", "storage": "inline", "source": "# no"},
            {"type": "web-app", "storage": "inline", "source": "<p>inline app</p>"},
            {"type": "web-app", "source": "/tmp/outputs/pages/index.html"},
            {"type": "web-app", "source": "gs://bucket/app.html"}]}),
        "metrics": add_artifact(step, "metrics", "", type="system.Metrics",
                                metadata={"acc": 1}),
        "data": add_artifact(step, "data", "<p>not a page</p>", type="system.Dataset"),
    }


def url(artifact, index=0, run_id=None):
    return reverse("run-output-html", args=["team-a", run_id or artifact.run_id, artifact.pk,
                                            index])


def body(response) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return content.decode()


def test_it_serves_an_html_file_with_the_sandbox_headers(login, viewer, outputs):
    response = login(viewer).get(url(outputs["page"]))
    assert response.status_code == 200 and body(response) == PAGE
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["Content-Security-Policy"] == CSP
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["Cache-Control"] == "private, no-cache"
    assert response["X-Frame-Options"] == "SAMEORIGIN"  # kfdash's own pages may frame it
    assert response.streaming  # a file is streamed, never read whole


def test_it_serves_the_index_of_an_html_folder(login, viewer, outputs):
    response = login(viewer).get(url(outputs["site"]))
    assert response.status_code == 200 and body(response) == "<p>site</p>"
    assert response["Content-Security-Policy"] == CSP


def test_it_serves_v1_web_apps_inline_and_from_a_declared_file(login, viewer, outputs):
    client = login(viewer)
    inline = client.get(url(outputs["ui"], 1))
    assert inline.status_code == 200 and body(inline) == "<p>inline app</p>"
    assert inline["Content-Security-Policy"] == CSP
    assert inline["Content-Type"] == "text/html; charset=utf-8"
    from_file = client.get(url(outputs["ui"], 2))
    assert from_file.status_code == 200 and body(from_file) == "<p>declared</p>"


@pytest.mark.parametrize(("name", "index"), [
    ("ui", 0),  # a markdown output
    ("ui", 3),  # a web-app in a bucket
    ("ui", 99), ("page", 1), ("metrics", 0), ("data", 0),
    ("pages", 0),  # a plain folder artifact, though it has an index.html
])
def test_anything_else_is_404(login, viewer, outputs, name, index):
    assert login(viewer).get(url(outputs[name], index)).status_code == 404


def test_an_artifact_of_another_run_is_404(login, owner, outputs, v1_run):
    from pipelines.models import Run

    other = Run.objects.create(profile=v1_run.profile, experiment=v1_run.experiment,
                               name="other", format="kfp-v2", document={}, graph={},
                               state="SUCCEEDED", created_by=owner)
    assert login(owner).get(url(outputs["page"], run_id=other.pk)).status_code == 404


def test_strangers_get_404_and_anonymous_callers_the_login_page(client, login, stranger,
                                                                outputs):
    response = client.get(url(outputs["page"]))
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert login(stranger).get(url(outputs["page"])).status_code == 404


def test_it_only_answers_reads(login, member, outputs):
    assert login(member).post(url(outputs["page"])).status_code == 405
