// Deskhand service worker: the extension's only link to the agent (native messaging), and the
// runner of the agent's commands in the person's tabs.
//
// Chrome may stop this worker at any time. Nothing here survives that on purpose: on every start
// the worker reconnects to the native host, and the agent fails whatever command was in flight
// when the port closed (it sees the host exit). State is rebuilt, never restored.

const HOST = 'com.deskhand.agent';
// What the in-page script's short call returns when this document does not have it yet.
const MISSING = '__deskhand_missing__';
// Native messages from the host are limited to 1 MB; the host splits larger ones into chunks.
const chunks = new Map();

let port = null;
let agent = { connected: false, error: 'not connected yet', agent: null };
let retryMs = 500;
let retryTimer = null;
// Popup requests waiting for the agent's reply: rid -> resolve.
const replies = new Map();
let nextRid = 1;

function connect() {
  if (port) return;
  clearTimeout(retryTimer);
  retryTimer = null;
  try {
    port = chrome.runtime.connectNative(HOST);
  } catch (e) {
    agent = { connected: false, error: String(e && e.message || e), agent: null };
    scheduleReconnect();
    return;
  }
  // Filters left by a job whose agent went away while this worker slept: no job can be running
  // in a tab before the agent hears our hello.
  unguardAll().catch(() => {});
  port.onMessage.addListener(onHostMessage);
  port.onDisconnect.addListener(() => {
    const why = chrome.runtime.lastError ? chrome.runtime.lastError.message : 'the native host exited';
    agent = { connected: false, error: why, agent: null };
    port = null;
    for (const [, resolve] of replies) resolve({ ok: false, error: { code: 'disconnected', message: why } });
    replies.clear();
    // With the agent gone no job will lift its tab filters: give the person their tabs back.
    unguardAll().catch(() => {});
    scheduleReconnect();
  });
  const manifest = chrome.runtime.getManifest();
  port.postMessage({ type: 'hello', extension_id: chrome.runtime.id, version: manifest.version });
}

function scheduleReconnect() {
  if (retryTimer) return;
  retryTimer = setTimeout(() => { retryTimer = null; connect(); }, retryMs);
  retryMs = Math.min(retryMs * 2, 30000);
}

function send(msg) {
  if (port) port.postMessage(msg);
}

function onHostMessage(msg) {
  if (msg && msg.chunk !== undefined) {
    // {chunk: id, seq, total, data}: reassemble, then handle the whole message.
    const parts = chunks.get(msg.chunk) || [];
    parts[msg.seq] = msg.data;
    chunks.set(msg.chunk, parts);
    if (parts.filter((p) => p !== undefined).length === msg.total) {
      chunks.delete(msg.chunk);
      onHostMessage(JSON.parse(parts.join('')));
    }
    return;
  }
  if (msg.type === 'welcome') {
    agent = { connected: true, error: null, agent: msg.agent || null };
    retryMs = 500;
    return;
  }
  if (msg.type === 'agent_down') {
    agent = { connected: false, error: msg.message, agent: null };
    return;
  }
  if (msg.reply !== undefined) {
    const resolve = replies.get(msg.reply);
    replies.delete(msg.reply);
    if (resolve) resolve(msg);
    return;
  }
  if (msg.id !== undefined && msg.op) {
    run(msg).then(
      (result) => send({ id: msg.id, ok: true, result }),
      (err) => send({ id: msg.id, ok: false, error: describeError(err, msg) }),
    );
  }
}

// ------------------------------------------------------------------------------- commands

class CommandError extends Error {
  constructor(code, message) { super(message); this.code = code; }
}

function describeError(err, msg) {
  if (err instanceof CommandError) return { code: err.code, message: err.message };
  const text = String(err && err.message || err);
  if (/No tab with id/i.test(text)) return { code: 'no_tab', message: `tab ${msg.tab} is gone (closed?): ${text}` };
  if (/Cannot access|must request permission/i.test(text)) {
    return { code: 'no_host_access', message: `Deskhand may not act on this site yet: open the Deskhand popup on that tab and choose "Allow on this site" (${text})` };
  }
  if (/showing error page/i.test(text)) return { code: 'error_page', message: `the tab shows an error page: ${text}` };
  return { code: 'script', message: text };
}

