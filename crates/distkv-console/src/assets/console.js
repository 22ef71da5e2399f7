// The DistKV web console. Everything from the server is put into the
// page with textContent, never as markup.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const rows = new Map(); // JSON text of a path -> row
let source = null;

function key(path) { return JSON.stringify(path); }

function status(text) { document.getElementById("status").textContent = text; }

function show(v) { return JSON.stringify(v); }

function nameText(name) {
  return typeof name === "string" ? name : JSON.stringify(name);
}

async function api(url, body) {
  const init = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-DistKV-CSRF": csrf },
    body: JSON.stringify(body),
  };
  const r = await fetch(url, init);
  let data = null;
  try { data = await r.json(); } catch (e) { data = { error: r.statusText }; }
  if (!r.ok) {
    const err = new Error((data && data.error) || r.statusText);
    err.status = r.status;
    if (r.status === 401 && !url.startsWith("/api/log")) askLogin(null);
    throw err;
  }
  return data;
}

function treeUrl(path) {
  return "/api/tree?path=" + encodeURIComponent(JSON.stringify(path));
}

function fill(row, data) {
  row.data = Object.assign(row.data || {}, data);
  const d = row.data;
  const v = row.li.querySelector(":scope > .line > .value");
  if (d.has_value) {
    v.textContent = show(d.value);
    v.classList.remove("novalue");
  } else {
    v.textContent = "no value";
    v.classList.add("novalue");
  }
  const head = d.chain && d.chain.length ? d.chain.map((l) => l.node + ":" + l.tick).join(" ← ") : "no chain";
  let meta = "chain " + head + " · tock " + d.tock;
  if (d.bindings) {
    if (d.bindings.type) meta += " · type " + d.bindings.type.map(String).join(" ");
    for (const c of d.bindings.codecs || []) meta += " · codec " + c.codec.map(String).join(" ") + " (" + c.group + ")";
  }
  row.li.querySelector(":scope > .line > .meta").textContent = meta;
  const t = row.li.querySelector(":scope > .line > .toggle");
  if (d.has_children === false && !row.expanded) {
    t.textContent = "·";
  } else {
    t.textContent = row.expanded ? "▾" : "▸";
  }
}

function makeRow(path, name, data) {
  const li = document.getElementById("row").content.firstElementChild.cloneNode(true);
  const row = { path, li, data: null, expanded: false };
  const n = li.querySelector(".name");
  n.textContent = name;
  if (path.length && typeof path[path.length - 1] !== "string") n.classList.add("nonstr");
  li.querySelector(".toggle").addEventListener("click", () => toggle(row));
  li.querySelector(".edit").addEventListener("click", () => openEditor(row));
  const form = li.querySelector(".editor");
  form.addEventListener("submit", (ev) => { ev.preventDefault(); save(row, false); });
  li.querySelector(".delete").addEventListener("click", () => save(row, true));
  li.querySelector(".delete-tree").addEventListener("click", () => deleteTree(row));
  li.querySelector(".cancel").addEventListener("click", () => { form.hidden = true; });
  rows.set(key(path), row);
  fill(row, data);
  return row;
}

async function load(row) {
  const data = await api(treeUrl(row.path));
  const ul = row.li.querySelector(":scope > .children");
  fill(row, { has_value: data.has_value, value: data.value, chain: data.chain, tock: data.tock,
              has_children: data.children.length > 0, bindings: data.bindings });
  const seen = new Set();
  for (const c of data.children) {
    const p = row.path.concat([c.name]);
    seen.add(key(p));
    const old = rows.get(key(p));
    if (old) { fill(old, c); } else { ul.appendChild(makeRow(p, nameText(c.name), c).li); }
  }
  for (const li of Array.from(ul.children)) {
    const r = Array.from(rows.values()).find((x) => x.li === li);
    if (r && !seen.has(key(r.path))) { forget(r); li.remove(); }
  }
  if (data.truncated) {
    let more = ul.querySelector(":scope > .more");
    if (!more) {
      more = document.createElement("li");
      more.className = "more";
      more.textContent = "… more entries (not shown)";
      ul.appendChild(more);
    }
  }
}

