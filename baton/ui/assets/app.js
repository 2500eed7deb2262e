// baton ui: a bar's click shows its invocation; a page whose run is in progress reloads itself.
"use strict";

function text(tag, value, cls) {
  const node = document.createElement(tag);
  node.textContent = value;
  if (cls) node.className = cls;
  return node;
}

function field(list, name, value) {
  if (value === null || value === undefined || value === "") return;
  list.appendChild(text("dt", name));
  const dd = document.createElement("dd");
  dd.appendChild(typeof value === "object" ? text("pre", JSON.stringify(value, null, 2)) : text("span", String(value)));
  list.appendChild(dd);
}

async function showBar(rect) {
  const timeline = document.getElementById("timeline");
  const panel = document.getElementById("detail");
  const body = document.getElementById("detail-body");
  document.querySelectorAll("rect.bar.selected").forEach((r) => r.classList.remove("selected"));
  rect.classList.add("selected");
  panel.hidden = false;
  body.replaceChildren(text("p", "loading…"));
  const run = encodeURIComponent(timeline.dataset.run);
  const answer = await fetch(`/runs/${run}/bars/${rect.dataset.bar}`);
  if (!answer.ok) {
    body.replaceChildren(text("p", `could not load the invocation: ${answer.status}`, "error"));
    return;
  }
  const bar = await answer.json();
  const list = document.createElement("dl");
  list.className = "facts";
  field(list, "URL", bar.url);
  field(list, "step", bar.step);
  field(list, "attempt", bar.attempts > 1 ? `${bar.attempt}–${bar.attempt + bar.attempts - 1} (one recorded span)` : bar.attempt);
  field(list, "outcome", bar.outcome);
  field(list, "duration", `${bar.duration_ms} ms`);
  field(list, "started", bar.started_at);
  field(list, "error type", bar.error_type);
  field(list, "error", bar.error);
  field(list, "input", bar.input);
  field(list, "output", bar.output);
  const stored = document.createElement("p");
  for (const key of objectKeys([bar.input, bar.output])) {
    const link = text("a", key);
    link.href = `/objects?key=${encodeURIComponent(key)}`;
    link.target = "_blank";
    stored.append(link, " ");
  }
  if (stored.childElementCount) list.append(text("dt", "stored objects"), stored);
  const logs = text("pre", bar.logs.length ? bar.logs.join("\n") : "(no log lines found for this invocation)", "logs");
  body.replaceChildren(list, text("h3", "CloudWatch log lines"), logs);
  panel.scrollIntoView({ block: "nearest" });
}

// Pages and texts travel by S3 key (raw_key, text_key): each becomes a link to the object.
function objectKeys(values, found = new Set()) {
  for (const value of values) {
    if (!value || typeof value !== "object") continue;
    for (const [name, inner] of Object.entries(value)) {
      if (name.endsWith("_key") && typeof inner === "string") found.add(inner);
      else objectKeys([inner], found);
    }
  }
  return found;
}

document.addEventListener("click", (event) => {
  const rect = event.target.closest && event.target.closest("rect.bar");
  if (rect) showBar(rect);
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && event.target.matches && event.target.matches("rect.bar")) showBar(event.target);
});

if (document.body.dataset.refresh) {
  setTimeout(() => window.location.reload(), 2000);
}
