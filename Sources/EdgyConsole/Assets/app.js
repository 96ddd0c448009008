// The Edgy console: a client of the same API everyone else uses, with the signed-in token's
// rights and nothing more. The token lives in sessionStorage only (gone with the tab). Every
// value from the server is put in the page as text (textContent), never as HTML.
"use strict";

const TOKEN_KEY = "edgy-token";
const FINISHED = ["succeeded", "failed", "cancelled"];
let teardown = [];  // what the current page must stop (timers, streams) when it is left

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

function token() { return sessionStorage.getItem(TOKEN_KEY); }

async function api(path, options = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + token() }, options.headers || {});
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401) { signOut("Your token was refused: sign in again."); throw new ApiError(401, "unauthorized", "signed out"); }
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const error = (body && body.error) || {};
    throw new ApiError(response.status, error.code || "error", error.message || response.statusText);
  }
  return body;
}

// h("a", {href: "#/x"}, "text", child…): an element; strings become text nodes.
function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function page(title, ...children) {
  const main = document.getElementById("main");
  main.replaceChildren(h("h2", {}, title), ...children);
  document.title = title + " · Edgy console";
  return main;
}

function announce(text) { document.getElementById("announce").textContent = text; }

function errorBox(error) {
  return h("p", { class: "error", role: "alert", "data-testid": "error" },
    error instanceof ApiError ? `${error.status} ${error.code}: ${error.message}` : String(error));
}

function statusCell(status) { return h("span", { class: "status-" + status, "data-testid": "status" }, status); }

function table(headings, rows, testid) {
  return h("table", { "data-testid": testid },
    h("thead", {}, h("tr", {}, headings.map((heading) => h("th", { scope: "col" }, heading)))),
    h("tbody", {}, rows));
}

// ---- Sign in --------------------------------------------------------------------------------

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  location.hash = "#/";
  render(message);
}

function signInPage(message) {
  document.getElementById("nav").hidden = true;
  const field = h("input", { id: "token", name: "token", type: "password", autocomplete: "off", required: true, size: 50 });
  const form = h("form", { "data-testid": "sign-in", onsubmit: async (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, field.value.trim());
    try {
      await api("/v1/tasks?limit=1");
      location.hash = "#/tasks";
      render();
    } catch (error) {
      sessionStorage.removeItem(TOKEN_KEY);
      form.append(errorBox(error));
    }
  } },
  h("label", { for: "token" }, "API token", field),
  h("p", { class: "muted" }, "Kept in this tab only (sessionStorage), and sent to this server alone."),
  h("button", { type: "submit" }, "Sign in"));
  page("Sign in", message ? h("p", { role: "status" }, message) : null, form);
  field.focus();
}

// ---- Tasks ----------------------------------------------------------------------------------

async function tasksPage() {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const status = h("select", { id: "filter-status", name: "status" },
    ["", "queued", "running", "succeeded", "failed", "cancelled"].map((value) =>
      h("option", { value, selected: params.get("status") === value }, value || "any")));
  const policy = h("input", { id: "filter-policy", name: "policy", value: params.get("policy") || "" });
  const name = h("input", { id: "filter-name", name: "name", value: params.get("name") || "" });
  const filters = h("form", { class: "filters", role: "search", onsubmit: (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    for (const [key, input] of [["status", status], ["policy", policy], ["name", name]]) if (input.value) query.set(key, input.value);
    location.hash = "#/tasks" + (query.toString() ? "?" + query : "");
  } },
  h("label", { for: "filter-status" }, "Status", status), h("label", { for: "filter-policy" }, "Policy", policy),
  h("label", { for: "filter-name" }, "Name", name), h("button", { type: "submit" }, "Filter"));
  const holder = h("div", { "aria-live": "polite" });
  page("Tasks", newTaskForm(), filters, holder);

  const refresh = async () => {
    const query = new URLSearchParams(params);
    query.set("limit", "100");
    try {
      const answer = await api("/v1/tasks?" + query);
      const rows = answer.tasks.map((task) => h("tr", { "data-task": task.id },
        h("td", {}, h("a", { href: "#/tasks/" + task.id }, task.name)), h("td", {}, task.policy), h("td", {}, statusCell(task.status)),
        h("td", {}, task.exit_code ?? ""), h("td", {}, task.created_at), h("td", { class: "muted" }, task.id)));
      holder.replaceChildren(rows.length ? table(["Name", "Policy", "Status", "Exit", "Created", "ID"], rows, "tasks")
        : h("p", { "data-testid": "tasks" }, "No tasks."));
    } catch (error) { holder.replaceChildren(errorBox(error)); }
  };
  await refresh();
  const timer = setInterval(refresh, 2000);  // live status
  teardown.push(() => clearInterval(timer));
}

