// The ccattest console: four pages over the read API. No framework, no build step.
// Every value from the API reaches the page through textContent, never as HTML: site
// names, claims and failure reasons come from peers and are not trusted.
"use strict";

const POLL_MS = 2000; // the matrix re-reads every two seconds (see docs/ARCHITECTURE.md)
const EXPIRY_WARN_DAYS = 14;
const STATUS = {
  affirming: ["\u2713", "trusted"],
  warning: ["!", "warning"],
  contraindicated: ["\u2717", "rejected"],
  none: ["?", "no verdict"],
  "not-cc": ["\u2013", "not CC"],
  excluded: ["\u2298", "excluded"],
};

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "onclick") node.addEventListener("click", value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(path) {
  const response = await fetch(path, { credentials: "same-origin", cache: "no-store" });
  if (response.status === 401) { location.reload(); throw new Error("signed out"); }
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

function age(stamp) {
  if (!stamp) return "never";
  const seconds = (Date.now() - Date.parse(stamp)) / 1000;
  if (Number.isNaN(seconds)) return "never";
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]]) {
    if (seconds >= size) return `${Math.round(seconds / size)}${unit} ago`;
  }
  return `${Math.max(Math.round(seconds), 0)}s ago`;
}

function when(stamp) {
  const date = new Date(stamp);
  return Number.isNaN(date.getTime()) ? String(stamp || "") :
    date.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function badge(status) {
  const [symbol, word] = STATUS[status] || ["?", String(status)];
  return el("span", { class: `badge st-${STATUS[status] ? status : "unknown"}`,
                      "data-status": status }, `${symbol} ${word}`);
}

function live(ok, message) {
  const node = document.getElementById("live");
  node.textContent = message;
  node.classList.toggle("stale", !ok);
}

function show(...nodes) {
  const page = document.getElementById("page");
  page.replaceChildren(...nodes);
}

function siteLink(name) {
  return el("a", { href: `/sites/${encodeURIComponent(name)}` }, name);
}

// --- trust matrix --------------------------------------------------------------------
function siteOrder(status, cells) {
  const names = new Set(Object.keys(status.sites));
  for (const cell of cells) { names.add(cell.verifier); names.add(cell.peer); }
  const role = (name) => (status.sites[name] || {}).role === "server" ? 0 : 1;
  return [...names].sort((a, b) => role(a) - role(b) || a.localeCompare(b, "en",
    { numeric: true }));
}

function matrixTable(status, cells) {
  const names = siteOrder(status, cells);
  const byKey = new Map(cells.map((c) => [`${c.verifier}\u0000${c.peer}`, c]));
  const head = el("tr", {}, el("th", { scope: "col" }, "judged by \u2193 / peer \u2192"),
    names.map((n) => el("th", { scope: "col" }, siteLink(n))));
  const rows = names.map((verifier) => el("tr", {},
    el("th", { scope: "row" }, siteLink(verifier)),
    names.map((peer) => {
      if (peer === verifier) return el("td", { class: "self", "aria-label": "itself" });
      const cell = byKey.get(`${verifier}\u0000${peer}`);
      const excluded = ((status.excluded || {})[peer] || {})[verifier];
      if (!cell && !excluded) return el("td", { "data-verifier": verifier, "data-peer": peer },
        el("span", { class: "note" }, "\u2014"));
      const shown = excluded && (!cell || cell.status === "affirming") ? "excluded"
        : cell.status;
      const [symbol, word] = STATUS[shown] || ["?", shown];
      return el("td", {
        class: `cell st-${STATUS[shown] ? shown : "unknown"}`, "data-verifier": verifier,
        "data-peer": peer, "data-status": shown,
        title: excluded ? `excluded by ${verifier}: ${excluded}` : `${verifier} judged ${peer}`,
      }, `${symbol} ${word}`, el("small", {}, cell ? age(cell.at) : "excluded"));
    })));
  return el("div", { class: "scroll" },
    el("table", { class: "matrix", id: "matrix" }, el("thead", {}, head), el("tbody", {}, rows)));
}

function roundsTable(rounds) {
  if (!rounds.length) return el("p", { class: "note" }, "No round has run yet.");
  return el("table", { id: "rounds" },
    el("thead", {}, el("tr", {}, ["round", "when", "took", "attested", "missing"].map(
      (h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rounds.slice(0, 10).map((r) => el("tr", {},
      el("td", { class: "mono" }, String(r.round_id || "")),
      el("td", {}, age(r.at)),
      el("td", {}, typeof r.seconds === "number" ? `${(r.seconds * 1000).toFixed(0)} ms` : ""),
      el("td", {}, (r.attested || []).join(", ")),
      el("td", {}, Object.entries(r.unreachable || {}).map(([s, why]) => `${s} (${why})`)
        .join(", ") || "none")))));
}

async function matrixPage() {
  document.title = "Trust matrix \u2014 ccattest";
  const heading = el("h1", {}, "Trust matrix");
  const legend = el("div", { class: "legend", "aria-label": "legend" },
    Object.keys(STATUS).map((s) => badge(s)));
  const body = el("div", {});
  show(heading, el("p", { class: "note" }, "Each row is a site's own judgement of its peers."
    + " Cells update every few seconds."), legend, body);
  const refresh = async () => {
    try {
      const [status, matrix] = await Promise.all([api("/api/v1/status"),
        api("/api/v1/matrix")]);
      const cells = matrix.matrix;
      const count = (s) => cells.filter((c) => c.status === s).length;
      const excluded = Object.keys(status.excluded || {});
      const summary = el("div", { class: "summary", id: "summary" },
        el("span", {}, el("b", {}, String(Object.keys(status.sites).length)), " sites"),
        el("span", {}, el("b", {}, String(count("affirming"))), " trusted judgements"),
        el("span", {}, el("b", {}, String(count("contraindicated"))), " rejected"),
        el("span", {}, el("b", {}, String(excluded.length)), " excluded",
          excluded.length ? `: ${excluded.join(", ")}` : ""));
      body.replaceChildren(summary, matrixTable(status, cells),
        el("h2", {}, "Last rounds"), roundsTable(status.rounds || []));
      live(true, `live \u00b7 updated ${new Date().toLocaleTimeString()}`);
    } catch (error) {
      live(false, `not updating: ${error.message}`);
    }
  };
  await refresh();
  setInterval(refresh, POLL_MS);
}

// --- timeline --------------------------------------------------------------------------
function subjectOf(event) {
  const data = event.data || {};
  return data.peer || data.site || data.client || (data.participants || []).join(", ") || "";
}

function summaryOf(event) {
  const data = event.data || {};
  switch (event.kind) {
    case "verdict": return `${data.peer}: ${data.status}` +
      (data.failures && data.failures.length ? ` \u2014 ${data.failures[0]}` : "");
    case "round": return `round ${data.round || ""}, ${Object.keys(data.missing || {}).length}`
      + " missing";
    case "gate": return `job ${data.job}: ${data.admitted ? "admitted" : "refused"}` +
      (data.reasons && data.reasons.length ? ` \u2014 ${data.reasons.join("; ")}` : "");
    case "receipt": return `job ${data.job}: ${data.phase} receipt`;
    case "exclusion": case "readmission": return `${data.site}: ${data.detail || ""}`;
    case "action": return `${data.action} (${data.cause}) on ${data.site}: ${data.detail || ""}`;
    case "registration": return `${data.client || data.site || ""} ${data.step || ""}: ` +
      `${data.status || ""}`;
    default: {
      const text = JSON.stringify(data);
      return text.length > 160 ? `${text.slice(0, 157)}...` : text;
    }
  }
}

function localInput(label, name, value) {
  return el("label", {}, label, el("input", { type: "datetime-local", name, value }));
}

async function timelinePage() {
  document.title = "Timeline \u2014 ccattest";
  const params = new URLSearchParams(location.search);
  const sites = (await api("/api/v1/sites")).sites.map((s) => s.name);
  const form = el("form", { class: "filters", id: "filters", method: "get" },
    el("label", {}, "Site", el("select", { name: "site" }, el("option", { value: "" }, "any"),
      sites.map((s) => el("option", { value: s, selected: params.get("site") === s }, s)))),
    el("label", {}, "Kind", el("select", { name: "kind" }, el("option", { value: "" }, "any"),
      ["registration", "verdict", "round", "gate", "action", "exclusion", "readmission",
       "receipt", "config"].map((k) => el("option", { value: k,
        selected: params.get("kind") === k }, k)))),
    localInput("From (UTC)", "since", params.get("since") || ""),
    localInput("To (UTC)", "until", params.get("until") || ""),
    el("button", { type: "submit" }, "Filter"));
  const table = el("div", {}, el("p", { class: "note" }, "loading\u2026"));
  show(el("h1", {}, "Timeline"), el("p", { class: "note" },
    "What the server recorded, newest first. Site: entries about that site."), form, table);
  const query = new URLSearchParams({ order: "desc", limit: "200" });
  if (params.get("site")) query.set("about", params.get("site"));
  for (const key of ["kind"]) if (params.get(key)) query.set(key, params.get(key));
  for (const key of ["since", "until"]) {
    if (params.get(key)) query.set(key, new Date(`${params.get(key)}Z`).toISOString());
  }
  try {
    const events = (await api(`/api/v1/events?${query}`)).events;
    table.replaceChildren(events.length ? el("div", { class: "scroll" },
      el("table", { id: "timeline" },
        el("thead", {}, el("tr", {}, ["#", "when (UTC)", "kind", "about", "what"].map(
          (h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, events.map((e) => el("tr", { "data-kind": e.kind },
          el("td", {}, String(e.index)), el("td", {}, when(e.at)), el("td", {}, e.kind),
          el("td", {}, subjectOf(e)), el("td", {}, summaryOf(e)))))))
      : el("p", { class: "note" }, "Nothing recorded matches these filters."));
  } catch (error) {
    table.replaceChildren(el("p", { class: "error" }, error.message));
  }
}

// --- a site ----------------------------------------------------------------------------
function copyButton(text) {
  return el("button", { type: "button", onclick: async (event) => {
    try { await navigator.clipboard.writeText(text); event.target.textContent = "copied"; }
    catch { event.target.textContent = "select and copy"; }
  } }, "copy");
}

function claimsTable(claims) {
  const rows = Object.entries(claims || {}).map(([name, value]) => {
    const text = typeof value === "string" ? value : JSON.stringify(value, null, 1);
    return el("tr", {}, el("td", {}, name), el("td", {}, el("pre", {}, text)),
      el("td", {}, copyButton(text)));
  });
  return rows.length ? el("table", { class: "claims" }, el("tbody", {}, rows))
    : el("p", { class: "note" }, "no claims");
}

function expiryRow(item) {
  const days = (Date.parse(item.not_after) - Date.now()) / 86400000;
  const state = Number.isNaN(days) ? ["unknown", "?"] : days < 0 ? ["contraindicated",
    "\u2717 expired"] : days < EXPIRY_WARN_DAYS ? ["warning", `! in ${Math.ceil(days)} days`]
    : ["affirming", `\u2713 in ${Math.floor(days)} days`];
  return el("tr", {}, el("td", {}, item.kind), el("td", { class: "mono" }, item.name),
    el("td", {}, when(item.not_after)),
    el("td", { class: `st-${state[0]}`, "data-expiry": state[0] }, state[1]));
}

async function sitePage(name) {
  document.title = `${name} \u2014 ccattest`;
  let site;
  try {
    site = await api(`/api/v1/sites/${encodeURIComponent(name)}`);
  } catch (error) {
    show(el("h1", {}, name), el("p", { class: "error" }, error.message));
    return;
  }
  const judged = site.judged_by.map((c) => el("tr", {}, el("td", {}, siteLink(c.verifier)),
    el("td", {}, badge(c.status)), el("td", {}, age(c.at)),
    el("td", {}, c.last_good ? age(c.last_good) : "never")));
  const latest = site.latest;
  const parts = [el("h1", {}, `${site.name} `, el("span", { class: "note" }, `(${site.role})`)),
    el("p", {}, `State: ${site.state}. `, site.excluded_by.length ?
      el("span", { class: "error" }, `Excluded by ${site.excluded_by.join(", ")}.`) : ""),
    el("h2", {}, "How the others judge it"),
    judged.length ? el("table", { id: "judged" }, el("thead", {}, el("tr", {},
      ["by", "status", "judged", "last trusted"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, judged)) : el("p", { class: "note" }, "No site has judged it yet.")];
  parts.push(el("h2", {}, "Latest verdict"));
  if (latest) {
    const policy = latest.policy || {};
    parts.push(el("p", {}, badge(latest.status), ` by ${latest.by}, ${when(latest.at)}, `
      + `policy ${policy.id || "?"} `, el("span", { class: "mono" }, policy.digest || "")));
    parts.push(el("h2", {}, "Reasons"), latest.failures.length ? el("ul", { id: "reasons" },
      latest.failures.map((f) => el("li", {}, f))) : el("p", { id: "reasons" },
      "Every check passed."));
    for (const result of latest.results) {
      parts.push(el("h2", {}, `Platform: ${result.platform} `, badge(result.status)),
        el("p", { class: "note" }, `evidence ${result.evidence || "?"}, valid until `
          + `${when(result.expires)}`), claimsTable(result.claims));
    }
  } else {
    parts.push(el("p", { class: "note" }, "No verdict about this site in the record yet."));
  }
  parts.push(el("h2", {}, "Status history"), site.history.length ? el("table", { id: "history" },
    el("thead", {}, el("tr", {}, ["when (UTC)", "by", "at", "status", "why"].map(
      (h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, site.history.map((h) => el("tr", {}, el("td", {}, when(h.at)),
      el("td", {}, h.by), el("td", {}, h.context || ""), el("td", {}, badge(h.status)),
      el("td", {}, h.failures.join("; "))))))
    : el("p", { class: "note" }, "nothing recorded"));
  parts.push(el("h2", {}, "Collateral it relies on"), site.collateral.length ?
    el("table", { id: "collateral" }, el("thead", {}, el("tr", {}, ["kind", "name",
      "valid until (UTC)", "expires"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, site.collateral.map(expiryRow)))
    : el("p", { class: "note" }, "This site reports no collateral (software TEEs need none)."));
  show(...parts);
}

// --- jobs ------------------------------------------------------------------------------
async function verifyReceipt(index, target) {
  target.replaceChildren("verifying\u2026");
  try {
    const report = await api(`/api/v1/receipts/${index}/verify`);
    target.replaceChildren(el("span", { class: "badge st-affirming", "data-verified": "yes" },
      "\u2713 verified"), ` ${report.participants.length} participants, cosigned by `
      + `${report.cosigners.join(", ") || "nobody else"}, checkpoint ${report.checkpoint_size}`
      + `, ${report.entries} entries proven`);
  } catch (error) {
    target.replaceChildren(el("span", { class: "badge st-contraindicated",
      "data-verified": "no" }, "\u2717 does not verify"), ` ${error.message}`);
  }
}

async function jobsPage() {
  document.title = "Jobs \u2014 ccattest";
  const receipts = (await api("/api/v1/receipts")).receipts;
  const jobs = new Map();
  for (const r of receipts) {
    const job = (r.data || {}).job || "?";
    if (!jobs.has(job)) jobs.set(job, []);
    jobs.get(job).push(r);
  }
  const parts = [el("h1", {}, "Jobs"), el("p", { class: "note" }, "Each receipt is signed by the"
    + " server and its checkpoint cosigned by the job's sites. Verify runs the same check as"
    + " `ccattest audit receipt verify`; download one to check it offline.")];
  if (!jobs.size) parts.push(el("p", { class: "note" }, "No receipts yet: a job gets one when "
    + "the gate admits it."));
  for (const [job, items] of jobs) {
    parts.push(el("h2", { class: "mono" }, `job ${job}`), el("table", { class: "receipts" },
      el("thead", {}, el("tr", {}, ["phase", "issued", "issued by", "check"].map(
        (h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, items.map((r) => {
        const result = el("div", { class: "result", role: "status" });
        return el("tr", { "data-receipt": r.index }, el("td", {}, r.data.phase),
          el("td", {}, when(r.at)), el("td", {}, r.data.issuer || "?"),
          el("td", {}, el("button", { type: "button", "data-verify": r.index,
            onclick: () => verifyReceipt(r.index, result) }, "Verify"), " ",
          el("a", { href: `/api/v1/receipts/${r.index}/receipt.jwt`,
            download: `receipt-${job}-${r.data.phase}.jwt` }, "Download"), result));
      }))));
  }
  show(...parts);
}

// --- routing ---------------------------------------------------------------------------
function route() {
  const path = location.pathname;
  const page = path.startsWith("/sites/") ? "site" : path === "/timeline" ? "timeline"
    : path === "/jobs" ? "jobs" : "matrix";
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === page) link.setAttribute("aria-current", "page");
  }
  const run = { matrix: matrixPage, timeline: timelinePage, jobs: jobsPage,
    site: () => sitePage(decodeURIComponent(path.slice("/sites/".length))) }[page];
  run().then(() => { if (page !== "matrix") live(true, "loaded " + new Date()
    .toLocaleTimeString()); }).catch((error) => {
    show(el("p", { class: "error" }, error.message));
    live(false, "failed");
  });
}

document.addEventListener("DOMContentLoaded", route);
