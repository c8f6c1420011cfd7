"""The "Create run" page: from a pipeline version, from a file, or as a clone of a run; one
typed input per parameter; errors next to their inputs and nothing created on error."""

# No ``from __future__ import annotations``: kfp reads the component signatures' types.
import re
from pathlib import Path

import pytest
from kfp import compiler, dsl

from pipelines.models import Experiment, Pipeline, Run
from pipelines.specs import load
from tests.pipelines.pages.conftest import package_file
from tests.pipelines.pages.run_factory import make_run

NEW = "/ns/team-a/runs/new/"


@dsl.component(base_image="python:3.11")
def show(count: int, flag: bool, items: list, config: dict, label: str):
    print(count, flag, items, config, label)


@dsl.pipeline(name="typed-pipeline")
def typed_pipeline(count: int, flag: bool = True, items: list = [1, 2],  # noqa: B006
                   config: dict = {"a": 1}, label: str = "x"):  # noqa: B006
    """Every parameter type.

    Args:
        count: How many times; no default.
        flag: Whether to.
    """
    show(count=count, flag=flag, items=items, config=config, label=label)


@pytest.fixture(scope="session")
def typed_package(tmp_path_factory) -> bytes:
    out = Path(tmp_path_factory.mktemp("typed")) / "typed.yaml"
    compiler.Compiler().compile(typed_pipeline, str(out))
    return out.read_bytes()


@pytest.fixture
def typed(owner, profile, typed_package):
    """``typed-pipeline`` in team-a: its first version."""
    return Pipeline.upload(profile, "typed-pipeline", load(typed_package), owner)


def form_of(version) -> str:
    return f"{NEW}?pipeline={version.pipeline_id}&version={version.pk}"


def post_values(chosen, **values) -> dict[str, str]:
    """What the page posts for ``chosen`` (a version): its inputs, then ``values``."""
    data = {"source": "version", "pipeline": str(chosen.pipeline_id),
            "version": str(chosen.pk), "parameters_of": f"version:{chosen.pk}",
            "name": "my run", "description": "", "experiment": "", "caching": "on"}
    for name, value in values.items():
        key = name if name in data else f"parameter-{name}"
        data[key] = value
    return data


def test_it_shows_one_typed_input_per_parameter_with_its_default(login, member, typed):
    page = login(member).get(form_of(typed))
    assert page.status_code == 200
    html = page.content.decode()
    # Labels say the type; defaults are filled in as text; descriptions are help texts.
    assert re.search(r'<code>count</code> <span class="badge">integer</span> '
                     r'<span class="muted">needs a value</span>', html)
    assert 'name="parameter-count" value=""' not in html  # no default: empty
    assert "How many times; no default." in html
    assert re.search(r'<select name="parameter-flag"[^>]*>\s*<option value="true" selected>',
                     html)
    # (The IR keeps JSON numbers as doubles: kfp compiled [1, 2] as [1.0, 2.0].)
    assert re.search(r'<textarea name="parameter-items"[^>]*>\n\[1.0, 2.0\]</textarea>', html)
    assert re.search(
        r'<textarea name="parameter-config"[^>]*>\n\{&quot;a&quot;: 1.0\}</textarea>', html)
    assert 'name="parameter-label" value="x"' in html
    # The name defaults to the pipeline's and the time; the experiment to Default.
    name = page.context["form"].initial["name"]
    assert re.fullmatch(r"typed-pipeline \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", name)
    assert '<option value="" selected>Default</option>' in html
    assert 'name="caching"' in html and "checked" in html