// A new task from the page: a policy and its entry file's code (the policy's command runs it).
function newTaskForm() {
  const policy = h("select", { id: "new-policy", name: "policy", required: true });
  const code = h("textarea", { id: "new-input", name: "input", rows: 6, cols: 80, required: true, spellcheck: "false" });
  const stdin = h("textarea", { id: "new-stdin", name: "stdin", rows: 2, cols: 80, spellcheck: "false" });
  const form = h("form", { "data-testid": "new-task", onsubmit: async (event) => {
    event.preventDefault();
    for (const old of form.querySelectorAll("[data-testid=error]")) old.remove();
    try {
      const body = { policy: policy.value, input: code.value };
      if (stdin.value) body.stdin = stdin.value;
      const task = await api("/v1/tasks", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      location.hash = "#/tasks/" + task.id;
    } catch (error) { form.append(errorBox(error)); }
  } },
  h("label", { for: "new-policy" }, "Policy", policy), h("label", { for: "new-input" }, "Code (the policy's entry file)", code),
  h("label", { for: "new-stdin" }, "stdin (optional)", stdin), h("p", {}, h("button", { type: "submit" }, "Run")));
  api("/v1/policies").then((answer) => {
    policy.replaceChildren(...answer.policies.filter((item) => item.entry).map((item) => h("option", { value: item.name }, item.name)));
  }).catch(() => {});
  return h("details", {}, h("summary", {}, "New task"), form);
}

async function taskPage(id) {
  const main = page("Task " + id);
  let task;
  try { task = await api("/v1/tasks/" + encodeURIComponent(id)); } catch (error) { main.append(errorBox(error)); return; }
  const status = statusCell(task.status);
  const stdout = h("pre", { "data-testid": "stdout", "aria-label": "stdout" });
  const stderr = h("pre", { "data-testid": "stderr", "aria-label": "stderr" });
  const details = h("div", { "data-testid": "details" });
  const actions = h("p", {}, FINISHED.includes(task.status) ? null : h("button", { type: "button", onclick: async () => {
    try { await api(`/v1/tasks/${id}/cancel`, { method: "POST" }); announce("cancel requested"); } catch (error) { main.append(errorBox(error)); }
  } }, "Cancel"));
  main.append(
    h("dl", {}, h("dt", {}, "Name"), h("dd", {}, task.name), h("dt", {}, "Policy"), h("dd", {}, h("a", { href: "#/policies/" + task.policy }, task.policy)),
      h("dt", {}, "Tenant"), h("dd", {}, task.tenant), h("dt", {}, "Status"), h("dd", {}, status), h("dt", {}, "Created"), h("dd", {}, task.created_at)),
    actions, h("h3", {}, "stdout"), stdout, h("h3", {}, "stderr"), stderr, details);
  showDetails(task, details);

  // Live output: the SSE stream read through fetch (EventSource cannot send the token header).
  const abort = new AbortController();
  teardown.push(() => abort.abort());
  try {
    const response = await fetch(`/v1/tasks/${id}/events`, { headers: { Authorization: "Bearer " + token() }, signal: abort.signal });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let kind = "message"; const data = [];
        for (const line of frame.split("\n")) {
          if (line.startsWith("event: ")) kind = line.slice(7);
          else if (line.startsWith("data: ")) data.push(line.slice(6));
          else if (line === "data:") data.push("");
        }
        const text = data.join("\n");
        if (kind === "stdout") stdout.append(text);
        else if (kind === "stderr") stderr.append(text);
        else if (kind === "status") { status.textContent = text; status.className = "status-" + text; announce("status " + text); }
      }
    }
  } catch (error) {
    if (error.name !== "AbortError") main.append(errorBox(error));
    return;
  }
  try {
    task = await api("/v1/tasks/" + encodeURIComponent(id));
    status.textContent = task.status; status.className = "status-" + task.status;
    // The stream's text and the record's agree; the record's is whole even if the stream started late.
    if (task.stdout !== null) stdout.textContent = task.stdout;
    if (task.stderr !== null) stderr.textContent = task.stderr;
    actions.replaceChildren();
    showDetails(task, details);
  } catch (error) { main.append(errorBox(error)); }
}

