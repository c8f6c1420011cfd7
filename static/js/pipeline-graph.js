// Pipeline details: the graph of a version (drawn by graph-view.js, shared with the run
// page). Clicking a task shows its component, container, inputs and outputs beside the
// graph; the same tasks are in the table below, which is all a browser without JavaScript
// gets.
import { graphElements, mountGraph } from "./graph-view.js";

const parts = graphElements();
const source = document.getElementById("pipeline-graph-data");

if (parts.root && parts.panel && source) mountGraph(parts, JSON.parse(source.textContent));
