// The links the kfp SDK prints are the KFP UI's hash routes (<host>/#/runs/details/<id>).
// What follows "#" never reaches the server, so on any page such a fragment sends the
// browser to the server URL that finds the object and redirects to its page
// (pipelines/views/kfp_links.py), through the login page if need be.
const ID = "([0-9a-fA-F-]{32,36})";
const END = "/?(?:[?].*)?$";
const ROUTES = [
  [new RegExp(`^#/runs/details/${ID}${END}`), (run) => `/go/runs/${run}/`],
  [new RegExp(`^#/experiments/details/${ID}${END}`), (experiment) => `/go/experiments/${experiment}/`],
  [new RegExp(`^#/pipelines/details/${ID}/version/${ID}${END}`),
    (pipeline, version) => `/go/pipelines/${pipeline}/versions/${version}/`],
  [new RegExp(`^#/pipelines/details/${ID}${END}`), (pipeline) => `/go/pipelines/${pipeline}/`],
];

function follow() {
  for (const [pattern, target] of ROUTES) {
    const match = location.hash.match(pattern);
    if (match) {
      location.replace(target(...match.slice(1)));
      return;
    }
  }
}

follow();
window.addEventListener("hashchange", follow);