function showDetails(task, holder) {
  const parts = [];
  const result = task.result;
  if (result) {
    parts.push(h("h3", {}, "Result"), h("dl", { "data-testid": "result" },
      [["Outcome", result.outcome], ["Exit code", result.exit_code], ["Signal", result.signal_name], ["Wall", result.wall_ms + " ms"],
        ["CPU", `${result.cpu_user_ms}+${result.cpu_sys_ms} ms`],
        ["Memory peak", result.memory_peak_bytes == null ? null : (result.memory_peak_bytes / 1048576).toFixed(1) + " MiB"],
        ["Seccomp", result.seccomp_syscall], ["Setup", result.setup && JSON.stringify(result.setup)]]
        .filter(([, value]) => value !== undefined && value !== null).flatMap(([key, value]) => [h("dt", {}, key), h("dd", {}, value)])));
    if (result.steps && result.steps.length) {
      parts.push(h("h3", {}, "Steps"), table(["Step", "Kind", "Status", "Outcome", "Cases"], result.steps.map((step) =>
        h("tr", {}, h("td", {}, step.name), h("td", {}, step.kind), h("td", {}, step.status), h("td", {}, step.outcome ?? ""),
          h("td", {}, step.summary ? `${step.summary.passed}/${step.summary.total}` : ""))), "steps"));
    }
    const cases = (result.steps || []).flatMap((step) => (step.cases || []).map((item) => [step.name, item]));
    if (cases.length) {
      const summary = result.cases;
      parts.push(h("h3", {}, "Cases"), summary ? h("p", { "data-testid": "cases-summary" },
        `${summary.passed} of ${summary.total} passed (${summary.run} run)`) : null,
      table(["Step", "Case", "Verdict", "Wall", "Detail"], cases.map(([step, item]) =>
        h("tr", {}, h("td", {}, step), h("td", {}, item.name ?? item.index), h("td", {}, item.verdict),
          h("td", {}, item.wall_ms + " ms"), h("td", {}, item.detail ?? ""))), "cases"));
    }
  }
  if (task.attempts && task.attempts.length) {
    parts.push(h("h3", {}, "Attempts"), table(["#", "Worker", "Started", "Finished", "Outcome"], task.attempts.map((attempt) =>
      h("tr", {}, h("td", {}, attempt.number), h("td", {}, attempt.worker), h("td", {}, attempt.started_at),
        h("td", {}, attempt.finished_at ?? ""), h("td", {}, attempt.outcome ?? ""))), "attempts"));
  }
  const files = h("div", { "data-testid": "files" });
  parts.push(files);
  holder.replaceChildren(...parts);
  if (FINISHED.includes(task.status)) {
    api(`/v1/tasks/${task.id}/files`).then((answer) => {
      if (!answer.files || !answer.files.length) return;
      files.replaceChildren(h("h3", {}, "Files"), table(["Path", "Size", "SHA-256"], answer.files.map((file) =>
        h("tr", {}, h("td", {}, h("button", { type: "button", onclick: () => download(task.id, file.path) }, file.path)),
          h("td", {}, file.size), h("td", { class: "muted" }, file.sha256))), "file-list"));
    }).catch(() => {});
  }
}

