// The toolbar popup: connection state, approvals to answer, recent jobs, "run a skill on this tab".
// It only talks to the service worker, which relays to the agent over native messaging.

const $ = (id) => document.getElementById(id);

function ask(popup, args) {
  return new Promise((resolve) => {
    chrome.runtime.sendMessage({ popup, args }, (reply) => {
      if (chrome.runtime.lastError) resolve({ ok: false, error: { message: chrome.runtime.lastError.message } });
      else resolve(reply || { ok: false, error: { message: 'no answer' } });
    });
  });
}

function text(tag, content, cls) {
  const el = document.createElement(tag);
  el.textContent = content;
  if (cls) el.className = cls;
  return el;
}

function fill(list, items, render, empty) {
  list.replaceChildren(...(items.length ? items.map(render) : [text('li', empty, 'empty')]));
}

async function currentTab() {
  const [tab] = await chrome.tabs.query({ active: true, currentWindow: true });
  return tab;
}

async function refresh() {
  const state = await ask('state');
  const up = state.ok && state.result.connected;
  $('state').textContent = up ? 'connected' : 'not connected: ' + ((state.result && state.result.error) || '');
  $('state').className = 'state ' + (up ? 'ok' : 'down');

  const tab = await currentTab();
  let origin = null;
  try { origin = tab && new URL(tab.url).origin; } catch (_) { origin = null; }
  $('tab-origin').textContent = origin || 'no web page in this tab';
  if (origin && origin.startsWith('http')) {
    const allowed = await chrome.permissions.contains({ origins: [origin + '/*'] });
    $('allow').hidden = allowed;
  }
  if (!up) return;

  const approvals = await ask('approvals');
  fill($('approvals'), (approvals.ok && approvals.result) || [], (a) => {
    const li = document.createElement('li');
    li.dataset.id = a.id;
    li.append(text('div', `${a.action} → ${a.target}`), text('div', JSON.stringify(a.preview, null, 1), 'preview'));
    for (const [label, approve] of [['Approve', true], ['Refuse', false]]) {
      const b = text('button', label);
      b.type = 'button';
      b.className = approve ? 'approve' : 'refuse';
      b.addEventListener('click', async () => {
        const r = await ask('decide', { id: a.id, approve });
        li.replaceChildren(text('div', r.ok ? (approve ? 'Approved' : 'Refused') : ('Failed: ' + r.error.message)));
      });
      li.append(b);
    }
    return li;
  }, 'Nothing is waiting.');

  const jobs = await ask('jobs');
  fill($('jobs'), (jobs.ok && jobs.result) || [], (j) => text('li', `${j.state} · ${j.skill} · ${j.id}`), 'No jobs yet.');

  const skills = await ask('skills');
  const select = $('skill');
  select.replaceChildren(...((skills.ok && skills.result) || []).map((s) => {
    const o = text('option', s.name);
    o.value = s.name;
    return o;
  }));
}

$('allow').addEventListener('click', async () => {
  const tab = await currentTab();
  const origin = new URL(tab.url).origin;
  // A click in the popup is the user gesture Chrome needs to ask for the permission.
  await chrome.permissions.request({ origins: [origin + '/*'] });
  refresh();
});

$('run').addEventListener('submit', async (e) => {
  e.preventDefault();
  const tab = await currentTab();
  const r = await ask('run', { skill: $('skill').value, target: 'tab:' + tab.id });
  $('run-result').textContent = r.ok ? `Started job ${r.result.id}` : `Could not start: ${r.error.message}`;
  refresh();
});

$('ask').addEventListener('submit', async (e) => {
  e.preventDefault();
  const r = await ask('ask', { text: $('ask-text').value });
  $('ask-result').textContent = r.ok ? `Started job ${r.result.id}` : `Could not start: ${r.error.message}`;
  if (r.ok) $('ask-text').value = '';
  refresh();
});

refresh();