function forget(row) {
  for (const k of Array.from(rows.keys())) {
    const r = rows.get(k);
    if (r.path.length >= row.path.length && key(r.path.slice(0, row.path.length)) === key(row.path)) {
      rows.delete(k);
    }
  }
}

async function toggle(row) {
  const ul = row.li.querySelector(":scope > .children");
  if (row.expanded) {
    row.expanded = false;
    ul.hidden = true;
    fill(row, {});
    return;
  }
  try {
    await load(row);
    row.expanded = true;
    ul.hidden = false;
    fill(row, {});
    status("");
  } catch (e) {
    status("cannot load: " + e.message);
  }
}

function typeOf(v) {
  if (v === null) return "null";
  if (typeof v === "string") return "string";
  if (typeof v === "number") return "number";
  if (typeof v === "boolean") return "boolean";
  return "json";
}

function openEditor(row) {
  const form = row.li.querySelector(":scope > .editor");
  const d = row.data;
  const t = d.has_value ? typeOf(d.value) : "string";
  form.querySelector(".type").value = t;
  const input = form.querySelector(".input");
  input.value = !d.has_value ? "" : t === "string" ? d.value : t === "json" ? JSON.stringify(d.value, null, 1) : String(d.value);
  form.querySelector(".message").textContent = "";
  form.querySelector(".delete").disabled = !d.has_value;
  const dt = form.querySelector(".delete-tree");
  dt.hidden = !row.path.length || (d.has_children === false && !row.expanded);
  dt.textContent = "delete subtree";
  dt.dataset.armed = "";
  form.hidden = false;
  input.focus();
}

function parseInput(type, text) {
  switch (type) {
    case "string": return text;
    case "null": return null;
    case "boolean":
      if (text.trim() === "true") return true;
      if (text.trim() === "false") return false;
      throw new Error("true or false");
    case "number": {
      const n = Number(text.trim());
      if (text.trim() === "" || !Number.isFinite(n)) throw new Error("not a number");
      return n;
    }
    default: return JSON.parse(text);
  }
}

async function save(row, del) {
  const form = row.li.querySelector(":scope > .editor");
  const msg = form.querySelector(".message");
  msg.className = "message";
  const d = row.data;
  const chain = d.has_value && d.chain && d.chain.length ? d.chain[0] : null;
  try {
    let r;
    if (del) {
      r = await api("/api/delete", { path: row.path, chain });
    } else {
      const value = parseInput(form.querySelector(".type").value, form.querySelector(".input").value);
      r = await api("/api/set", { path: row.path, value, chain });
    }
    fill(row, r);
    msg.textContent = "saved";
    msg.className = "message ok";
    form.hidden = true;
  } catch (e) {
    msg.textContent = e.status === 409 ? "conflict: " + e.message : e.message;
  }
}

// Deletes every value at and below the row, after a second click; the
// entry itself is checked against the chain the page showed.
async function deleteTree(row) {
  const form = row.li.querySelector(":scope > .editor");
  const msg = form.querySelector(".message");
  const button = form.querySelector(".delete-tree");
  msg.className = "message";
  if (!button.dataset.armed) {
    button.dataset.armed = "1";
    button.textContent = "really delete everything below?";
    msg.textContent = "";
    return;
  }
  button.dataset.armed = "";
  button.textContent = "delete subtree";
  const d = row.data;
  const chain = d.has_value && d.chain && d.chain.length ? d.chain[0] : null;
  try {
    const r = await api("/api/delete_tree", { path: row.path, chain });
    form.hidden = true;
    const parent = rows.get(key(row.path.slice(0, -1)));
    if (parent && parent.expanded) {
      await load(parent);
    }
    status("deleted " + r.deleted + " value(s) at and below " + nameText(row.path[row.path.length - 1]));
  } catch (e) {
    msg.textContent = e.status === 409 ? "conflict: " + e.message : e.message;
  }
}