async function download(id, path) {
  const response = await fetch(`/v1/tasks/${id}/files/${path.split("/").map(encodeURIComponent).join("/")}`,
    { headers: { Authorization: "Bearer " + token() } });
  const link = h("a", { href: URL.createObjectURL(await response.blob()), download: path.split("/").pop() });
  link.click();
  URL.revokeObjectURL(link.href);
}

// ---- Policies, workers, audit ----------------------------------------------------------------

async function policiesPage() {
  const main = page("Policies");
  try {
    const answer = await api("/v1/policies");
    main.append(table(["Name", "Description", "Digest"], answer.policies.map((policy) =>
      h("tr", {}, h("td", {}, h("a", { href: "#/policies/" + policy.name }, policy.name)), h("td", {}, policy.description),
        h("td", { class: "muted" }, policy.digest.slice(0, 16) + "…"))), "policies"));
  } catch (error) { main.append(errorBox(error)); }
}

async function policyPage(name) {
  const main = page("Policy " + name);
  try {
    const policy = await api("/v1/policies/" + encodeURIComponent(name));
    main.append(h("p", {}, policy.description), h("dl", {}, h("dt", {}, "Digest"), h("dd", { "data-testid": "digest" }, policy.digest)),
      h("h3", {}, "Effective policy"), h("pre", { "data-testid": "toml" }, policy.toml));
  } catch (error) { main.append(errorBox(error)); }
}

async function workersPage() {
  const main = page("Workers");
  try {
    const answer = await api("/v1/workers");
    main.append(table(["ID", "Host", "Slots", "Kernel", "cgroup", "Started", "Last heartbeat"], answer.workers.map((worker) =>
      h("tr", {}, h("td", {}, worker.id), h("td", {}, worker.host), h("td", {}, worker.slots), h("td", {}, worker.kernel),
        h("td", {}, "v" + worker.cgroup_version), h("td", {}, worker.started_at), h("td", {}, worker.last_heartbeat))), "workers"));
  } catch (error) { main.append(errorBox(error)); }
}

async function auditPage() {
  const main = page("Audit log");
  try {
    const answer = await api("/v1/audit?limit=200");
    main.append(table(["Time", "Action", "Result", "By", "Tenant", "Detail"], answer.entries.map((entry) =>
      h("tr", {}, h("td", {}, entry.time), h("td", {}, entry.action), h("td", {}, entry.result),
        h("td", {}, entry.principal_name ?? ""), h("td", {}, entry.tenant ?? ""), h("td", {}, entry.detail ?? entry.path ?? ""))), "audit"));
  } catch (error) { main.append(errorBox(error)); }
}

// ---- Routing --------------------------------------------------------------------------------

async function render(message) {
  for (const stop of teardown) stop();
  teardown = [];
  if (!token()) { signInPage(message); return; }
  document.getElementById("nav").hidden = false;
  const path = location.hash.replace(/^#/, "").split("?")[0] || "/tasks";
  for (const link of document.querySelectorAll("nav a")) {
    link.toggleAttribute("aria-current", path.startsWith(link.getAttribute("href").slice(1)));
    if (link.hasAttribute("aria-current")) link.setAttribute("aria-current", "page");
  }
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "tasks" && parts[1]) await taskPage(parts[1]);
  else if (parts[0] === "policies" && parts[1]) await policyPage(parts[1]);
  else if (parts[0] === "policies") await policiesPage();
  else if (parts[0] === "workers") await workersPage();
  else if (parts[0] === "audit") await auditPage();
  else await tasksPage();
  document.getElementById("main").focus({ preventScroll: true });
}

window.addEventListener("hashchange", () => render());
window.addEventListener("DOMContentLoaded", () => {
  document.getElementById("sign-out").addEventListener("click", () => signOut("Signed out."));
  render();
});
