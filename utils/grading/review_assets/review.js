// The review page (utils/grading/review.py): written answers scored question by question, keyboard first.
// Student text only ever reaches the page through textContent and input values, never as HTML.
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";
const view = { data: null, question: 0, position: {}, anonymous: true, list: false, editing: null };
let queue = Promise.resolve();
let focusAfter = null;

const $ = (id) => document.getElementById(id);
const fmt = (x) => (x === null || x === undefined ? "–" : String(Math.round(x * 10000) / 10000));
const signed = (x) => (x >= 0 ? "+" : "−") + fmt(Math.abs(x));

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else if (value !== false && value !== null && value !== undefined) node.setAttribute(key, String(value));
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function question() { return view.data.questions[view.question]; }
function current() {
  const q = question();
  const at = Math.min(view.position[q.id] || 0, Math.max(q.groups.length - 1, 0));
  view.position[q.id] = at;
  return at;
}

function say(text, problem = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("problem", problem);
}

async function load() {
  const response = await fetch(`api/state?token=${encodeURIComponent(token)}`);
  if (!response.ok) { say(`Could not load the answers: ${response.status} ${await response.text()}`, true); return; }
  view.data = await response.json();
  render();
}

function post(path, body) {
  // Saves run one after another, in the order they were made: the last one wins, as the person expects.
  queue = queue.then(async () => {
    say("Saving…");
    try {
      const response = await fetch(`${path}?token=${encodeURIComponent(token)}`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      const text = await response.text();
      if (!response.ok) {
        let message = text;
        try { message = JSON.parse(text).error || text; } catch (error) { /* plain text */ }
        say(`Not saved: ${message}`, true);
        return;
      }
      view.data = JSON.parse(text);
      say(`Saved at ${new Date().toLocaleTimeString()}.`);
      render();
    } catch (error) {
      say(`Not saved (is the review command still running?): ${error}`, true);
    }
  });
  return queue;
}

function saveGroup(index, change) {
  const q = question();
  return post("api/score", { question: q.id, members: q.groups[index].members, ...change });
}

function parseScore(text) {
  const value = text.trim().replace(",", ".");
  if (value === "") return null;
  const number = Number(value);
  return Number.isFinite(number) ? number : undefined;
}

function toggleItem(index, itemId) {
  const group = question().groups[index];
  const items = group.items.includes(itemId) ? group.items.filter((i) => i !== itemId) : [...group.items, itemId];
  return saveGroup(index, { items });
}

function move(step) {
  const q = question();
  if (!q.groups.length) return;
  view.position[q.id] = Math.min(Math.max(current() + step, 0), q.groups.length - 1);
  render();
}

function nextUnscored() {
  const q = question();
  const n = q.groups.length;
  for (let step = 1; step <= n; step++) {
    const index = (current() + step) % n;
    if (q.groups[index].score === null) { view.position[q.id] = index; render(); return; }
  }
  say("Every answer to this question is scored.");
}

function card(group, index, q) {
  const total = q.groups.length;
  const isCurrent = index === current();
  const heading = el("h3", { id: `answer-${index}`, text: `Answer ${index + 1} of ${total}` });
  if (group.members.length > 1) {
    const together = `${group.members.length} identical answers, scored together`;
    heading.append(" ", el("span", { class: "badge", text: together }));
  }
  const names = view.anonymous
    ? `${group.members.length} submission${group.members.length > 1 ? "s" : ""}, names hidden`
    : `Submission${group.members.length > 1 ? "s" : ""}: ${group.members.join(", ")}`;
  const near = group.near.length
    ? el("p", { class: "near", text: `Nearly the same as answer ${group.near.map((i) => i + 1).join(", ")}` }) : null;
  const points = Object.fromEntries(q.rubric.map((item) => [item.id, item.points]));
  const used = group.items.filter((id) => id in points);
  let detail = "";
  if (used.length) {
    const sum = used.reduce((s, id) => s + points[id], 0);
    detail = `typed ${fmt(group.base === null ? 0 : group.base)}, items ${signed(sum)}`;
  }
  const clamped = group.raw !== null && group.score !== null && Math.abs(group.raw - group.score) > 1e-9;
  const typed = group.base !== null && group.base !== undefined ? group.base : used.length ? null : group.score;
  const scoreBox = el("div", { class: "score-row" }, [
    el("label", { for: `score-${index}`, text: "Score" }),
    el("input", {
      id: `score-${index}`, type: "text", inputmode: "decimal", autocomplete: "off", size: 6,
      value: typed === null || typed === undefined ? "" : fmt(typed),
      "aria-describedby": `total-${index}`,
    }),
    el("output", { id: `total-${index}`, class: group.score === null ? "unscored" : "scored" }, [
      group.mixed ? "different scores: a score typed here replaces them all"
        : group.score === null ? `not scored (out of ${fmt(q.points)})` : `${fmt(group.score)} / ${fmt(q.points)}`,
      detail ? ` (${detail})` : "",
      clamped ? el("strong", { class: "clamp", text: ` clamped from ${fmt(group.raw)} to ${fmt(group.score)}` }) : null,
    ]),
  ]);
  const items = el("ul", { class: "items", "aria-label": "Rubric items" }, q.rubric.map((item, n) => el("li", {}, [
    el("input", {
      type: "checkbox", id: `item-${index}-${item.id}`, checked: group.items.includes(item.id),
      onchange: () => toggleItem(index, item.id),
    }),
    el("label", { for: `item-${index}-${item.id}`, text: `${n + 1}. ${item.text} (${signed(item.points)})` }),
  ])));
  const note = el("textarea", {
    id: `note-${index}`, rows: 2, onchange: (event) => saveGroup(index, { comment: event.target.value }),
  });
  note.value = group.comment;
  return el("article", { class: isCurrent ? "card current" : "card", "aria-labelledby": `answer-${index}`,
                         "aria-current": isCurrent ? "true" : null, "data-index": index }, [
    heading, near,
    group.check ? el("p", { class: "problem", text: `Check: ${group.check} (a score given here clears it)` }) : null,
    el("p", { class: "names", text: names }),
    el("pre", { class: "answer", text: group.answer }),
    scoreBox,
    q.rubric.length ? items : null,
    el("label", { for: `note-${index}`, text: "Comment to the student (shown on their feedback page)" }),
    note,
  ]);
}

function render() {
  const data = view.data;
  if (!data) return;
  const focused = focusAfter || (document.activeElement && document.activeElement.id);
  focusAfter = null;
  document.title = `${data.lab}: written answers`;
  $("title").textContent = `${data.lab}: written answers`;
  if (!data.questions.length) { $("prompt").textContent = "This lab has no written questions."; return; }
  const q = question();
  const select = $("question");
  select.replaceChildren(...data.questions.map((item, i) => el("option", {
    value: i, selected: i === view.question,
    text: `${item.id} (${fmt(item.points)} pt): ${item.scored} of ${item.total} scored`,
  })));
  const all = data.questions.reduce((s, item) => [s[0] + item.scored, s[1] + item.total], [0, 0]);
  $("progress").textContent = `${q.scored} of ${q.total} scored` + (data.questions.length > 1
    ? ` (all questions: ${all[0]} of ${all[1]})` : "");
  $("prompt").textContent = q.prompt || "(the question's text was not found in solutions/)";
  $("model").textContent = q.model || "(no model answer found in solutions/)";
  const anonymous = $("anonymous");
  anonymous.setAttribute("aria-pressed", String(!view.anonymous));
  anonymous.firstChild.textContent = view.anonymous ? "Show names " : "Hide names ";
  const list = $("view");
  list.setAttribute("aria-pressed", String(view.list));
  list.firstChild.textContent = view.list ? "One at a time " : "List view ";
  const at = current();
  const shown = view.list ? q.groups.map((g, i) => [g, i]) : q.groups.length ? [[q.groups[at], at]] : [];
  $("cards").replaceChildren(...shown.map(([g, i]) => card(g, i, q)));
  $("empty").textContent = q.empty.length
    ? `${q.empty.length} submission${q.empty.length > 1 ? "s" : ""} wrote no answer (not listed: 0 points).` : "";
  $("rubric").replaceChildren(...q.rubric.map((item, n) => el("li", {}, [
    el("span", { text: `${n + 1}. ${item.text} (${signed(item.points)})` }),
    el("button", { type: "button", "aria-label": `Edit item ${n + 1}`, text: "Edit", onclick: () => editItem(item) }),
    el("button", { type: "button", "aria-label": `Delete item ${n + 1}`, text: "Delete",
                   onclick: () => post("api/rubric", { question: q.id, id: item.id, delete: true }) }),
  ])));
  if (focused && $(focused)) $(focused).focus();
  if (view.list) {
    const box = document.querySelector(".card.current");
    if (box) box.scrollIntoView({ block: "nearest" });
  }
}

function editItem(item) {
  view.editing = item.id;
  $("item-form-heading").firstChild.textContent = "Edit item ";
  $("item-save").textContent = "Save item";
  $("item-text").value = item.text;
  $("item-points").value = fmt(item.points);
  $("item-text").focus();
}

function resetForm() {
  view.editing = null;
  $("item-form-heading").firstChild.textContent = "New item ";
  $("item-save").textContent = "Add item";
  $("item-text").value = "";
  $("item-points").value = "";
}

function submitItem(event) {
  event.preventDefault();
  const points = parseScore($("item-points").value);
  if (points === undefined) { say("The item's points must be a number, e.g. 0.5 or -0.5.", true); return; }
  const body = { question: question().id, text: $("item-text").value, points: points === null ? 0 : points };
  if (view.editing !== null) body.id = view.editing;
  resetForm();
  document.activeElement.blur();
  post("api/rubric", body);
}

function setQuestion(index) {
  view.question = (index + view.data.questions.length) % view.data.questions.length;
  resetForm();
  render();
}

function onScoreKey(event, index) {
  if (event.key !== "Enter") return;
  event.preventDefault();
  const base = parseScore(event.target.value);
  if (base === undefined) { say(`Not saved: ${JSON.stringify(event.target.value)} is not a number.`, true); return; }
  const q = question();
  const next = Math.min(index + 1, q.groups.length - 1);
  view.position[q.id] = next;
  focusAfter = `score-${next}`;
  saveGroup(index, { base });
}

function onKey(event) {
  if (!view.data || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  const typing = target.matches("input[type=text], textarea, select");
  if (typing) {
    if (event.key === "Escape") target.blur();
    const match = target.id.match(/^score-(\d+)$/);
    if (match) onScoreKey(event, Number(match[1]));
    return;
  }
  const q = question();
  const at = current();
  const actions = {
    j: () => move(1), ArrowDown: () => move(1), ArrowRight: () => move(1),
    k: () => move(-1), ArrowUp: () => move(-1), ArrowLeft: () => move(-1),
    u: nextUnscored,
    s: () => $(`score-${at}`) && $(`score-${at}`).focus(),
    c: () => $(`note-${at}`) && $(`note-${at}`).focus(),
    f: () => q.groups.length && saveGroup(at, { base: q.points }),
    n: () => $("item-text").focus(),
    "]": () => setQuestion(view.question + 1),
    "[": () => setQuestion(view.question - 1),
    a: () => { view.anonymous = !view.anonymous; render(); },
    l: () => { view.list = !view.list; render(); },
    m: () => { $("model-box").open = !$("model-box").open; },
  };
  if (/^[1-9]$/.test(event.key)) {
    const item = q.rubric[Number(event.key) - 1];
    if (item && q.groups.length) { event.preventDefault(); toggleItem(at, item.id); }
    return;
  }
  if (actions[event.key]) {
    event.preventDefault();
    actions[event.key]();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.addEventListener("keydown", onKey);
  $("question").addEventListener("change", (event) => setQuestion(Number(event.target.value)));
  $("anonymous").addEventListener("click", () => { view.anonymous = !view.anonymous; render(); });
  $("view").addEventListener("click", () => { view.list = !view.list; render(); });
  $("item-form").addEventListener("submit", submitItem);
  $("item-cancel").addEventListener("click", resetForm);
  $("cards").addEventListener("focusin", (event) => {
    const box = event.target.closest(".card");
    if (box && Number(box.dataset.index) !== current()) {
      view.position[question().id] = Number(box.dataset.index);
      for (const other of document.querySelectorAll(".card")) {
        other.classList.toggle("current", other === box);
        if (other === box) other.setAttribute("aria-current", "true"); else other.removeAttribute("aria-current");
      }
    }
  });
  window.addEventListener("focus", () => queue.then(load));  // another tab may have saved meanwhile
  load();
});