async function run(msg) {
  switch (msg.op) {
    case 'tabs': return listTabs();
    case 'open': return openTab(msg.url, msg.timeout_ms || 30000, msg.guard);
    case 'guard': return guardTab(msg.tab, msg.allow || [], msg.deny || []);
    case 'unguard': return unguardTab(msg.tab);
    case 'navigate': return navigate(msg.tab, msg.url, msg.timeout_ms || 30000);
    case 'url': return (await chrome.tabs.get(msg.tab)).url;
    case 'html': return inTab(msg.tab, () => document.documentElement.outerHTML, []);
    case 'call': return callScript(msg.tab, msg.method, msg.args || []);
    case 'probe': return inTab(msg.tab, probe, [msg.kind, msg.marker]);
    case 'screenshot': return screenshot(msg.tab);
    default: throw new CommandError('unknown_op', `unknown command ${JSON.stringify(msg.op)}; this extension knows tabs, open, navigate, url, html, call, probe, screenshot`);
  }
}

async function listTabs() {
  const tabs = await chrome.tabs.query({});
  return tabs.map((t) => ({ id: t.id, url: t.url || '', title: t.title || '', active: !!t.active, window: t.windowId }));
}

function originOf(url) {
  try { const u = new URL(url); return u.protocol.startsWith('http') ? u.origin : null; } catch (_) { return null; }
}

// Host access is granted per origin (optional_host_permissions), never up front.
async function requireAccess(url) {
  const origin = originOf(url);
  if (!origin) throw new CommandError('unsupported_page', `Deskhand acts only on http(s) pages, not ${url}`);
  const ok = await chrome.permissions.contains({ origins: [origin + '/*'] });
  if (!ok) {
    throw new CommandError('no_host_access', `Deskhand may not act on ${origin} yet: open the Deskhand popup on that tab and choose "Allow on this site"`);
  }
}

async function inTab(tabId, func, args) {
  const tab = await chrome.tabs.get(tabId);
  await requireAccess(tab.url || tab.pendingUrl || '');
  const [res] = await chrome.scripting.executeScript({ target: { tabId }, func, args });
  if (!res) throw new CommandError('script', `tab ${tabId} gave no result`);
  return res.result === undefined ? null : res.result;
}

// Calls the in-page API; loads the shared script (content/deskhand.js) first when needed.
async function callScript(tabId, method, args) {
  const call = (m, a, missing) => (globalThis.__deskhand && globalThis.__deskhand.version === 1)
    ? globalThis.__deskhand[m](...a) : missing;
  let v = await inTab(tabId, call, [method, args, MISSING]);
  if (v === MISSING) {
    await chrome.scripting.executeScript({ target: { tabId }, files: ['content/deskhand.js'] });
    v = await inTab(tabId, call, [method, args, MISSING]);
  }
  return v;
}

function probe(kind, marker) {
  if (kind === 'nav') {
    return { same: window.__deskhandNav === marker, started: !!window.__deskhandNavStarted, ready: document.readyState };
  }
  return { same: window.__deskhandNav === marker, miss: window.__deskhandHit === marker ? null : (window.__deskhandMiss || null) };
}

// Resolves when the tab has finished loading a page other than the blank one a new tab starts on.
function waitComplete(tabId, timeoutMs) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      chrome.tabs.onUpdated.removeListener(listener);
      reject(new CommandError('timeout', `the page in tab ${tabId} did not finish loading within ${timeoutMs} ms`));
    }, timeoutMs);
    function listener(id, change, tab) {
      if (id !== tabId || change.status !== 'complete' || tab.url === 'about:blank') return;
      clearTimeout(timer);
      chrome.tabs.onUpdated.removeListener(listener);
      resolve(tab);
    }
    chrome.tabs.onUpdated.addListener(listener);
  });
}

async function navigate(tabId, url, timeoutMs) {
  await requireAccess(url);
  const done = waitComplete(tabId, timeoutMs);
  await loadUrl(tabId, url);
  const tab = await done;
  await checkLoaded(tabId, url);
  return { tab: tabId, url: tab.url };
}

// Chromium refuses, without saying why, a navigation it cannot start at this instant ("Navigation
// rejected.", seen for a tab still settling on its first blank page); a moment later it starts.
async function loadUrl(tabId, url) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await chrome.tabs.update(tabId, { url });
    } catch (e) {
      if (attempt >= 5 || !/Navigation rejected/i.test(String(e && e.message || e))) throw e;
      await new Promise((r) => setTimeout(r, 50 * attempt));
    }
  }
}

