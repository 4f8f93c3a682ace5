// hezo console: countdowns, live parts of the page, and the buttons that call the API. No build step.
"use strict";

const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

function span(seconds) {
  const s = Math.abs(Math.round(seconds));
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d} d ${h} h`;
  if (h) return `${h} h ${m} min`;
  if (m >= 10) return `${m} min`;
  return `${m} min ${s % 60} s`;
}

// Each <time data-countdown> gets "in 12 min" or "overdue 3 min" beside it, kept up to date.
function countdowns() {
  const now = Date.now();
  for (const time of document.querySelectorAll("time[data-countdown]")) {
    let left = time.parentElement.querySelector(".left");
    if (!left) {
      left = document.createElement("span");
      left.className = "left";
      time.after(left);
    }
    const seconds = (Date.parse(time.dateTime) - now) / 1000;
    left.textContent = seconds < 0 ? `overdue ${span(seconds)}` : `in ${span(seconds)}`;
    left.classList.toggle("overdue", seconds < 0);
    left.classList.toggle("soon", seconds >= 0 && seconds < 900);
  }
}

// A part the user is typing in is left alone until the next change.
function busy(part) {
  if (part.contains(document.activeElement) && document.activeElement.matches("input, textarea, select")) {
    return true;
  }
  return [...part.querySelectorAll("input[type=text], textarea")].some((field) => field.value !== "");
}

// Fetch this page again and swap in each [data-live-part]; <details> the user opened stay open.
async function refresh() {
  const answer = await fetch(location.href, {headers: {Accept: "text/html"}, cache: "no-store"});
  if (!answer.ok) return;
  const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
  for (const part of document.querySelectorAll("[data-live-part]")) {
    const replacement = fresh.getElementById(part.id);
    if (!replacement || busy(part)) continue;
    const opened = new Set([...part.querySelectorAll("details[open][id]")].map((d) => d.id));
    part.replaceWith(replacement);
    for (const id of opened) {
      const again = document.getElementById(id);
      if (again) again.open = true;
    }
  }
  countdowns();
  document.dispatchEvent(new CustomEvent("hezo:refreshed"));
}

function live() {
  const state = document.querySelector(".live-state");
  if (!state || !window.EventSource) return;
  const source = new EventSource("/live");
  source.addEventListener("hello", () => { state.dataset.state = "live"; state.textContent = "live"; });
  source.addEventListener("change", () => refresh());
  source.onerror = () => { state.dataset.state = "lost"; state.textContent = "reconnecting"; };
}

async function send(url, body) {
  const answer = await fetch(url, {
    method: "POST",
    body: JSON.stringify(body),
    headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf()},
  });
  const found = await answer.json().catch(() => ({}));
  if (!answer.ok) throw new Error(found.detail || `${answer.status} ${answer.statusText}`);
  return found;
}

// <form data-api="/api/..."> posts its fields as JSON with the session's CSRF token.
document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!form.dataset.api) return;
  event.preventDefault();
  const problem = form.querySelector(".problem");
  const body = {};
  for (const [name, value] of new FormData(form)) {
    if (name === "csrf_token") continue;
    if (value !== "") body[name] = value;
  }
  for (const box of form.querySelectorAll("input[type=checkbox]")) body[box.name] = box.checked;
  try {
    const answer = await send(form.dataset.api, body);
    if (answer.page) {
      location.assign(answer.page);
      return;
    }
    form.reset();
    if (problem) problem.textContent = "";
    await refresh();
  } catch (error) {
    if (problem) problem.textContent = error.message;
  }
});

// <button data-command="collect-logs" data-device="site/agent/device" data-ticket="HZ-..."> with progress.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-command]");
  if (!button) return;
  const box = button.closest("[data-progress]");
  const bar = box.querySelector("progress");
  const status = box.querySelector(".status");
  const body = {action: button.dataset.command, device: button.dataset.device};
  if (button.dataset.ticket) body.ticket = button.dataset.ticket;
  if (body.action === "collect-logs") body.since = "2h";
  let sent;
  try {
    sent = await send("/api/commands", body);
  } catch (error) {
    status.textContent = error.message;
    return;
  }
  const poll = async () => {
    const command = await (await fetch(sent.status, {cache: "no-store"})).json();
    bar.value = command.status === "done" ? 1 : command.progress || 0;
    status.textContent = command.status + (command.message ? `: ${command.message}` : "");
    if (command.bundle) {
      const link = document.createElement("a");
      link.href = `/api/bundles/${command.bundle}/download`;
      link.textContent = " download";
      status.append(link);
    }
    if (!["done", "failed", "refused", "expired"].includes(command.status)) setTimeout(poll, 1000);
  };
  poll();
});

// <select data-fills>: the chosen option's data-serial and data-contract go into the [data-from] fields.
document.addEventListener("change", (event) => {
  const select = event.target.closest("select[data-fills]");
  if (!select) return;
  const option = select.selectedOptions[0];
  for (const field of select.form.querySelectorAll("[data-from]")) {
    field.value = (option && option.dataset[field.dataset.from]) || "";
  }
});

countdowns();
setInterval(countdowns, 1000);
live();