@pytest.mark.parametrize("who", ["owner", "member"])
def test_it_starts_a_run_and_goes_to_its_page(request, login, who, profile, typed):
    user = request.getfixturevalue(who)
    response = login(user).post(form_of(typed), post_values(
        typed, count=" 7 ", flag="false", items="[3, 4]", config='{"b": [1]}', label="",
        caching=""))  # an empty input means the default, when there is one
    run = Run.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/ns/team-a/runs/{run.pk}/"
    assert run.parameters == {"count": 7, "flag": False, "items": [3, 4],
                              "config": {"b": [1]}, "label": "x"}
    assert (run.name, run.pipeline_version, run.created_by) == ("my run", typed, user)
    assert run.experiment.name == "Default"  # created on first use
    assert run.caching is False  # unchecked: off for every step


def test_it_keeps_caching_as_compiled_and_uses_the_chosen_experiment(login, member, profile,
                                                                     typed, owner):
    tuning = Experiment.create(profile, "tuning", owner)
    old = Experiment.create(profile, "old", owner)
    old.archive(owner)
    client = login(member)
    html = client.get(form_of(typed)).content.decode()
    assert f'<option value="{tuning.pk}">tuning</option>' in html
    assert f'value="{old.pk}"' not in html  # archived experiments take no runs
    client.post(form_of(typed), post_values(typed, count="1", experiment=str(tuning.pk),
                                            name=""))
    run = Run.objects.get()
    assert run.experiment == tuning and run.caching is None
    assert re.fullmatch(r"typed-pipeline \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", run.name)


def test_it_shows_errors_next_to_their_inputs_and_creates_nothing(login, member, typed):
    client = login(member)
    response = client.post(form_of(typed), post_values(
        typed, count="", flag="maybe", items="[1,", config="[]", nope="1"))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors["parameter-count"] == ["The parameter 'count' needs a value."]
    assert errors["parameter-flag"] == [  # one error per input, the first found
        "Select a valid choice. maybe is not one of the available choices."]
    assert errors["parameter-items"] == ["'items' must be a JSON list (this is not valid JSON)."]
    assert errors["parameter-config"] == ["'config' must be a JSON object."]
    # A parameter the pipeline does not have has no input: the error is above the form.
    assert errors["__all__"] == [
        "The pipeline has no parameter 'nope' (its parameters: config, count, flag, items, "
        "label)."]
    html = response.content.decode()
    assert html.count('class="field-error"') == 4 and 'class="form-error"' in html
    assert 'name="parameter-items"' in html and "[1,</textarea>" in html  # what was typed
    response = client.post(form_of(typed), post_values(typed, count="2.5"))
    assert response.context["form"].errors == {
        "parameter-count": ["'count' must be an integer, not 2.5."]}
    assert not Run.objects.exists() and not Experiment.objects.exists()


def test_it_refuses_a_bad_name_and_an_unknown_experiment(login, member, typed):
    client = login(member)
    response = client.post(form_of(typed), post_values(typed, count="1", name="a\x07b"))
    assert response.context["form"].errors["name"] == [
        "A run name can't contain control characters."]
    response = client.post(form_of(typed), post_values(
        typed, count="1", experiment="00000000-0000-4000-8000-000000000000"))
    assert "experiment" in response.context["form"].errors
    assert not Run.objects.exists()


def test_it_shows_another_versions_parameters_before_starting(login, member, typed,
                                                              hello_package, owner):
    """Without JavaScript, changing the version and pressing Start shows that version's
    parameters first: values typed for one pipeline never start another."""
    hello = typed.pipeline.add_version(load(hello_package), owner, "v2")
    client = login(member)
    data = post_values(typed, count="5", version=str(hello.pk))
    response = client.post(form_of(typed), data)
    form = response.context["form"]
    assert response.status_code == 200 and form.reviewing and not Run.objects.exists()
    assert form.parameter_names == ["lr", "rows", "target"]
    html = response.content.decode()
    assert "Check the parameters of typed-pipeline, then press Start." in html
    assert f'name="parameters_of" value="version:{hello.pk}"' in html
    assert 'name="parameter-rows" value="100"' in html and "parameter-count" not in html
    # Start again: the run starts with the new version's inputs.
    data = post_values(hello, rows="7")
    data["pipeline"] = str(typed.pipeline_id)
    client.post(form_of(typed), data)
    assert Run.objects.get().parameters == {"rows": 7, "lr": 0.1, "target": "prod"}