// A new tab's blank page has finished loading (or a second has passed): a navigation started
// before that can be refused, and its "complete" must not be taken for the job's page.
async function blankSettled(tabId) {
  for (let i = 0; i < 50; i++) {
    const t = await chrome.tabs.get(tabId);
    if (t.status === 'complete') return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function openTab(url, timeoutMs, guard) {
  await requireAccess(url);
  const tab = await chrome.tabs.create({ url: 'about:blank', active: true });
  // The filters are on before the tab's first request, so its very first page cannot lead away.
  if (guard) await guardTab(tab.id, guard.allow || [], guard.deny || []);
  await blankSettled(tab.id);
  const done = waitComplete(tab.id, timeoutMs);
  await loadUrl(tab.id, url);
  const loaded = await done;
  try {
    await checkLoaded(tab.id, url);
  } catch (e) {
    // Its first page led it elsewhere and the filters stopped that: the agent checks the URL and
    // reports the refusal. Any other failure is the start page's own.
    const now = (await chrome.tabs.get(tab.id)).url || '';
    if (guard && now && now !== url) return { tab: tab.id, url: now, led_away: true };
    throw e;
  }
  return { tab: tab.id, url: loaded.url };
}

// ---- navigation filters: a job's tab may load documents only from the job's allowed origins ----
// Session rules (declarativeNetRequest) block in the browser, before a request leaves: a redirect,
// a script changing location, a link or a form to another origin fails with
// ERR_BLOCKED_BY_CLIENT, and the agent's check after the action reports it. Per tab: block every
// document request (priority 1), allow the job's origins (2), block its denied ones (3).
const RULES_PER_TAB = 64;
function ruleIds(tabId) {
  const base = (tabId % 1000000) * RULES_PER_TAB + 1;
  return Array.from({ length: RULES_PER_TAB }, (_, i) => base + i);
}

async function guardTab(tabId, allow, deny) {
  if (allow.length + deny.length + 1 > RULES_PER_TAB) {
    throw new CommandError('invalid', `too many origin rules for one tab (${allow.length + deny.length})`);
  }
  const ids = ruleIds(tabId);
  const rule = (i, priority, type, regexFilter) => ({
    id: ids[i], priority, action: { type },
    condition: Object.assign({ tabIds: [tabId], resourceTypes: ['main_frame', 'sub_frame'] }, regexFilter ? { regexFilter } : {}),
  });
  const addRules = [rule(0, 1, 'block')];
  allow.forEach((re, i) => addRules.push(rule(1 + i, 2, 'allow', re)));
  deny.forEach((re, i) => addRules.push(rule(1 + allow.length + i, 3, 'block', re)));
  await chrome.declarativeNetRequest.updateSessionRules({ removeRuleIds: ids, addRules });
  return { tab: tabId, rules: addRules.length };
}

async function unguardTab(tabId) {
  await chrome.declarativeNetRequest.updateSessionRules({ removeRuleIds: ruleIds(tabId) });
  return { tab: tabId };
}

async function unguardAll() {
  const rules = await chrome.declarativeNetRequest.getSessionRules();
  await chrome.declarativeNetRequest.updateSessionRules({ removeRuleIds: rules.map((r) => r.id) });
}

// An error page loads "complete" too; scripting refuses it, which tells them apart.
async function checkLoaded(tabId, url) {
  try {
    await chrome.scripting.executeScript({ target: { tabId }, func: () => document.readyState });
  } catch (e) {
    if (/error page/i.test(String(e && e.message))) {
      throw new CommandError('navigation', `${url} did not load (the tab shows an error page)`);
    }
    throw e;
  }
}

async function screenshot(tabId) {
  const tab = await chrome.tabs.get(tabId);
  await requireAccess(tab.url || '');
  if (!tab.active) await chrome.tabs.update(tabId, { active: true });
  return chrome.tabs.captureVisibleTab(tab.windowId, { format: 'png' });
}

// ------------------------------------------------------------------------------- popup

// The popup asks through here: {popup: op, ...} -> the agent's answer.
chrome.runtime.onMessage.addListener((msg, _sender, sendResponse) => {
  if (!msg || !msg.popup) return false;
  if (msg.popup === 'state') {
    sendResponse({ ok: true, result: agent });
    return false;
  }
  if (!port || !agent.connected) {
    connect();
    sendResponse({ ok: false, error: { code: 'not_connected', message: agent.error || 'the agent is not connected' } });
    return false;
  }
  const rid = nextRid++;
  replies.set(rid, sendResponse);
  send({ type: 'request', rid, op: msg.popup, args: msg.args || {} });
  return true; // answered asynchronously
});

// Any of these wakes the worker; connecting at top level covers them all.
chrome.runtime.onStartup.addListener(() => connect());
chrome.runtime.onInstalled.addListener(() => connect());
chrome.tabs.onUpdated.addListener(() => connect());
connect();