function parentExpanded(path) {
  const p = rows.get(key(path.slice(0, -1)));
  return p && p.expanded ? p : null;
}

function onChange(ev) {
  const c = JSON.parse(ev.data);
  const row = rows.get(key(c.path));
  if (row) {
    if (row.data.tock > c.tock) return;
    fill(row, c);
    row.li.classList.add("flash");
    setTimeout(() => row.li.classList.remove("flash"), 600);
    return;
  }
  const parent = c.path.length ? parentExpanded(c.path) : null;
  if (parent && c.has_value) {
    const r = makeRow(c.path, nameText(c.path[c.path.length - 1]), Object.assign({ has_children: false }, c));
    parent.li.querySelector(":scope > .children").appendChild(r.li);
  }
}

async function reloadExpanded() {
  for (const r of Array.from(rows.values())) {
    if (r.expanded) {
      try { await load(r); } catch (e) { status("cannot load: " + e.message); }
    }
  }
}

function setLive(on) {
  if (source) { source.close(); source = null; }
  if (!on) { status(""); return; }
  source = new EventSource("/api/watch?path=" + encodeURIComponent("[]"));
  source.addEventListener("ready", () => { status("live"); reloadExpanded(); });
  source.addEventListener("message", onChange);
  source.addEventListener("reload", () => {
    status("too many changes: reloading");
    setLive(false);
    reloadExpanded().then(() => setLive(document.getElementById("live").checked));
  });
  source.addEventListener("error", () => status("live: reconnecting"));
}

// An element holding `text` (as text).
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function tableRow(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    tr.appendChild(c instanceof Node ? c : el("td", c));
  }
  return tr;
}

function ticksText(t) {
  if (!t || !t.count) return "none";
  const r = t.ranges.map((x) => x[0] === x[1] ? String(x[0]) : x[0] + "–" + x[1]).join(", ");
  return t.count + ": " + r + (t.more ? ", …" : "");
}

function clockText() { return new Date().toLocaleTimeString(); }

// ---- pages ----

const REFRESH_MS = 2000;
let refreshTimer = null;
let generation = 0; // one refresh loop at a time: older loops stop
const pages = {
  tree: null,
  network: { refresh: refreshNetwork, every: REFRESH_MS },
  errors: { refresh: refreshErrors, every: 5000 },
  jobs: { refresh: refreshJobs, every: 5000 },
};

function showPage() {
  const name = (location.hash || "#tree").slice(1);
  const page = Object.prototype.hasOwnProperty.call(pages, name) ? name : "tree";
  for (const s of document.querySelectorAll("section.page")) {
    s.hidden = s.id !== "page-" + page;
  }
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("current", a.id === "nav-" + page);
  }
  if (refreshTimer) { clearTimeout(refreshTimer); refreshTimer = null; }
  const p = pages[page];
  const mine = ++generation;
  if (p) {
    const tick = async () => {
      await p.refresh();
      if (mine === generation) refreshTimer = setTimeout(tick, p.every);
    };
    tick();
  }
}

// ---- network ----

let lastReplication = null;

