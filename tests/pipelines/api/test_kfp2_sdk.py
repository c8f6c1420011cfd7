"""The real kfp 2.17 SDK, unchanged, against a live kfdash server."""

from __future__ import annotations

import json

from tests.kfp_sdks import ROOT, run_kfp2

SCRIPT = '''
import json
import sys

sys.path.insert(0, {root!r})

import kfp
from kfp import compiler
from kfp_server_api.exceptions import ApiException

from tests.pipelines.api.add_pipeline import add_pipeline

compiler.Compiler().compile(add_pipeline, "add.yaml")
client = kfp.Client(host={url!r}, existing_token={token!r})
out = {{}}

first = client.create_experiment("sdk-exp", description="from kfp 2")
again = client.create_experiment("sdk-exp")
out["same_experiment"] = first.experiment_id == again.experiment_id
out["namespace"] = first.namespace
out["by_name"] = client.get_experiment(experiment_name="sdk-exp").experiment_id == \\
    first.experiment_id
client.archive_experiment(first.experiment_id)
out["archived"] = client.get_experiment(experiment_id=first.experiment_id).storage_state
client.unarchive_experiment(first.experiment_id)
out["unarchived"] = client.get_experiment(experiment_id=first.experiment_id).storage_state
out["experiments"] = [e.display_name for e in client.list_experiments().experiments]
client.delete_experiment(first.experiment_id)
out["experiments_after"] = client.list_experiments().experiments

pipeline = client.upload_pipeline("add.yaml", pipeline_name="sdk-add", description="adds")
unnamed = client.upload_pipeline("add.yaml")
out["unnamed"] = unnamed.display_name
version = client.upload_pipeline_version("add.yaml", pipeline_version_name="second",
                                         pipeline_name="sdk-add")
out["version_of"] = version.pipeline_id == pipeline.pipeline_id
out["pipeline_id"] = client.get_pipeline_id("sdk-add") == pipeline.pipeline_id
out["missing_id"] = client.get_pipeline_id("nothing")
out["pipelines"] = sorted(p.display_name for p in client.list_pipelines().pipelines)
out["got"] = client.get_pipeline(pipeline.pipeline_id).description
versions = client.list_pipeline_versions(pipeline.pipeline_id, sort_by="created_at desc")
out["versions"] = [v.display_name for v in versions.pipeline_versions]
out["spec_name"] = versions.pipeline_versions[0].pipeline_spec["pipelineInfo"]["name"]
try:
    client.delete_pipeline(pipeline.pipeline_id)
except ApiException as exc:
    out["refused"] = [exc.status, json.loads(exc.body)["message"]]
for v in versions.pipeline_versions:
    client.delete_pipeline_version(pipeline.pipeline_id, v.pipeline_version_id)
client.delete_pipeline(pipeline.pipeline_id)
out["pipelines_after"] = [p.display_name for p in client.list_pipelines().pipelines]
print(json.dumps(out))
'''


def test_the_kfp2_client_works_unchanged(live_kfp):
    done = run_kfp2(SCRIPT.format(root=str(ROOT), url=live_kfp.url, token=live_kfp.token),
                    live_kfp.workdir, env=live_kfp.env)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == {
        "same_experiment": True, "namespace": "team-a", "by_name": True,
        "archived": "ARCHIVED", "unarchived": "AVAILABLE", "experiments": ["sdk-exp"],
        "experiments_after": [],
        "unnamed": "add-pipeline", "version_of": True, "pipeline_id": True,
        "missing_id": None, "pipelines": ["add-pipeline", "sdk-add"], "got": "adds",
        "versions": ["second", "sdk-add"], "spec_name": "add-pipeline",
        "refused": [400, "The pipeline sdk-add still has 2 version(s): delete them first, "
                         "or delete the pipeline with cascade=true."],
        "pipelines_after": ["add-pipeline"],
    }
