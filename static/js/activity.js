// The namespace home page's activity feed: new lines arrive over a websocket.
import { subscribe } from "./live.js";

const feed = document.querySelector("[data-live-feed]");
const empty = document.querySelector("[data-feed-empty]");

function prepend(event) {
  if (feed.querySelector(`[data-id="${event.id}"]`)) return;
  const newest = feed.querySelector("[data-id]");
  if (newest && Number(newest.dataset.id) > event.id) return; // older than what is shown
  const item = document.createElement("li");
  item.className = "feed-item feed-new";
  item.dataset.id = event.id;
  const text = document.createElement("span");
  text.className = "feed-message";
  text.textContent = event.message;
  const time = document.createElement("time");
  time.dateTime = event.created_at;
  time.textContent = "just now";
  item.append(text, time);
  feed.prepend(item);
  if (empty) empty.hidden = true;
}

// After (re)connecting, fetch the latest lines once: anything that happened between
// the page load (or a dropped connection) and the subscription is filled in.
async function catchUp() {
  const ns = encodeURIComponent(feed.dataset.liveFeed);
  const response = await fetch(`/api/v1/namespaces/${ns}/activities?limit=20`,
    { headers: { Accept: "application/json" } });
  if (!response.ok) return;
  const page = await response.json();
  for (const event of page.results.reverse()) prepend(event);
}

if (feed) {
  subscribe(`/ws/ns/${encodeURIComponent(feed.dataset.liveFeed)}/activity/`, (event) => {
    if (event.type === "activity") prepend(event);
  }, { onOpen: catchUp });
}