async function refreshNetwork() {
  let s;
  try {
    s = await api("/api/status");
  } catch (e) {
    document.getElementById("network-updated").textContent = "cannot load: " + e.message;
    return;
  }
  const figures = document.getElementById("network-figures");
  const ready = el("td", s.ready ? "yes" : "no (still catching up)", s.ready ? "good" : "bad");
  figures.replaceChildren(
    tableRow([el("th", "server"), s.server]),
    tableRow([el("th", "backend"), s.backend]),
    tableRow([el("th", "ready"), ready]),
    tableRow([el("th", "entries"), el("td", s.entries, "num")]),
    tableRow([el("th", "connections"), el("td", s.connections, "num")]),
    tableRow([el("th", "watchers"), el("td", s.watchers, "num")]),
    tableRow([el("th", "state log"), s.state_log === null ? "none" : s.state_log]),
  );
  const nodes = document.getElementById("network-nodes");
  nodes.replaceChildren(...s.nodes.map((n) => {
    const tr = tableRow([
      n.name,
      el("td", n.tick === null ? "–" : n.tick, "num"),
      el("td", ticksText(n.missing), n.missing.count ? "bad" : ""),
      ticksText(n.remote_missing),
    ]);
    tr.dataset.node = n.name;
    return tr;
  }));
  const now = Date.now();
  const rep = document.getElementById("network-replication");
  rep.replaceChildren(...Object.keys(s.replication).map((k) => {
    const v = s.replication[k];
    let rate = "";
    if (lastReplication && typeof v === "number" && typeof lastReplication.values[k] === "number") {
      const dt = (now - lastReplication.at) / 1000;
      if (dt > 0) rate = ((v - lastReplication.values[k]) / dt).toFixed(1);
    }
    return tableRow([k, el("td", v, "num"), el("td", rate, "num")]);
  }));
  lastReplication = { at: now, values: s.replication };
  document.getElementById("network-updated").textContent = "updated " + clockText();
}

// ---- errors ----

function timeText(t) {
  return typeof t === "number" && t > 0 ? new Date(t * 1000).toLocaleString() : "–";
}

function pathText(p) {
  return Array.isArray(p) ? (p.length ? p.map(nameText).join(" ") : "(root)") : show(p);
}

async function refreshErrors() {
  let r;
  try {
    r = await api("/api/errors");
  } catch (e) {
    document.getElementById("errors-updated").textContent = "cannot load: " + e.message;
    return;
  }
  const all = document.getElementById("errors-all").checked;
  const shown = r.errors.filter((x) => all || x.open);
  const list = document.getElementById("errors-list");
  list.replaceChildren(...shown.map(errorRow));
  const none = document.getElementById("errors-none");
  none.textContent = all ? "No errors recorded." : "No open errors.";
  none.hidden = shown.length > 0;
  document.getElementById("errors-updated").textContent =
    "updated " + clockText() + (r.truncated ? " (too many records: not all shown)" : "");
}

function errorRow(x) {
  const message = el("td");
  message.appendChild(el("div", x.message === null ? "" : x.message));
  if (x.details.length) {
    const ul = el("ul", null, "details");
    for (const d of x.details) {
      const v = d.value || {};
      const text = typeof v.str === "string" ? v.str : show(v);
      ul.appendChild(el("li", nameText(d.reporter) + " (" + timeText(v.seen) + "): " + text));
    }
    message.appendChild(ul);
  }
  const action = el("td");
  if (x.open) {
    const b = el("button", "resolve", "resolve");
    b.type = "button";
    const msg = el("span", "", "message");
    b.addEventListener("click", async () => {
      const chain = x.chain && x.chain.length ? x.chain[0] : null;
      try {
        await api("/api/resolve", { at: x.at, chain });
        await refreshErrors();
      } catch (e) {
        msg.textContent = e.status === 409 ? "conflict: " + e.message : e.message;
      }
    });
    action.append(b, msg);
  }
  const tr = tableRow([
    el("td", x.open ? "open" : "resolved " + timeText(x.resolved), x.open ? "bad" : ""),
    x.subsystem === null ? "" : x.subsystem,
    el("td", pathText(x.path), "mono"),
    message,
    el("td", x.count, "num"),
    el("td", x.severity, "num"),
    timeText(x.last_seen),
    x.node === null ? "" : nameText(x.node),
    action,
  ]);
  tr.dataset.at = JSON.stringify(x.at);
  if (!x.open) tr.className = "resolved";
  return tr;
}

