"""Pipelines and experiments in the browser: upload a compiled pipeline through the page,
see its graph drawn (cytoscape laid out by ELK), open a task's details, then create and
archive an experiment. A 50-task pipeline with a loop, a condition and an exit handler is
drawn readably and its groups collapse and expand."""

from __future__ import annotations

from playwright.sync_api import Page, expect

ANA = "ana@example.com"
NS = "ana-lab"


def upload(page: Page, server, package: bytes, filename: str) -> None:
    page.goto(f"{server.url}/ns/{NS}/pipelines/")
    page.get_by_role("link", name="Upload pipeline").click()
    page.get_by_label("Pipeline file").set_input_files(
        {"name": filename, "mimeType": "application/yaml", "buffer": package})
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("[data-pipeline-graph][data-ready='true']")).to_be_attached(
        timeout=30_000)


def click_node(page: Page, node_id: str) -> None:
    """Click a node on the canvas where cytoscape drew it: a task in its middle, a group
    on its label (its middle may be one of its tasks)."""
    spot = page.evaluate("""(id) => {
        const node = window.pipelineGraph.getElementById(id);
        const box = window.pipelineGraph.container().getBoundingClientRect();
        const at = node.renderedBoundingBox({includeLabels: false});
        const y = node.hasClass("box") ? at.y1 + 8 : (at.y1 + at.y2) / 2;
        return {x: box.left + (at.x1 + at.x2) / 2, y: box.top + y};
    }""", node_id)
    page.mouse.click(spot["x"], spot["y"])


def test_it_uploads_draws_and_explains_a_pipeline_then_archives_an_experiment(
        server, new_page, create_users, log_in, tmp_path):
    from tests.pipelines.pages.sample_pipelines import compiled

    create_users((ANA, "--namespace", NS))
    page = new_page()
    log_in(page, ANA)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Pipelines").click()
    expect(page.get_by_text("No pipelines here yet.")).to_be_visible()

    # A file that is no pipeline is refused on its field.
    page.get_by_role("link", name="Upload pipeline").click()
    page.get_by_label("Pipeline file").set_input_files(
        {"name": "notes.yaml", "mimeType": "application/yaml", "buffer": b"just: notes\n"})
    page.get_by_role("button", name="Upload").click()
    expect(page.locator(".field-error")).to_contain_text("neither a KFP v2 pipeline")

    upload(page, server, compiled("hello_pipeline", tmp_path), "hello.yaml")
    expect(page.get_by_role("heading", name="hello-pipeline", exact=True)).to_be_visible()
    # 5 tasks and 2 groups (a condition and a loop), every one a node on the canvas.
    assert page.evaluate("window.pipelineGraph.nodes('.task').length") == 5
    assert page.evaluate("window.pipelineGraph.nodes('.box').length") == 2
    assert page.evaluate("window.pipelineGraph.edges().length") >= 3
    expect(page.locator("[data-task-table]")).not_to_have_attribute("open", "")

    click_node(page, "train")
    panel = page.locator("[data-graph-panel]")
    expect(panel).to_be_visible()
    expect(panel.locator("h3")).to_have_text("train")
    expect(panel).to_contain_text("python:3.11")
    expect(panel).to_contain_text("load-data.data")  # where its input comes from
    expect(panel).to_contain_text("system.Model")  # its output
    panel.get_by_role("button", name="Close").click()
    expect(panel).to_be_hidden()

    # A group collapses into one node from its panel.
    click_node(page, "for-loop-3")
    panel.get_by_role("button", name="Collapse group").click()
    expect(page.locator("[data-pipeline-graph]")).to_have_attribute("data-nodes", "6")
    assert page.evaluate("window.pipelineGraph.nodes('.collapsed').length") == 1

    # Experiments: create one, archive it, find it under Archived.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Experiments").click()
    page.get_by_role("link", name="New experiment").click()
    page.get_by_label("Name", exact=True).fill("tuning")
    page.get_by_label("Description").fill("learning rates")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name="tuning")).to_be_visible()
    page.get_by_role("button", name="Archive").click()
    expect(page.get_by_text("The experiment tuning is archived.")).to_be_visible()
    page.get_by_role("link", name="Experiments", exact=True).first.click()
    expect(page.locator("tr[data-experiment='tuning']")).to_have_count(0)
    page.get_by_role("link", name="Archived").click()
    expect(page.locator("tr[data-experiment='tuning']")).to_be_visible()


def test_it_draws_a_fifty_task_pipeline_readably(server, new_page, create_users, log_in,
                                                  tmp_path):
    from tests.pipelines.pages.sample_pipelines import compiled

    create_users((ANA, "--namespace", NS))
    page = new_page(viewport={"width": 1440, "height": 1000})
    log_in(page, ANA)
    upload(page, server, compiled("big_pipeline", tmp_path), "big.yaml")
    assert page.evaluate("window.pipelineGraph.nodes('.task').length") == 50
    labels = page.evaluate("window.pipelineGraph.nodes('.box').map((n) => n.data('label'))")
    assert "for each in [0.1, 0.01, 0.001, … 1 more] (2 at a time)" in labels
    assert "good-enough: if evaluate-final.Output > 0.8" in labels
    # No two task nodes overlap.
    overlaps = page.evaluate("""() => {
        const boxes = window.pipelineGraph.nodes('.task').map((n) => n.boundingBox());
        let count = 0;
        for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
            const a = boxes[i], b = boxes[j];
            if (a.x1 < b.x2 && b.x1 < a.x2 && a.y1 < b.y2 && b.y1 < a.y2) count++;
        }
        return count;
    }""")
    assert overlaps == 0
    page.get_by_role("button", name="Fit").click()
    page.wait_for_timeout(400)
    page.screenshot(path=tmp_path / "big-pipeline.png", full_page=False)
    click_node(page, "train-2")
    expect(page.locator("[data-graph-panel]")).to_contain_text("train-final")
    page.screenshot(path=tmp_path / "big-pipeline-panel.png", full_page=False)
    page.get_by_role("button", name="Collapse all").click()
    expect(page.locator("[data-pipeline-graph]")).to_have_attribute("data-nodes", "2")
    page.get_by_role("button", name="Expand all").click()
    expect(page.locator("[data-pipeline-graph]")).to_have_attribute("data-nodes", "55")