def test_it_refreshes_for_another_pipeline_without_starting(login, member, typed, stored):
    """What run-form.js posts when the pipeline select changes: the new pipeline's default
    version and parameters, the other fields as typed."""
    data = post_values(typed, count="5", pipeline=str(stored.pipeline_id),
                       description="kept", refresh="1")
    data["parameters_of"] = f"version:{typed.pk}"
    response = login(member).post(form_of(typed), data)
    form = response.context["form"]
    assert form.reviewing and form.chosen_version == stored and not form.errors
    assert form["version"].value() == str(stored.pk)
    assert form["description"].value() == "kept"
    assert form.parameter_names == ["lr", "rows", "target"]
    assert not Run.objects.exists()


def test_it_starts_a_run_from_a_file_in_two_steps(login, member, typed_package):
    """A chosen file is read, its parameters shown (the file carried in the form), then
    the run starts from it; no pipeline is stored."""
    client = login(member)
    response = client.post(NEW, {
        "source": "file", "package": package_file(typed_package, "typed.yaml"),
        "name": "", "experiment": "", "caching": "on"})
    form = response.context["form"]
    assert form.reviewing and form.parameter_names == [
        "config", "count", "flag", "items", "label"]
    assert not Run.objects.exists()
    carried = form["package_data"].value()
    assert carried and "Using the file chosen before (typed-pipeline)" in \
        response.content.decode()
    fields = {"source": "file", "package_data": carried,
              "parameters_of": form["parameters_of"].value(), "name": form["name"].value(),
              "experiment": "", "caching": "on", "parameter-count": "3"}
    response = client.post(NEW, fields)
    run = Run.objects.get()
    assert response["Location"] == f"/ns/team-a/runs/{run.pk}/"
    assert run.pipeline is None and run.pipeline_version is None
    assert run.spec.name == "typed-pipeline" and run.parameters["count"] == 3
    assert run.name.startswith("typed-pipeline ")
    assert not Pipeline.objects.exists()


def test_it_asks_for_a_file_too_large_to_carry_again(login, member, typed_package,
                                                      monkeypatch):
    monkeypatch.setattr("pipelines.run_forms.CARRY_MAX", 100)
    client = login(member)
    response = client.post(NEW, {"source": "file", "caching": "on",
                                 "package": package_file(typed_package, "typed.yaml")})
    form = response.context["form"]
    assert form.reviewing and not form["package_data"].value()
    assert "too large to keep between two steps: choose it again" in \
        response.content.decode()
    response = client.post(NEW, {
        "source": "file", "caching": "on", "parameters_of": form["parameters_of"].value(),
        "package": package_file(typed_package, "typed.yaml"), "parameter-count": "1"})
    assert response.status_code == 302 and Run.objects.get().parameters["count"] == 1


def test_it_refuses_a_file_that_is_no_pipeline(login, member):
    client = login(member)
    response = client.post(NEW, {"source": "file", "caching": "on",
                                 "package": package_file(b"just: notes\n", "notes.yaml")})
    assert "neither a KFP v2 pipeline" in response.context["form"].errors["package"][0]
    response = client.post(NEW, {"source": "file", "caching": "on", "parameters_of": ""})
    assert response.context["form"].errors["package"] == ["Choose a pipeline file."]
    response = client.post(NEW, {"source": "version", "caching": "on"})
    assert response.context["form"].errors["pipeline"] == ["Choose a pipeline."]
    assert not Run.objects.exists()


