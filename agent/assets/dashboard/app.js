// The live dashboard (served by `deskhand serve` at /dashboard). It holds no data of its own: it
// asks the local API for the content (rendered and escaped on the desktop) and waits there for
// the next change; ticking, dragging and adding a task are requests the desktop runs as jobs
// through its guard. The token comes from the address's fragment, which no server sees.
"use strict";

const KEY = "deskhand-dashboard-token";
const app = document.getElementById("app");
const status = document.getElementById("status");
let version = null;
let busy = false;

function token() {
  const m = /(?:^#|&)token=([0-9A-Za-z]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(KEY, m[1]);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem(KEY);
}

function say(text, bad) {
  status.textContent = text;
  status.className = bad ? "bad" : "";
}

function headers(json) {
  const h = { Authorization: "Bearer " + token() };
  if (json) h["Content-Type"] = "application/json";
  return h;
}

// Put new content in, keeping what the person was doing: the view chosen, the text being typed.
function apply(html) {
  const view = app.querySelector("input.view:checked");
  const typed = app.querySelector("#add-task input[name=text]");
  const chosen = app.querySelector("#add-task select");
  const state = {
    view: view && view.dataset.touched ? view.value : null,
    text: typed ? typed.value : "",
    focus: typed && document.activeElement === typed,
    section: chosen ? chosen.value : null,
  };
  app.innerHTML = html;
  if (state.view) {
    const radio = app.querySelector('input.view[value="' + state.view + '"]');
    if (radio) { radio.checked = true; radio.dataset.touched = "1"; }
  }
  const input = app.querySelector("#add-task input[name=text]");
  if (input) {
    input.value = state.text;
    if (state.focus) input.focus();
  }
  const select = app.querySelector("#add-task select");
  if (select && state.section) select.value = state.section;
  document.title = (app.querySelector("h1") || {}).textContent || "Deskhand";
}

async function follow() {
  for (;;) {
    let r;
    try {
      const after = version ? "?after=" + encodeURIComponent(version) : "";
      r = await fetch("/api/dashboard" + after, { headers: headers(false), cache: "no-store" });
    } catch (e) {
      say("The desktop is not answering; trying again…", true);
      await new Promise((ok) => setTimeout(ok, 2000));
      continue;
    }
    if (r.status === 401) {
      say("This page needs the desktop's token: open it with `deskhand dashboard`.", true);
      return;
    }
    if (r.status === 200) {
      const body = await r.json();
      version = body.version;
      apply(body.html);
      if (status.className === "bad" && status.textContent.startsWith("The desktop")) say("");
    } else if (r.status !== 204) {
      say("The dashboard could not be read (" + r.status + "); trying again…", true);
      await new Promise((ok) => setTimeout(ok, 2000));
    }
  }
}

async function edit(body, done) {
  if (busy) return;
  busy = true;
  say("Saving…");
  try {
    const r = await fetch("/api/dashboard/tasks", {
      method: "POST",
      headers: headers(true),
      body: JSON.stringify(body),
    });
    const reply = await r.json().catch(() => ({}));
    if (r.ok) {
      say(done + " · undo: deskhand undo " + reply.job);
    } else {
      say(reply.message || "The desktop refused the change (" + r.status + ")", true);
    }
  } catch (e) {
    say("The desktop is not answering; nothing was changed.", true);
  } finally {
    busy = false;
  }
}

function taskOf(el) {
  const card = el.closest("li.task");
  return card && { line: Number(card.dataset.line), text: card.dataset.text, card: card };
}

app.addEventListener("change", (ev) => {
  const t = ev.target;
  if (t.matches("input.view")) {
    t.dataset.touched = "1";
    return;
  }
  if (t.matches("li.task input[type=checkbox]")) {
    const task = taskOf(t);
    edit({ op: "done", line: task.line, text: task.text, done: t.checked },
      (t.checked ? "Ticked “" : "Unticked “") + task.text + "”");
  }
});

app.addEventListener("submit", (ev) => {
  if (!ev.target.matches("#add-task")) return;
  ev.preventDefault();
  const form = ev.target;
  const text = form.elements.text.value.trim();
  const section = form.elements.section.value;
  if (!text) return;
  form.elements.text.value = "";
  edit({ op: "add", text: text, section: section }, "Added “" + text + "” to " + section);
});

// Dragging a card of the board to another column, with a mouse, a pen or a finger.
let drag = null;

function columnAt(x, y) {
  const el = document.elementFromPoint(x, y);
  return el && el.closest(".board .column");
}

app.addEventListener("pointerdown", (ev) => {
  if (ev.button !== 0 || ev.target.closest("input, button, select, a")) return;
  const card = ev.target.closest(".board li.task");
  if (!card) return;
  drag = { card: card, x: ev.clientX, y: ev.clientY, moving: false, over: null, id: ev.pointerId };
  card.setPointerCapture(ev.pointerId);
});

app.addEventListener("pointermove", (ev) => {
  if (!drag || ev.pointerId !== drag.id) return;
  if (!drag.moving && Math.hypot(ev.clientX - drag.x, ev.clientY - drag.y) < 6) return;
  drag.moving = true;
  drag.card.classList.add("dragging");
  const col = columnAt(ev.clientX, ev.clientY);
  if (col !== drag.over) {
    if (drag.over) drag.over.classList.remove("drop");
    if (col) col.classList.add("drop");
    drag.over = col;
  }
});

function endDrag(ev, cancelled) {
  if (!drag || ev.pointerId !== drag.id) return;
  const d = drag;
  drag = null;
  d.card.classList.remove("dragging");
  if (d.over) d.over.classList.remove("drop");
  if (cancelled || !d.moving) return;
  const col = columnAt(ev.clientX, ev.clientY);
  const from = d.card.closest(".column");
  if (!col || col === from || !col.dataset.section) return;
  const task = taskOf(d.card);
  edit({ op: "move", line: task.line, text: task.text, section: col.dataset.section },
    "Moved “" + task.text + "” to " + col.dataset.section);
}

app.addEventListener("pointerup", (ev) => endDrag(ev, false));
app.addEventListener("pointercancel", (ev) => endDrag(ev, true));

if (token()) {
  follow();
} else {
  say("This page needs the desktop's token: open it with `deskhand dashboard`.", true);
}