// ---- jobs ----

function jobState(s) {
  const st = s.state || {};
  const who = s.runner === null ? "" : nameText(s.runner) + ": ";
  if (st.node !== undefined && st.node !== null) {
    return who + "running on " + nameText(st.node) + " since " + timeText(st.started);
  }
  if (typeof st.error === "string") {
    return who + "failed " + timeText(st.stopped) + ": " + st.error +
      (typeof st.backoff === "number" ? " (failures: " + st.backoff + ")" : "");
  }
  if (st.stopped !== undefined) {
    return who + "done " + timeText(st.stopped) + (st.result !== undefined ? ": " + show(st.result) : "");
  }
  return who + show(st);
}

async function refreshJobs() {
  let r;
  try {
    r = await api("/api/jobs");
  } catch (e) {
    document.getElementById("jobs-updated").textContent = "cannot load: " + e.message;
    return;
  }
  const list = document.getElementById("jobs-list");
  list.replaceChildren(...r.jobs.map((j) => {
    const job = j.job || {};
    const state = el("td");
    if (!j.states.length) state.textContent = "never ran";
    for (const s of j.states) state.appendChild(el("div", jobState(s)));
    const tr = tableRow([
      (j.kind === "at" ? "at " + nameText(j.node) : j.kind) +
        (j.group === null || j.group === undefined ? "" : " (group " + nameText(j.group) + ")"),
      el("td", pathText(j.path), "mono"),
      el("td", Array.isArray(job.code) ? pathText(job.code) : show(job.code), "mono"),
      job.target === null || job.target === undefined ? "not scheduled" : timeText(job.target),
      typeof job.repeat === "number" && job.repeat > 0 ? job.repeat + " s" : "–",
      state,
    ]);
    tr.dataset.job = JSON.stringify(j.at);
    return tr;
  }));
  document.getElementById("jobs-none").hidden = r.jobs.length > 0;
  document.getElementById("jobs-updated").textContent =
    "updated " + clockText() + (r.truncated ? " (too many: not all shown)" : "");
}

// ---- login ----

// Shows the login form instead of the pages (method: the one the server
// asked for, if known).
function askLogin(method) {
  for (const sec of document.querySelectorAll("section.page")) sec.hidden = true;
  if (method) document.getElementById("login-method").textContent = method;
  document.getElementById("page-login").hidden = false;
  if (source) { source.close(); source = null; }
  generation++;
}

async function login(ev) {
  ev.preventDefault();
  const msg = document.getElementById("login-message");
  msg.textContent = "";
  const method = document.getElementById("login-method").textContent || undefined;
  try {
    await api("/api/login", {
      method,
      name: document.getElementById("login-name").value,
      password: document.getElementById("login-password").value,
    });
    location.reload();
  } catch (e) {
    msg.textContent = e.message;
  }
}

async function logout() {
  try { await api("/api/logout", {}); } catch (e) { /* reloaded anyway */ }
  location.reload();
}

function start() {
  document.getElementById("login-form").addEventListener("submit", login);
  document.getElementById("logout").addEventListener("click", logout);
  api("/api/session").then((s) => {
    if (s.user !== null) {
      document.getElementById("user-name").textContent = s.user;
      document.getElementById("user").hidden = false;
    } else if (s.login !== null) {
      askLogin(s.login);
      return;
    }
    showTree();
  }).catch((e) => status("cannot load: " + e.message));
}

function showTree() {
  document.getElementById("errors-all").addEventListener("change", refreshErrors);
  const root = makeRow([], "(root)", { has_value: false, chain: null, tock: 0 });
  document.getElementById("tree").appendChild(root.li);
  toggle(root);
  const live = document.getElementById("live");
  live.addEventListener("change", () => setLive(live.checked));
  window.addEventListener("hashchange", () => {
    if (document.getElementById("page-login").hidden) showPage();
  });
  showPage();
}

start();