def test_it_clones_a_run_of_a_stored_version(login, member, owner, profile, typed):
    tuning = Experiment.create(profile, "tuning", owner)
    run = make_run(profile, "first", experiment=tuning, version=typed, parameters={
        "count": 4, "flag": False, "items": [9], "config": {}, "label": "é"})
    run.caching = False
    run.save()
    page = login(member).get(f"{NEW}?clone={run.pk}")
    form = page.context["form"]
    assert page.status_code == 200 and b"Clone of first" in page.content
    assert form.chosen_version == typed
    assert {name: form[f"parameter-{name}"].value() for name in form.parameter_names} == {
        "count": "4", "flag": "false", "items": "[9]", "config": "{}", "label": "é"}
    assert form["experiment"].value() == str(tuning.pk)
    assert form["caching"].value() is False and form["name"].value() == "Clone of first"


def test_it_clones_a_run_whose_version_is_gone_from_its_own_copy(login, member, owner,
                                                                 profile, typed):
    original = Run.start(profile, owner, name="first", version=typed,
                         parameters={"count": 2})
    typed.pipeline.remove(owner)
    original.refresh_from_db()
    client = login(member)
    page = client.get(f"{NEW}?clone={original.pk}")
    form = page.context["form"]
    assert form["source"].value() == "run" and form.parameter_names
    assert "The pipeline as run in first" in page.content.decode()
    data = {"source": "run", "parameters_of": f"run:{original.pk}", "name": "again",
            "experiment": "", "caching": "on", "parameter-count": "8"}
    response = client.post(f"{NEW}?clone={original.pk}", data)
    clone = Run.objects.get(name="again")
    assert response["Location"] == f"/ns/team-a/runs/{clone.pk}/"
    assert clone.parameters["count"] == 8 and clone.document == original.document
    assert clone.pipeline is None


def test_it_offers_create_run_on_the_pipeline_page_to_editors(login, owner, member, viewer,
                                                              stored):
    url = f"/ns/team-a/pipelines/{stored.pipeline_id}/"
    link = f'href="{NEW}?pipeline={stored.pipeline_id}&amp;version={stored.pk}">Create run'
    for user, shown in ((owner, True), (member, True), (viewer, False)):
        assert (link in login(user).get(url).content.decode()) == shown, user


def test_it_lets_editors_run_shared_pipelines(login, member, profile, cluster_admin,
                                              hello_package):
    shared = Pipeline.upload(None, "everyones", load(hello_package), cluster_admin)
    response = login(member).post(form_of(shared), post_values(shared))
    assert response.status_code == 302
    assert Run.objects.get().pipeline_version == shared


def test_it_refuses_viewers(login, viewer, typed):
    client = login(viewer)
    assert client.get(form_of(typed)).status_code == 403
    assert client.post(form_of(typed), post_values(typed, count="1")).status_code == 403
    assert not Run.objects.exists()


def test_it_hides_the_page_and_foreign_objects(login, stranger, member, make_user, typed,
                                              hello_package):
    assert login(stranger).get(form_of(typed)).status_code == 404
    assert login(stranger).post(NEW, post_values(typed, count="1")).status_code == 404
    from dashboard.models import Profile

    other = make_user("other@example.com")
    team_b = Profile.register("team-b", other)
    theirs = Pipeline.upload(team_b, "theirs", load(hello_package), other)
    their_run = make_run(team_b, "theirs", version=theirs)
    their_experiment = Experiment.create(team_b, "theirs", other)
    client = login(member)
    for query in (f"pipeline={theirs.pipeline_id}", f"clone={their_run.pk}",
                  f"experiment={their_experiment.pk}", "pipeline=not-a-uuid",
                  f"pipeline={typed.pipeline_id}&version={theirs.pk}"):
        assert client.get(f"{NEW}?{query}").status_code == 404, query
    # A foreign version posted by hand is not a choice of this form.
    response = client.post(NEW, post_values(typed, count="1", pipeline=str(theirs.pipeline_id),
                                            version=str(theirs.pk)))
    assert response.context["form"].errors["pipeline"] == [
        "There is no such pipeline in this namespace."]
    assert not Run.objects.filter(profile__name="team-a").exists()
