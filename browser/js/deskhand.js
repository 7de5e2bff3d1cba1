// Deskhand's in-page script: the ONE place where pages are read and changed.
//
// Every backend (CDP, WebDriver) evaluates this file as an expression that yields the API object, and
// the Chrome extension loads the same file as a content script. It must stay self-contained: plain
// browser JavaScript, no imports, no globals other than `__deskhand` (checked by a unit test in
// browser/src/script.rs).
//
// Design: in-page calls never throw for page conditions. They return tagged outcomes
// (`{status: "ok" | "not_found" | "ambiguous" | "hidden" | "disabled" | "readonly" | "unstable" |
// "covered" | "bad_value" | "invalid", ...}`) and Rust owns the retry ladder and the final error text.
// A whole form is located, filled, read back and (optionally) submitted in one call, so a backend
// needs one round trip per form rather than one per field.
(() => {
  'use strict';
  const VERSION = 1;
  if (globalThis.__deskhand && globalThis.__deskhand.version === VERSION) return globalThis.__deskhand;

  // ---------------------------------------------------------------- text helpers

  /** Lowercase, drop punctuation and required-markers, collapse whitespace. */
  function norm(s) {
    return String(s == null ? '' : s)
      .normalize('NFKC')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}]+/gu, ' ')
      .trim();
  }

  /** How well a page text `t` answers a person's query `q` (both normalized); 0 = no match. */
  function matchScore(q, t) {
    if (!q || !t) return 0;
    if (t === q) return 4; // exact
    if (t.startsWith(q + ' ')) return 3; // "director" for "director name"
    if (q.startsWith(t + ' ')) return 2; // "email address" for "email"
    if ((' ' + t + ' ').includes(' ' + q + ' ')) return 1; // whole words inside
    return 0;
  }
  const SCORE_NAME = ['none', 'contains', 'prefix', 'prefix', 'exact'];

  /** Rough similarity for "closest candidates" in error messages (shared words, then shared prefix). */
  function similarity(q, t) {
    if (!q || !t) return 0;
    const qw = new Set(q.split(' '));
    const tw = t.split(' ');
    let shared = 0;
    for (const w of tw) if (qw.has(w)) shared++;
    let p = 0;
    while (p < q.length && p < t.length && q[p] === t[p]) p++;
    return shared * 10 + Math.min(p, 9) - Math.abs(q.length - t.length) / 50;
  }

  const SKIP_TEXT = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'INPUT', 'SELECT', 'TEXTAREA', 'OPTION']);

  /** Visible-ish text of a node, leaving out form controls (a wrapping label's select options, say). */
  function textOf(node, limit = 300) {
    let out = '';
    const walk = (n) => {
      if (out.length > limit) return;
      if (n.nodeType === 3) {
        out += n.nodeValue;
        return;
      }
      if (n.nodeType !== 1 && n.nodeType !== 11) return;
      if (n.nodeType === 1) {
        if (SKIP_TEXT.has(n.tagName)) return;
        if (n.hidden || n.getAttribute('aria-hidden') === 'true') return;
        if (n.tagName === 'BR') out += ' ';
      }
      for (const c of n.childNodes) walk(c);
      if (n.nodeType === 1 && isBlock(n)) out += ' ';
    };
    walk(node);
    return out.replace(/\s+/g, ' ').trim();
  }

  function isBlock(el) {
    return /^(DIV|P|LI|TD|TH|TR|H[1-6]|SECTION|ARTICLE|HEADER|FOOTER|DT|DD|LABEL|LEGEND)$/.test(el.tagName);
  }

  // ---------------------------------------------------------------- the DOM, across frames and shadow roots

  /** Every document and open shadow root reachable from the top document (same-origin iframes only). */
  function allRoots() {
    const roots = [];
    const visit = (root) => {
      roots.push(root);
      const all = root.querySelectorAll('*');
      for (const el of all) {
        if (el.shadowRoot) visit(el.shadowRoot);
        if (el.tagName === 'IFRAME' || el.tagName === 'FRAME') {
          let doc = null;
          try {
            doc = el.contentDocument;
          } catch (_) {
            doc = null; // cross-origin: not ours to read
          }
          if (doc && doc.documentElement) visit(doc);
        }
      }
    };
    visit(document);
    return roots;
  }

  function deepQueryAll(roots, selector) {
    const out = [];
    for (const r of roots) {
      try {
        for (const el of r.querySelectorAll(selector)) out.push(el);
      } catch (e) {
        return { error: 'invalid CSS selector ' + JSON.stringify(selector) + ': ' + e.message };
      }
    }
    return out;
  }

  function byId(el, id) {
    const root = el.getRootNode();
    return (root.getElementById ? root.getElementById(id) : null) || el.ownerDocument.getElementById(id);
  }

  // ---------------------------------------------------------------- element state

  function winOf(el) {
    return el.ownerDocument.defaultView || window;
  }

  function isVisible(el) {
    if (!el.isConnected) return false;
    if (typeof el.checkVisibility === 'function') {
      if (!el.checkVisibility({ visibilityProperty: true, opacityProperty: false })) return false;
    } else {
      const st = winOf(el).getComputedStyle(el);
      if (st.display === 'none' || st.visibility === 'hidden') return false;
    }
    const r = el.getBoundingClientRect();
    if (r.width <= 0 || r.height <= 0) return false;
    // An element inside a hidden iframe is not visible either.
    const frame = winOf(el).frameElement;
    return frame ? isVisible(frame) : true;
  }

  function isDisabled(el) {
    if (el.disabled) return true;
    if (el.closest && el.closest('[aria-disabled="true"]')) return true;
    const fs = el.closest && el.closest('fieldset[disabled]');
    if (fs) {
      const legend = fs.querySelector('legend');
      if (!legend || !legend.contains(el)) return true;
    }
    return false;
  }

  function isEditable(el) {
    if (el.isContentEditable) return true;
    return !(el.readOnly || el.getAttribute('aria-readonly') === 'true');
  }

  function describe(el) {
    if (!el || !el.tagName) return String(el);
    let d = el.tagName.toLowerCase();
    if (el.id) d += '#' + el.id;
    const type = el.getAttribute('type');
    if (type) d += '[type=' + type + ']';
    const name = el.getAttribute('name');
    if (name) d += '[name=' + name + ']';
    if (!el.id && el.classList && el.classList.length) d += '.' + Array.from(el.classList).slice(0, 2).join('.');
    if (winOf(el) !== window) d += ' (in iframe)';
    else if (el.getRootNode() !== document) d += ' (in shadow root)';
    return d;
  }

  /** Rect in top-level viewport coordinates (adds the offsets of enclosing iframes). */
  function topRect(el) {
    const r = el.getBoundingClientRect();
    let x = r.left;
    let y = r.top;
    let w = winOf(el);
    while (w !== window && w.frameElement) {
      const fr = w.frameElement.getBoundingClientRect();
      const st = w.parent.getComputedStyle(w.frameElement);
      x += fr.left + parseFloat(st.borderLeftWidth || '0') + parseFloat(st.paddingLeft || '0');
      y += fr.top + parseFloat(st.borderTopWidth || '0') + parseFloat(st.paddingTop || '0');
      w = w.parent;
    }
    return { x, y, width: r.width, height: r.height };
  }

  // A tab in the background gets no animation frames at all (the extension acts in the person's
  // tabs, not only the one in front); a timer still fires there, if throttled.
  function nextFrame() {
    if (document.visibilityState === 'hidden') return new Promise((res) => setTimeout(res, 16));
    return new Promise((res) => requestAnimationFrame(() => res()));
  }

  // ---------------------------------------------------------------- controls and their labels

  const TEXTLIKE = new Set([
    'text', 'email', 'password', 'number', 'tel', 'url', 'search', 'date', 'time', 'datetime-local',
    'month', 'week', 'color', 'range', '',
  ]);
  const NOT_CONTROLS = new Set(['hidden', 'submit', 'button', 'reset', 'image', 'file']);

  function controlKind(el) {
    const tag = el.tagName;
    if (tag === 'INPUT') {
      const t = (el.getAttribute('type') || 'text').toLowerCase();
      if (NOT_CONTROLS.has(t)) return null;
      if (t === 'checkbox') return 'checkbox';
      if (t === 'radio') return 'radio';
      if (t === 'range') return 'slider';
      if (el.getAttribute('role') === 'spinbutton') return 'spinner';
      return TEXTLIKE.has(t) ? 'text' : 'text';
    }
    if (tag === 'TEXTAREA') return 'text';
    if (tag === 'SELECT') return 'select';
    const role = el.getAttribute('role');
    if (role === 'checkbox' || role === 'switch') return 'checkbox';
    if (role === 'radio') return 'radio';
    if (el.isContentEditable && !(el.parentElement && el.parentElement.isContentEditable)) return 'editable';
    if (role === 'textbox' || role === 'searchbox') return 'editable';
    if (role === 'slider') return 'slider';
    if (role === 'spinbutton') return 'spinner';
    // A combobox that is not a text field is a select made of divs (ARIA "select-only combobox");
    // one that wraps a text field (ARIA 1.1) is that field's frame, and the field is the control.
    if (role === 'combobox' && el.querySelector('input, textarea, [contenteditable]')) return null;
    if (role === 'combobox' || (tag === 'BUTTON' && el.getAttribute('aria-haspopup') === 'listbox')) return 'listbox';
    // A listbox a combobox or autocomplete owns is that control's popup, not a field of its own.
    if (role === 'listbox') return isOwnedList(el) ? null : 'listbox';
    if (tag === 'BUTTON' && el.hasAttribute('aria-pressed')) return 'checkbox';
    return null;
  }

  function isOwnedList(el) {
    if (!el.id) return false;
    const id = el.id.replace(/["\\]/g, '\\$&');
    return !!el.getRootNode().querySelector('[aria-controls~="' + id + '"], [aria-owns~="' + id + '"]');
  }

  function allControls(roots) {
    const out = [];
    const sel = 'input, textarea, select, [contenteditable], [role=textbox], [role=combobox], [role=searchbox], ' +
      '[role=checkbox], [role=switch], [role=radio], [role=listbox], [role=slider], [role=spinbutton], ' +
      'button[aria-pressed], button[aria-haspopup=listbox]';
    for (const r of roots) for (const el of r.querySelectorAll(sel)) if (controlKind(el)) out.push(el);
    return out;
  }

  // Label sources, best first. `tier` breaks ties between equally good text matches: a label the page
  // author tied to the field beats one we infer from layout.
  // Spec: accessible name computation (https://www.w3.org/TR/accname-1.2/#computation-steps), steps 2B
  // (aria-labelledby), 2C (aria-label), 2D (native label) — then the layouts people build without them.
  function labelsOf(el, kind) {
    const out = [];
    const add = (text, how, tier) => {
      const t = text == null ? '' : String(text).replace(/\s+/g, ' ').trim();
      if (t) out.push({ text: t, norm: norm(t), how, tier });
    };
    const lb = el.getAttribute('aria-labelledby');
    if (lb) {
      add(lb.split(/\s+/).map((id) => { const n = byId(el, id); return n ? textOf(n) : ''; }).join(' '),
        'aria-labelledby', 0);
    }
    add(el.getAttribute('aria-label'), 'aria-label', 0);
    // A toggle button ("Window seat", pressed or not) is named by its own text.
    if (el.tagName === 'BUTTON' && el.hasAttribute('aria-pressed')) add(textOf(el), 'own text', 0);
    if (el.labels) {
      for (const l of el.labels) add(textOf(l), l.contains(el) ? 'wrapping label' : 'label[for]', 0);
    }
    add(el.getAttribute('placeholder'), 'placeholder', 1);
    add(el.getAttribute('title'), 'title', 1);
    const cell = el.closest('td, th');
    if (cell) {
      const row = cell.parentElement;
      if (row && row.tagName === 'TR') {
        for (const c of row.children) {
          if (c === cell) break;
          if (!c.querySelector('input, select, textarea')) add(textOf(c), c.tagName === 'TH' ? 'table row header' : 'table row cell', 2);
        }
      }
    }
    const before = nearText(el, 'previous');
    if (before) add(before, 'text before', 2);
    const after = nearText(el, 'next');
    if (after) add(after, 'text after', kind === 'checkbox' || kind === 'radio' ? 2 : 3);
    const nm = el.getAttribute('name');
    if (nm) add(nm.replace(/[_\-.\[\]]+/g, ' ').replace(/([a-z])([A-Z])/g, '$1 $2'), 'name', 4);
    if (el.id) add(el.id.replace(/[_\-.]+/g, ' ').replace(/([a-z])([A-Z])/g, '$1 $2'), 'id', 4);
    return out;
  }

  /** Short text in the sibling just before/after the control, climbing wrappers that hold only it. */
  function nearText(el, dir) {
    let cur = el;
    for (let depth = 0; depth < 3 && cur; depth++) {
      let sib = dir === 'previous' ? cur.previousSibling : cur.nextSibling;
      while (sib) {
        if (sib.nodeType === 3) {
          const t = sib.nodeValue.replace(/\s+/g, ' ').trim();
          if (t) return t.length <= 80 ? t : null;
        } else if (sib.nodeType === 1) {
          if (SKIP_TEXT.has(sib.tagName) || sib.tagName === 'BUTTON') return null;
          if (sib.tagName === 'LABEL' && sib.control && sib.control !== el) return null; // another field's label
          if (sib.querySelector && sib.querySelector('input, select, textarea, button')) return null;
          const t = textOf(sib);
          if (t) return t.length <= 80 ? t : null;
        }
        sib = dir === 'previous' ? sib.previousSibling : sib.nextSibling;
      }
      // Climb only through wrappers whose one job is to hold this control.
      const parent = cur.parentElement;
      if (!parent || parent === document.body || parent.tagName === 'FORM' || parent.tagName === 'TD' || parent.tagName === 'TH') return null;
      const controls = parent.querySelectorAll('input, select, textarea, [contenteditable]');
      if (controls.length > 1) return null;
      if (parent.tagName === 'LABEL') return null;
      cur = parent;
    }
    return null;
  }

  /** The caption of a radio group: legend, role=radiogroup name, or the text before the first radio. */
  function groupLabelsOf(radio) {
    const out = [];
    const add = (text, how, tier) => {
      const t = text == null ? '' : String(text).replace(/\s+/g, ' ').trim();
      if (t) out.push({ text: t, norm: norm(t), how, tier });
    };
    const fs = radio.closest('fieldset');
    if (fs) {
      const lg = fs.querySelector('legend');
      if (lg) add(textOf(lg), 'fieldset legend', 0);
    }
    const rg = radio.closest('[role=radiogroup]');
    if (rg) {
      add(rg.getAttribute('aria-label'), 'radiogroup aria-label', 0);
      const lb = rg.getAttribute('aria-labelledby');
      if (lb) add(lb.split(/\s+/).map((id) => { const n = byId(rg, id); return n ? textOf(n) : ''; }).join(' '), 'radiogroup aria-labelledby', 0);
    }
    const name = radio.getAttribute('name');
    if (name) {
      const group = groupOf(radio);
      const first = group[0] || radio;
      const before = nearText(first, 'previous');
      if (before) add(before, 'text before group', 2);
      add(name.replace(/[_\-.\[\]]+/g, ' '), 'name', 4);
    }
    return out;
  }

  function groupOf(radio) {
    const name = radio.getAttribute('name');
    if (!name) return [radio];
    const scope = radio.form || radio.getRootNode();
    return Array.from(scope.querySelectorAll('input[type=radio]')).filter((r) => r.getAttribute('name') === name);
  }

  // ---------------------------------------------------------------- locating

  /**
   * Rank elements by how well one of their names answers `query`.
   * Returns {best: [{el, label, score, tier}], near: [{text, el}]}.
   */
  function rank(query, items) {
    const q = norm(query);
    let best = [];
    let bestKey = null;
    for (const { el, names } of items) {
      let top = null;
      for (const n of names) {
        // Attributes (name, id) are what a developer wrote, not what a person reads: they count one
        // step less than visible text with the same kind of match.
        const s = matchScore(q, n.norm) - (n.tier >= 4 ? 1 : 0);
        if (s > 0 && (!top || s > top.score || (s === top.score && n.tier < top.tier))) top = { el, label: n, score: s, tier: n.tier };
      }
      if (!top) continue;
      const key = top.score * 10 - top.tier;
      if (bestKey === null || key > bestKey) {
        bestKey = key;
        best = [top];
      } else if (key === bestKey) {
        best.push(top);
      }
    }
    // Similarities are only needed to explain a miss; computing them lazily keeps hits cheap.
    return { best, get near() { return nearOf(q, items); } };
  }

  function nearOf(q, items) {
    const near = [];
    for (const { el, names } of items) for (const n of names) near.push({ text: n.text, el, sim: similarity(q, n.norm) });
    return near;
  }

  function closest(near, n = 5) {
    near.sort((a, b) => b.sim - a.sim);
    const seen = new Set();
    const out = [];
    for (const c of near) {
      const k = c.text + '|' + describe(c.el);
      if (seen.has(k)) continue;
      seen.add(k);
      out.push('"' + c.text + '" (' + describe(c.el) + ')');
      if (out.length >= n) break;
    }
    return out;
  }

  /** Buttons as a person sees them: real buttons, submit inputs, links, and clickable things with button text. */
  function clickables(roots) {
    const out = [];
    const seen = new Set();
    const sel = 'button, input[type=submit], input[type=button], input[type=reset], input[type=image], a[href], ' +
      '[role=button], [role=link], [role=menuitem], [role=tab], summary, [onclick], [tabindex]:not([tabindex="-1"])';
    for (const r of roots) {
      for (const el of r.querySelectorAll(sel)) {
        if (seen.has(el)) continue;
        seen.add(el);
        out.push(el);
      }
      // Clickable divs/spans without any marker other than a pointer cursor and short text.
      for (const el of r.querySelectorAll('div, span, li')) {
        if (seen.has(el) || el.children.length > 2) continue;
        const st = winOf(el).getComputedStyle(el);
        if (st.cursor !== 'pointer') continue;
        seen.add(el);
        out.push(el);
      }
    }
    return out;
  }

  function buttonNames(el) {
    const out = [];
    const add = (text, how, tier) => {
      const t = text == null ? '' : String(text).replace(/\s+/g, ' ').trim();
      if (t) out.push({ text: t, norm: norm(t), how, tier });
    };
    add(el.getAttribute('aria-label'), 'aria-label', 0);
    if (el.tagName === 'INPUT') add(el.value || el.getAttribute('alt'), 'value', 0);
    add(textOf(el), 'text', 0);
    add(el.getAttribute('title'), 'title', 1);
    const img = el.querySelector && el.querySelector('img[alt]');
    if (img) add(img.getAttribute('alt'), 'image alt', 1);
    return out;
  }

  const IMPLICIT_ROLE = {
    BUTTON: 'button', A: 'link', SELECT: 'combobox', TEXTAREA: 'textbox', H1: 'heading', H2: 'heading',
    H3: 'heading', H4: 'heading', H5: 'heading', H6: 'heading', IMG: 'img', LI: 'listitem', UL: 'list', OL: 'list',
    TABLE: 'table', TR: 'row', TD: 'cell', TH: 'columnheader', NAV: 'navigation', MAIN: 'main', FORM: 'form',
    DIALOG: 'dialog', OPTION: 'option', SUMMARY: 'button', P: 'paragraph',
  };

  // Implicit ARIA roles per HTML-AAM (https://www.w3.org/TR/html-aam-1.0/#html-element-role-mappings).
  function roleOf(el) {
    const explicit = el.getAttribute('role');
    if (explicit) return explicit.split(/\s+/)[0];
    if (el.tagName === 'INPUT') {
      const t = (el.getAttribute('type') || 'text').toLowerCase();
      if (t === 'checkbox') return 'checkbox';
      if (t === 'radio') return 'radio';
      if (t === 'submit' || t === 'button' || t === 'reset' || t === 'image') return 'button';
      if (t === 'search') return 'searchbox';
      if (t === 'range') return 'slider';
      if (t === 'number') return 'spinbutton';
      return 'textbox';
    }
    if (el.tagName === 'A' && !el.hasAttribute('href')) return null;
    if (el.isContentEditable && !(el.parentElement && el.parentElement.isContentEditable)) return 'textbox';
    return IMPLICIT_ROLE[el.tagName] || null;
  }

  function namesForRole(el) {
    const k = controlKind(el);
    if (k) return labelsOf(el, k).filter((n) => n.tier <= 1);
    return buttonNames(el);
  }

  /** Smallest visible elements whose own text answers the query. */
  function textCandidates(roots) {
    const out = [];
    for (const r of roots) {
      for (const el of r.querySelectorAll('body *')) {
        if (SKIP_TEXT.has(el.tagName)) continue;
        // Only elements with a direct text node: keeps the smallest container.
        let direct = false;
        for (const c of el.childNodes) if (c.nodeType === 3 && c.nodeValue.trim()) { direct = true; break; }
        if (!direct) continue;
        out.push({ el, names: [{ text: textOf(el), norm: norm(textOf(el)), how: 'text', tier: 0 }] });
      }
    }
    return out;
  }

  /**
   * Resolve a locator to exactly one element, or say why not.
   * Locator: {kind: "field"|"label"|"placeholder"|"name"|"role"|"text"|"css"|"button"|"click", value, role?}
   */
  // ---------------------------------------------------------------- what a person sees

  /** What covers `el` at its centre, or null (off screen counts as not covered: a scroll shows it). */
  function coverOf(el) {
    const r = topRect(el);
    const x = r.x + r.width / 2;
    const y = r.y + r.height / 2;
    if (x < 0 || y < 0 || x >= innerWidth || y >= innerHeight) return null;
    const hit = deepHit(x, y);
    if (!hit || hit === el || el.contains(hit) || hostChainContains(el, hit)) return null;
    const label = hit.closest && hit.closest('label');
    if (label && label.control === el) return null;
    return hit;
  }

  // Containers a person sees as a popup over the page.
  const DIALOG_SEL = 'dialog[open], [role=dialog], [role=alertdialog], [aria-modal=true], .modal, ' +
    '[class*="popup" i], [class*="overlay" i], [class*="cookie" i], [id*="cookie" i], ' +
    '[class*="consent" i], [class*="newsletter" i], [id*="newsletter" i], [class*="lightbox" i]';

  /** The outermost popup-like container around `node`, or null. */
  function popupOf(node) {
    let out = null;
    for (let e = node && node.closest ? node.closest(DIALOG_SEL) : null; e; e = e.parentElement && e.parentElement.closest(DIALOG_SEL)) {
      out = e;
    }
    return out;
  }

  function inModal(el) {
    const d = el.closest && el.closest('dialog, [aria-modal=true]');
    return !!d && (d.getAttribute('aria-modal') === 'true' || (d.matches(':modal')));
  }

  /**
   * Of several equally good matches, the ones a person sees: inside an open modal dialog if any
   * is, then those not covered at their centre. Returns the input when that decides nothing.
   */
  function seen(best) {
    if (best.length < 2) return best;
    const modal = best.filter((b) => inModal(b.el));
    if (modal.length > 0 && modal.length < best.length) best = modal;
    const open = best.filter((b) => !coverOf(b.el));
    return open.length > 0 && open.length < best.length ? open : best;
  }

  // Controls that close a popup without agreeing to anything.
  const DECLINE = /^(no,? thanks?|no thank you|not now|not interested|maybe later|later|decline( all)?|reject( all)?|refuse( all)?|deny|dismiss|close( this)?( dialog| popup)?|skip|continue without [a-z ]+|×|✕|✖|x)$/i;

  function declineControl(popup) {
    const ranked = [];
    for (const el of clickables([popup])) {
      if (!isVisible(el) || isDisabled(el)) continue;
      const names = buttonNames(el).map((n) => String(n.text || '').trim());
      const label = [el.getAttribute('aria-label'), el.title].filter(Boolean).map((t) => t.trim());
      const all = names.concat(label);
      const hit = all.find((t) => DECLINE.test(t));
      // Words beat a bare ×: "No thanks" says what it does.
      if (hit) ranked.push({ el, text: hit, weight: /^(×|✕|✖|x|close.*)$/i.test(hit) ? 1 : 0 });
    }
    ranked.sort((a, b) => a.weight - b.weight);
    return ranked[0] || null;
  }

  /**
   * Popups over the page that are not part of the task (a newsletter, a cookie banner): one that
   * covers a field outside it and does not hold every field asked for is closed with its own
   * decline or close control. Returns what was closed, for the report.
   */
  async function dismissCovering(keys, roots) {
    const closed = [];
    for (let round = 0; round < 3; round++) {
      // Cheap first: most pages have no popup on screen, and then nothing else is looked at.
      const popups = [];
      for (const r of roots) {
        for (const d of r.querySelectorAll(DIALOG_SEL)) {
          const p = popupOf(d);
          if (p && !popups.includes(p) && isVisible(p)) popups.push(p);
        }
      }
      if (!popups.length) break;
      let acted = false;
      for (const p of popups) {
        const outside = allControls(roots).filter((c) => !p.contains(c) && isVisible(c)).slice(0, 60);
        if (!outside.some((c) => { const hit = coverOf(c); return hit && popupOf(hit) === p; })) continue;
        const holds = keys.length > 0 && keys.every((k) => resolve({ kind: 'field', value: k }, [p]).status !== 'not_found');
        if (holds) continue;
        const ctl = declineControl(p);
        if (!ctl) continue;
        ctl.el.click();
        for (let i = 0; i < 30 && p.isConnected && isVisible(p); i++) await nextFrame();
        closed.push(describe(p) + ' closed with ' + JSON.stringify(ctl.text));
        acted = true;
      }
      if (!acted) break;
    }
    return closed;
  }

  function resolve(loc, roots, opts = {}) {
    roots = roots || allRoots();
    const kind = loc.kind;
    const what = describeLocator(loc);
    if (kind === 'css') {
      const found = deepQueryAll(roots, loc.value);
      if (found.error) return { status: 'invalid', message: found.error };
      if (found.length === 0) return { status: 'not_found', what, candidates: [] };
      if (found.length > 1 && !opts.first) {
        return { status: 'ambiguous', what, candidates: found.slice(0, 8).map((e) => describe(e)) };
      }
      return { status: 'ok', el: found[0], how: 'css', score: 'exact' };
    }
    let items;
    if (kind === 'field' || kind === 'label') {
      items = allControls(roots).map((el) => ({ el, names: labelsOf(el, controlKind(el)) }));
    } else if (kind === 'placeholder') {
      items = allControls(roots).map((el) => ({ el, names: labelsOf(el, controlKind(el)).filter((n) => n.how === 'placeholder') }));
    } else if (kind === 'name') {
      items = allControls(roots).map((el) => ({
        el,
        names: [el.getAttribute('name'), el.id].filter(Boolean).map((t) => ({ text: t, norm: norm(t), how: 'name/id', tier: 0 })),
      }));
    } else if (kind === 'role') {
      const want = String(loc.role || '').toLowerCase();
      const els = [];
      for (const r of roots) for (const el of r.querySelectorAll('*')) if (roleOf(el) === want) els.push(el);
      if (!loc.value) {
        if (els.length === 1) return { status: 'ok', el: els[0], how: 'role', score: 'exact' };
        return els.length === 0 ? { status: 'not_found', what, candidates: [] }
          : { status: 'ambiguous', what, candidates: els.slice(0, 8).map(describe) };
      }
      items = els.map((el) => ({ el, names: namesForRole(el) }));
    } else if (kind === 'button' || kind === 'click') {
      items = clickables(roots).map((el) => ({ el, names: buttonNames(el) }));
    } else if (kind === 'text') {
      items = textCandidates(roots);
    } else {
      return { status: 'invalid', message: 'unknown locator kind ' + JSON.stringify(kind) };
    }
    let ranked = rank(loc.value, items);
    if (ranked.best.length === 0 && kind === 'click') ranked = rank(loc.value, textCandidates(roots));
    let best = ranked.best;
    // Prefer what a person can see: drop invisible matches when visible ones exist.
    if (best.length > 1) {
      const vis = best.filter((b) => isVisible(b.el));
      if (vis.length > 0) best = vis;
    }
    // Nested matches (a button and the span inside it): keep the outermost clickable one.
    if (best.length > 1) best = best.filter((b) => !best.some((o) => o !== b && o.el.contains(b.el)));
    // What a person sees decides: an open modal's, then the uncovered ones.
    best = seen(best);
    if (best.length === 0) {
      return { status: 'not_found', what, candidates: closest(ranked.near) };
    }
    if (best.length > 1) {
      return {
        status: 'ambiguous',
        what,
        candidates: best.slice(0, 8).map((b) => '"' + b.label.text + '" (' + describe(b.el) + ', ' + b.label.how + ')'),
      };
    }
    const b = best[0];
    return { status: 'ok', el: b.el, how: b.label.how, score: scoreName(b), label: b.label.text };
  }

  function scoreName(b) {
    return SCORE_NAME[b.tier >= 4 ? b.score + 1 : b.score];
  }

  function describeLocator(loc) {
    switch (loc.kind) {
      case 'css': return 'element matching CSS ' + JSON.stringify(loc.value);
      case 'field': case 'label': return 'field labelled ' + JSON.stringify(loc.value);
      case 'placeholder': return 'field with placeholder ' + JSON.stringify(loc.value);
      case 'name': return 'field named ' + JSON.stringify(loc.value);
      case 'role': return 'role=' + loc.role + (loc.value ? ' named ' + JSON.stringify(loc.value) : '');
      case 'text': return 'text ' + JSON.stringify(loc.value);
      case 'button': case 'click': return 'button or link ' + JSON.stringify(loc.value);
      default: return JSON.stringify(loc);
    }
  }

  // ---------------------------------------------------------------- reading and setting values

  function nativeSetter(el) {
    const w = winOf(el);
    const proto = el.tagName === 'TEXTAREA' ? w.HTMLTextAreaElement.prototype
      : el.tagName === 'SELECT' ? w.HTMLSelectElement.prototype : w.HTMLInputElement.prototype;
    return Object.getOwnPropertyDescriptor(proto, 'value').set;
  }

  function fire(el, type, init) {
    const w = winOf(el);
    const ev = type === 'input' || type === 'beforeinput'
      ? new w.InputEvent(type, Object.assign({ bubbles: true, cancelable: type === 'beforeinput', composed: true }, init || {}))
      : new w.Event(type, { bubbles: true, composed: true });
    el.dispatchEvent(ev);
  }

  function optionLabel(o) {
    return (o.label || o.textContent || '').replace(/\s+/g, ' ').trim();
  }

  function readValue(el, kind) {
    switch (kind || controlKind(el)) {
      case 'checkbox':
        if (el.tagName === 'INPUT') return el.checked;
        if (el.hasAttribute('aria-pressed')) return el.getAttribute('aria-pressed') === 'true';
        return el.getAttribute('aria-checked') === 'true';
      case 'listbox':
        return listboxValue(el);
      case 'slider':
      case 'spinner':
        if (el.tagName === 'INPUT') return el.value;
        return el.getAttribute('aria-valuetext') || el.getAttribute('aria-valuenow');
      case 'radio': {
        if (el.tagName !== 'INPUT') return el.getAttribute('aria-checked') === 'true';
        const on = groupOf(el).find((r) => r.checked);
        return on ? radioLabel(on) : null;
      }
      case 'select':
        if (el.multiple) return Array.from(el.selectedOptions).map(optionLabel);
        return el.selectedIndex >= 0 ? optionLabel(el.options[el.selectedIndex]) : null;
      case 'editable':
        return el.innerText.replace(/\n$/, '');
      default:
        return el.value;
    }
  }

  function radioLabel(r) {
    const names = labelsOf(r, 'radio').filter((n) => n.tier <= 2);
    return names.length ? names[0].text : r.value;
  }

  function truthy(v) {
    if (typeof v === 'boolean') return v;
    const s = norm(v);
    if (['true', 'yes', 'on', 'checked', 'check', '1', 'y', 'x'].includes(s)) return true;
    if (['false', 'no', 'off', 'unchecked', 'uncheck', '0', 'n', ''].includes(s)) return false;
    return null;
  }

  /**
   * Focus events as a person moving through the form causes them, without moving real focus:
   * frameworks that validate on blur see them, and the page is not re-styled for every field
   * (real focus() forces a style recalculation each time: ~1-2 ms per field).
   */
  function focusEvents(el, on) {
    const w = winOf(el);
    el.dispatchEvent(new w.FocusEvent(on ? 'focus' : 'blur', { bubbles: false, composed: true }));
    el.dispatchEvent(new w.FocusEvent(on ? 'focusin' : 'focusout', { bubbles: true, composed: true }));
  }

  function setText(el, value) {
    const v = String(value);
    focusEvents(el, true);
    fire(el, 'beforeinput', { inputType: 'insertReplacementText', data: v });
    nativeSetter(el).call(el, v);
    fire(el, 'input', { inputType: 'insertReplacementText', data: v });
    fire(el, 'change');
    focusEvents(el, false);
    const now = el.value;
    if (now !== v) {
      const type = (el.getAttribute('type') || 'text').toLowerCase();
      const hint = {
        number: 'a number such as 42 or 3.5', date: 'a date as YYYY-MM-DD', time: 'a time as HH:MM',
        'datetime-local': 'a date and time as YYYY-MM-DDTHH:MM', month: 'YYYY-MM', week: 'YYYY-Www',
        email: 'an e-mail address', color: '#rrggbb',
      }[type];
      // Length limits trim silently in browsers; report it rather than pretend.
      if (type === 'password') return { status: 'bad_value', message: 'the password field did not keep the value' + (el.maxLength > 0 ? ' (at most ' + el.maxLength + ' characters)' : '') };
      return {
        status: 'bad_value',
        message: 'the ' + type + ' field kept ' + JSON.stringify(now) + ' instead of ' + JSON.stringify(v) +
          (hint ? ' (it expects ' + hint + ')' : el.maxLength > 0 ? ' (it allows at most ' + el.maxLength + ' characters)' : ''),
      };
    }
    return null;
  }

  // ---------------------------------------------------------------- dates and times

  const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
  const MONTH_NAMES = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August',
    'September', 'October', 'November', 'December'];
  const pad = (n, w = 2) => String(n).padStart(w, '0');

  function monthOf(word) {
    const w = String(word || '').toLowerCase().replace(/\.$/, '');
    if (w.length < 3) return null;
    const i = MONTHS.findIndex((m) => w.startsWith(m) && MONTH_NAMES[MONTHS.indexOf(m)].toLowerCase().startsWith(w));
    return i >= 0 ? i + 1 : null;
  }

  function daysIn(y, m) {
    return new Date(Date.UTC(y, m, 0)).getUTCDate();
  }

  function parseTime(s) {
    const t = /^\s*(\d{1,2})(?:[:.h](\d{2}))?\s*([ap])?\.?\s*m?\.?\s*$/i.exec(s || '');
    if (!t || (t[2] === undefined && !t[3])) return null;
    let h = +t[1];
    const mi = t[2] === undefined ? 0 : +t[2];
    if (t[3]) {
      if (h < 1 || h > 12) return null;
      h = (h % 12) + (t[3].toLowerCase() === 'p' ? 12 : 0);
    }
    return h < 24 && mi < 60 ? { hh: h, mi } : null;
  }

  /**
   * A date as people write it: 2026-12-01, 12/01/2026 (day or month first: `order`, from the
   * field), 1 Dec 2026, December 1, 2026; optionally followed by a time. Null when it is not one.
   */
  function parseDate(value, order) {
    const s = String(value == null ? '' : value).trim();
    let y, m, d, rest = '';
    let r;
    if ((r = /^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T\s]+(.*))?$/.exec(s))) {
      [y, m, d, rest] = [+r[1], +r[2], +r[3], r[4] || ''];
    } else if ((r = /^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4}|\d{2})(?:[\s,T]+(.*))?$/.exec(s))) {
      let [a, b] = [+r[1], +r[2]];
      const dayFirst = a > 12 ? true : b > 12 ? false : order !== 'mdy';
      [d, m] = dayFirst ? [a, b] : [b, a];
      y = r[3].length === 2 ? 2000 + +r[3] : +r[3];
      rest = r[4] || '';
    } else if ((r = /^(\d{1,2})(?:st|nd|rd|th)?\.?\s+([A-Za-z]+)\.?,?\s+(\d{4})(?:[\s,]+(?:at\s+)?(.*))?$/.exec(s))) {
      [d, m, y, rest] = [+r[1], monthOf(r[2]), +r[3], r[4] || ''];
    } else if ((r = /^([A-Za-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})(?:[\s,]+(?:at\s+)?(.*))?$/.exec(s))) {
      [m, d, y, rest] = [monthOf(r[1]), +r[2], +r[3], r[4] || ''];
    } else {
      return null;
    }
    if (!m || m < 1 || m > 12 || d < 1 || d > daysIn(y, m)) return null;
    const out = { y, m, d };
    if (rest.trim()) {
      const t = parseTime(rest);
      if (!t) return null;
      Object.assign(out, t);
    }
    return out;
  }

  /** Day or month first, for a field: its placeholder or format hint, its value, else the language. */
  function orderOf(el) {
    const hints = [el.getAttribute('placeholder'), el.getAttribute('data-date-format'),
      el.getAttribute('data-format'), el.getAttribute('aria-description'), el.title].filter(Boolean).join(' ');
    if (/d{1,2}\s*[/.\-]\s*m{1,2}/i.test(hints)) return 'dmy';
    if (/m{1,2}\s*[/.\-]\s*d{1,2}/i.test(hints)) return 'mdy';
    const v = /^\s*(\d{1,2})[/.\-](\d{1,2})[/.\-]\d{2,4}/.exec(el.value || '');
    if (v && +v[1] > 12) return 'dmy';
    if (v && +v[2] > 12) return 'mdy';
    const holder = el.closest('[lang]');
    const lang = ((holder && holder.getAttribute('lang')) || navigator.language || 'en-US').toLowerCase();
    return lang === 'en' || lang === 'en-us' ? 'mdy' : 'dmy';
  }

  const NATIVE_DATES = new Set(['date', 'time', 'datetime-local', 'month']);

  /** The value a native date/time input takes for what a person wrote; {error} when it is none. */
  function nativeDateValue(type, value, el) {
    const s = String(value).trim();
    const order = orderOf(el);
    if (type === 'time') {
      if (/^\d{2}:\d{2}(:\d{2})?$/.test(s)) return { value: s };
      const t = parseTime(s);
      return t ? { value: pad(t.hh) + ':' + pad(t.mi) } : { error: 'a time such as 14:30 or 2:30 pm' };
    }
    if (type === 'month') {
      if (/^\d{4}-\d{2}$/.test(s)) return { value: s };
      let r = /^([A-Za-z]+)\.?\s+(\d{4})$/.exec(s);
      if (r && monthOf(r[1])) return { value: r[2] + '-' + pad(monthOf(r[1])) };
      r = /^(\d{1,2})[/.\-](\d{4})$/.exec(s);
      if (r && +r[1] >= 1 && +r[1] <= 12) return { value: r[2] + '-' + pad(+r[1]) };
      const d = parseDate(s, order);
      return d ? { value: d.y + '-' + pad(d.m) } : { error: 'a month such as 2026-12 or Dec 2026' };
    }
    if (type === 'date' && /^\d{4}-\d{2}-\d{2}$/.test(s)) return { value: s };
    if (type === 'datetime-local' && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(s)) return { value: s };
    const d = parseDate(s, order);
    if (!d) return { error: 'a date such as 2026-12-01, 12/01/2026 or 1 Dec 2026' };
    const day = d.y + '-' + pad(d.m) + '-' + pad(d.d);
    if (type === 'date') return { value: day };
    if (d.hh === undefined) return { error: 'a date and a time, such as 2026-12-01 14:30' };
    return { value: day + 'T' + pad(d.hh) + ':' + pad(d.mi) };
  }

  // A calendar a read-only field opened: the smallest visible container with a month and year in
  // it and at least 28 day cells. Looked for by what it shows, not by library.
  const CALENDAR_SEL = '.ui-datepicker, .flatpickr-calendar, [role=dialog], [role=application], [role=grid], ' +
    '[class*="calendar" i], [class*="datepicker" i], [class*="date-picker" i], [class*="picker" i]';

  function dayCells(cal) {
    return Array.from(cal.querySelectorAll('td, button, a, span, div, [role=gridcell]')).filter((c) => {
      const t = (c.textContent || '').trim();
      if (!/^\d{1,2}$/.test(t) || +t < 1 || +t > 31) return false;
      for (const k of c.children) if ((k.textContent || '').trim() === t) return false;
      return isVisible(c);
    });
  }

  function calendarMonth(cal) {
    let m = null, y = null;
    for (const sel of cal.querySelectorAll('select')) {
      if (!isVisible(sel)) continue;
      const o = sel.options[sel.selectedIndex];
      const t = o ? optionLabel(o) : '';
      if (m === null && monthOf(t)) m = monthOf(t);
      else if (/^\d{4}$/.test(t)) y = +t;
    }
    for (const inp of cal.querySelectorAll('input')) if (/^\d{4}$/.test(inp.value)) y = y || +inp.value;
    if (m === null || y === null) {
      // Text node by text node, so "Prev", "Next" and "December" stay apart.
      const parts = [];
      const walk = cal.ownerDocument.createTreeWalker(cal, NodeFilter.SHOW_TEXT);
      for (let n = walk.nextNode(); n; n = walk.nextNode()) {
        if (!n.parentElement.closest('select, option')) parts.push(n.data);
      }
      const text = parts.join(' ').replace(/\s+/g, ' ');
      const r = /\b([A-Za-z]{3,9})\.?,?\s+(\d{4})\b/.exec(text);
      if (r && monthOf(r[1])) {
        m = m === null ? monthOf(r[1]) : m;
        y = y === null ? +r[2] : y;
      } else if (m !== null && y === null) {
        const yr = /\b(\d{4})\b/.exec(text);
        if (yr) y = +yr[1];
      }
    }
    return m !== null && y !== null ? { m, y } : null;
  }

  /** The calendars on screen now (see findCalendar), for telling a newly opened one apart. */
  function openCalendars(field) {
    return new Set(allCalendars(field));
  }

  function findCalendar(field, before) {
    const fresh = allCalendars(field).filter((c) => !before || !before.has(c));
    if (fresh.length < 2) return fresh[0] || null;
    // Several new ones: the one nearest the field.
    const f = field.getBoundingClientRect();
    const dist = (c) => {
      const r = c.getBoundingClientRect();
      return Math.hypot(r.left - f.left, r.top - f.bottom);
    };
    return fresh.sort((a, b) => dist(a) - dist(b))[0];
  }

  function allCalendars(field) {
    const found = [];
    const controls = field.getAttribute('aria-controls') || field.getAttribute('aria-owns');
    const owned = controls ? field.ownerDocument.getElementById(controls) : null;
    const pool = owned ? [owned] : Array.from(field.ownerDocument.querySelectorAll(CALENDAR_SEL));
    for (const c of pool) {
      if (!isVisible(c) || c.contains(field)) continue;
      if (dayCells(c).length >= 28 && calendarMonth(c)) found.push(c);
    }
    // The innermost: the calendar itself rather than a page section around it.
    return found.filter((c) => !found.some((o) => o !== c && c.contains(o)));
  }

  /**
   * The calendar's own previous/next month control: inside it, else in the picker around it
   * (react-datepicker puts its arrows beside the month, not in it) but never around the field.
   */
  function navControl(cal, dir, field) {
    for (let scope = cal, d = 0; scope && d < 4 && !scope.contains(field); scope = scope.parentElement, d++) {
      const hit = navControlIn(scope, dir);
      if (hit) return hit;
    }
    return null;
  }

  function navControlIn(cal, dir) {
    const re = dir === 'next'
      ? /(^|[^a-z])next([^a-z]|$)|›|»|→|^\s*>\s*$/i
      : /(^|[^a-z])prev(ious)?([^a-z]|$)|‹|«|←|^\s*<\s*$/i;
    const words = (e) => [e.getAttribute('aria-label'), e.title, e.getAttribute('class'), e.textContent]
      .filter(Boolean).join(' ');
    const hits = Array.from(cal.querySelectorAll('a, button, span, div, [role=button]'))
      .filter((e) => isVisible(e) && !isDisabled(e) && re.test(words(e)) && !/year/i.test(words(e)) &&
        (e.textContent || '').trim().length < 12);
    // The clickable one: a link or button among the matches, else the innermost.
    return hits.find((e) => /^(A|BUTTON)$/.test(e.tagName) || e.getAttribute('role') === 'button') ||
      hits.find((e) => !hits.some((o) => o !== e && e.contains(o))) || null;
  }

  function isOutsideDay(cell) {
    const cls = (e) => (e && e.getAttribute('class')) || '';
    const td = cell.closest('td');
    const all = cls(cell) + ' ' + cls(td) + ' ' + cls(cell.parentElement);
    return /other|prev|next|outside|adjacent|disabled|unselectable|notInMonth/i.test(all) ||
      cell.getAttribute('aria-disabled') === 'true' || cell.disabled === true;
  }

  function sameDay(a, b) {
    return a && b && a.y === b.y && a.m === b.m && a.d === b.d;
  }

  /**
   * A read-only field owned by a date picker: open it as a person does (focus, click), read the
   * month and year it shows, step with its own previous/next controls, click the day, and check
   * the field now shows that date.
   */
  async function pickDate(p) {
    const err = await pickDateOnce(p);
    // A calendar left open would cover the next field: close it as a person would.
    if (err && err.status !== 'readonly') {
      pressKey(p.el, 'Escape');
      if (document.activeElement === p.el) p.el.blur();
    }
    return err;
  }

  async function pickDateOnce(p) {
    const el = p.el;
    const order = orderOf(el);
    const want = parseDate(p.value, order);
    if (!want) return { status: 'bad_value', message: 'not a date: ' + JSON.stringify(p.value) + ' (write 2026-12-01, 12/01/2026 or 1 Dec 2026)' };
    if (sameDay(parseDate(el.value, order), want)) {
      p.widget = 'date picker';
      p.setBy = 'already showed that date';
      return null;
    }
    // A calendar still on screen from another field (closing) is not this field's.
    const before = openCalendars(el);
    el.focus({ preventScroll: true });
    // A page without focus (headless, another window in front) gets no focus event from
    // focus(): pickers that open on focus (jQuery UI) get the events a person's focus sends.
    if (!document.hasFocus()) focusEvents(el, true);
    el.click();
    let cal = null;
    for (let i = 0; i < 40 && !cal; i++) {
      await nextFrame();
      cal = findCalendar(el, before);
    }
    // Already open before (a retry): the one nearest the field.
    if (!cal) cal = findCalendar(el, null);
    if (!cal) return { status: 'readonly', message: 'the field is read-only and no date picker opened when it was focused and clicked' };
    let steps = 0;
    let way = '';
    for (;;) {
      const cur = calendarMonth(cal);
      if (!cur) return { status: 'bad_value', message: 'could not read the month and year the date picker shows' };
      const diff = (want.y - cur.y) * 12 + (want.m - cur.m);
      if (diff === 0) break;
      if (++steps > 240) return { status: 'bad_value', message: 'the date is more than 20 years from what the date picker shows' };
      way = diff > 0 ? 'forward' : 'back';
      const nav = navControl(cal, diff > 0 ? 'next' : 'prev', el);
      if (!nav) {
        return {
          status: 'bad_value',
          message: 'the date picker cannot go ' + (diff > 0 ? 'past ' : 'before ') + MONTH_NAMES[cur.m - 1] + ' ' + cur.y +
            ' (it shows no ' + (diff > 0 ? 'next' : 'previous') + ' month control; ' + MONTH_NAMES[want.m - 1] + ' ' + want.d + ', ' + want.y +
            ' may be outside the dates it allows)',
        };
      }
      nav.click();
      await nextFrame();
      cal = findCalendar(el, before) || cal;
    }
    const cells = dayCells(cal).filter((c) => +(c.textContent || '').trim() === want.d && !isOutsideDay(c));
    if (!cells.length) return { status: 'bad_value', message: MONTH_NAMES[want.m - 1] + ' ' + want.d + ', ' + want.y + ' cannot be chosen in the date picker (disabled or missing)' };
    const day = cells.find((c) => /^(A|BUTTON|TD)$/.test(c.tagName) || c.getAttribute('role') === 'gridcell') || cells[0];
    day.click();
    for (let i = 0; i < 10 && !sameDay(parseDate(el.value, order), want); i++) await nextFrame();
    const got = parseDate(el.value, order);
    if (!sameDay(got, want)) {
      return { status: 'bad_value', message: 'after picking ' + want.y + '-' + pad(want.m) + '-' + pad(want.d) + ' the field shows ' + JSON.stringify(el.value) };
    }
    if (document.activeElement === el) el.blur();
    p.widget = 'date picker';
    p.setBy = 'opened by focus and click, ' + (steps ? steps + ' month' + (steps > 1 ? 's' : '') + ' ' + way + ' with its own arrows, ' : '') + 'clicked ' + want.d;
    return null;
  }

  // ---------------------------------------------------------------- autocompletes

  /** A text field that offers a list as one types (ARIA combobox, jQuery UI, typeaheads). */
  function isAutocomplete(el) {
    if (el.tagName !== 'INPUT') return false;
    const cls = el.getAttribute('class') || '';
    return el.getAttribute('role') === 'combobox' || el.hasAttribute('aria-autocomplete') ||
      el.getAttribute('aria-haspopup') === 'listbox' || /autocomplete|typeahead|combobox/i.test(cls);
  }

  const LIST_SEL = '[role=listbox], .ui-autocomplete, [class*="autocomplete" i], [class*="typeahead" i], ' +
    '[class*="suggestion" i]';

  function openLists(el) {
    const id = el.getAttribute('aria-controls') || el.getAttribute('aria-owns');
    const own = id ? byId(el, id) : null;
    const root = el.getRootNode();
    // A list may be put at the end of the page's body even for a field in a shadow root.
    const pool = own ? [own] : Array.from(root.querySelectorAll(LIST_SEL))
      .concat(root !== el.ownerDocument ? Array.from(el.ownerDocument.querySelectorAll(LIST_SEL)) : []);
    return pool.filter((l) => l !== el && !l.contains(el) && isVisible(l) && listOptions(l).length > 0);
  }

  function listOptions(list) {
    const marked = Array.from(list.querySelectorAll('[role=option], .ui-menu-item-wrapper'));
    const opts = marked.length ? marked : Array.from(list.querySelectorAll('li'));
    return opts.filter((o) => isVisible(o) && (o.textContent || '').trim() &&
      o.getAttribute('aria-disabled') !== 'true' && !/disabled/i.test(o.getAttribute('class') || ''));
  }

  /**
   * After typing into an autocomplete: wait for its list, pick the option whose text matches
   * (exact, then prefix, then contains; a tie is an error naming the candidates), click it, and
   * check the field holds it.
   */
  async function pickOption(p) {
    const el = p.el;
    let list = null;
    for (let i = 0; i < 120 && !list; i++) {
      await nextFrame();
      list = openLists(el)[0] || null;
    }
    if (!list) return null; // No list came: the typed text stands (a free-text field).
    const opts = optionTexts(list);
    const pick = chooseOption(opts, p.value, list);
    if (pick.status) return pick;
    pickWithPointer(pick.o);
    for (let i = 0; i < 20 && norm(el.value) !== norm(pick.t); i++) await nextFrame();
    if (!norm(el.value).includes(norm(pick.t)) && !norm(pick.t).includes(norm(el.value))) {
      return { status: 'bad_value', message: 'after choosing ' + JSON.stringify(pick.t) + ' the field shows ' + JSON.stringify(el.value) };
    }
    p.widget = 'autocomplete';
    p.setBy = 'typed ' + JSON.stringify(String(p.value)) + ', picked ' + JSON.stringify(pick.t) + ' from its list of ' + opts.length;
    return null;
  }

  function optionTexts(list) {
    return listOptions(list).map((o) => ({ o, t: (o.textContent || '').replace(/\s+/g, ' ').trim() }));
  }

  /**
   * The one option whose text answers `value`: exact, then prefix, then contains. Several at the
   * best level is `ambiguous`, none is `bad_value`; both name what the list offers.
   */
  function chooseOption(opts, value, list) {
    const want = norm(value);
    const levels = [
      opts.filter((x) => norm(x.t) === want),
      opts.filter((x) => norm(x.t).startsWith(want)),
      opts.filter((x) => norm(x.t).includes(want)),
    ];
    const hits = want ? levels.find((l) => l.length > 0) || [] : [];
    if (hits.length === 1) return hits[0];
    const shown = (hits.length ? hits : opts).slice(0, 10);
    const off = !hits.length && list && Array.from(list.querySelectorAll('[role=option], li'))
      .find((o) => !opts.some((x) => x.o === o) && norm(o.textContent) === want);
    if (off) return { status: 'bad_value', message: 'option ' + JSON.stringify((off.textContent || '').trim()) + ' is disabled; the list offers: ' + shown.map((x) => JSON.stringify(x.t)).join(', ') };
    return {
      status: hits.length ? 'ambiguous' : 'bad_value',
      message: (hits.length ? JSON.stringify(String(value)) + ' matches several options' : 'no option matches ' + JSON.stringify(String(value))) +
        '; the list offers: ' + shown.map((x) => JSON.stringify(x.t)).join(', '),
      candidates: shown.map((x) => x.t),
    };
  }

  /** Choose an option as a pointer does: lists that act on mousedown and those that act on click. */
  function pickWithPointer(o) {
    const w = winOf(o);
    o.dispatchEvent(new w.MouseEvent('mouseover', { bubbles: true }));
    o.dispatchEvent(new w.MouseEvent('mousedown', { bubbles: true, cancelable: true }));
    o.dispatchEvent(new w.MouseEvent('mouseup', { bubbles: true, cancelable: true }));
    o.click();
  }

  // ---------------------------------------------------------------- custom controls

  /** What a div-made select or listbox holds: the shown text, or the selected options' texts. */
  function listboxValue(el) {
    if (el.getAttribute('role') !== 'listbox') {
      return el.tagName === 'INPUT' ? el.value : (el.innerText || el.textContent || '').replace(/\s+/g, ' ').trim();
    }
    const on = Array.from(el.querySelectorAll('[role=option]')).filter((o) => o.getAttribute('aria-selected') === 'true')
      .map((o) => (o.textContent || '').replace(/\s+/g, ' ').trim());
    return el.getAttribute('aria-multiselectable') === 'true' ? on : on.length ? on[0] : null;
  }

  /**
   * A select made of divs: a combobox (or `aria-haspopup=listbox` button) opened as a person
   * does, its list waited for, the option picked by text and clicked, the shown text checked; or
   * a listbox on the page whose options are clicked until exactly the wanted ones are selected.
   */
  async function setListbox(p) {
    const el = p.el;
    const wanted = Array.isArray(p.value) ? p.value.map(String) : [String(p.value)];
    if (el.getAttribute('role') === 'listbox') {
      const multi = el.getAttribute('aria-multiselectable') === 'true';
      if (!multi && wanted.length > 1) return { status: 'bad_value', message: 'this list takes one value' };
      const opts = optionTexts(el);
      const picks = [];
      for (const w of wanted) {
        const pick = chooseOption(opts, w, el);
        if (pick.status) return pick;
        picks.push(pick);
      }
      let clicks = 0;
      for (const x of opts) {
        const on = x.o.getAttribute('aria-selected') === 'true';
        if (on !== picks.includes(x) && (picks.includes(x) || multi)) {
          pickWithPointer(x.o);
          clicks++;
        }
      }
      for (let i = 0; i < 10; i++) {
        const now = listboxValue(el);
        const got = multi ? now : [now];
        if (got.length === picks.length && picks.every((x) => got.includes(x.t))) {
          p.widget = 'listbox';
          p.setBy = clicks ? 'clicked ' + picks.map((x) => JSON.stringify(x.t)).join(', ') + ' in its list of ' + opts.length : 'already selected';
          return null;
        }
        await nextFrame();
      }
      return { status: 'bad_value', message: 'after clicking, the list has ' + JSON.stringify(listboxValue(el)) + ' selected instead of ' + JSON.stringify(picks.map((x) => x.t)) };
    }
    if (wanted.length > 1) return { status: 'bad_value', message: 'this select takes one value' };
    if (norm(listboxValue(el)) === norm(wanted[0])) {
      p.widget = 'custom select';
      p.setBy = 'already showed ' + JSON.stringify(wanted[0]);
      return null;
    }
    let list = openLists(el)[0] || null;
    if (!list) {
      // Selects that open on mousedown (react-select) and those that open on click (ARIA's pattern).
      el.focus({ preventScroll: true });
      pickWithPointer(el);
      for (let i = 0; i < 120 && !list; i++) {
        await nextFrame();
        list = openLists(el)[0] || null;
      }
    }
    if (!list) return { status: 'bad_value', message: 'no list of options opened when the select was clicked' };
    const opts = optionTexts(list);
    const pick = chooseOption(opts, wanted[0], list);
    if (pick.status) {
      // Leave it closed as it was: Escape, else the click that opened it.
      pressKey(el, 'Escape');
      await nextFrame();
      if (openLists(el).length) pickWithPointer(el);
      return pick;
    }
    pickWithPointer(pick.o);
    for (let i = 0; i < 20 && norm(listboxValue(el)) !== norm(pick.t); i++) await nextFrame();
    if (!norm(listboxValue(el)).includes(norm(pick.t))) {
      return { status: 'bad_value', message: 'after choosing ' + JSON.stringify(pick.t) + ' the select shows ' + JSON.stringify(listboxValue(el)) };
    }
    if (document.activeElement === el) el.blur();
    p.widget = 'custom select';
    p.setBy = 'opened, picked ' + JSON.stringify(pick.t) + ' from its list of ' + opts.length;
    return null;
  }

  /** The number a person asked for: "40", "1,200", "$40", "40 %". */
  function numberWanted(value) {
    if (typeof value === 'number') return value;
    const m = String(value).trim().replace(/(\d),(?=\d{3}\b)/g, '$1').match(/^[^\d\-.]{0,3}\s*(-?\d*\.?\d+)\s*[^\d]{0,4}$/);
    return m ? parseFloat(m[1]) : null;
  }

  /** The number a slider or spinner shows now (an input's value, else `aria-valuenow`). */
  function numberShown(el) {
    const s = el.tagName === 'INPUT' ? el.value : el.getAttribute('aria-valuenow');
    const n = parseFloat(String(s == null ? '' : s).replace(/,/g, ''));
    return Number.isFinite(n) ? n : null;
  }

  function boundsOf(el) {
    const num = (a) => {
      const v = el.getAttribute(a);
      const n = v == null || v === '' ? NaN : parseFloat(v);
      return Number.isFinite(n) ? n : null;
    };
    const input = el.tagName === 'INPUT';
    const range = input && (el.getAttribute('type') || '').toLowerCase() === 'range';
    const min = num('aria-valuemin') ?? (input ? num('min') : null) ?? (range ? 0 : null);
    const max = num('aria-valuemax') ?? (input ? num('max') : null) ?? (range ? 100 : null);
    return { min, max };
  }

  const same = (a, b) => a !== null && Math.abs(a - b) < 1e-9;

  /** A key press as a person's keyboard sends it, with the legacy codes older widgets read. */
  function pressKey(el, key) {
    const w = winOf(el);
    const code = { ArrowUp: 38, ArrowDown: 40, ArrowLeft: 37, ArrowRight: 39, Escape: 27 }[key];
    for (const type of ['keydown', 'keyup']) {
      const ev = new w.KeyboardEvent(type, { key, code: key, bubbles: true, cancelable: true, composed: true });
      Object.defineProperty(ev, 'keyCode', { get: () => code });
      Object.defineProperty(ev, 'which', { get: () => code });
      el.dispatchEvent(ev);
    }
  }

  /** Press a control (a spinner's own + or −): pointer down and up, then click. */
  function pressButton(b) {
    const w = winOf(b);
    const init = { bubbles: true, cancelable: true, composed: true, button: 0 };
    b.dispatchEvent(new w.PointerEvent('pointerdown', init));
    b.dispatchEvent(new w.MouseEvent('mousedown', init));
    b.dispatchEvent(new w.PointerEvent('pointerup', init));
    b.dispatchEvent(new w.MouseEvent('mouseup', init));
    b.click();
  }

  /** A spinner's own increase and decrease controls, next to it. */
  function stepButtons(el) {
    const up = /^(\+|＋|▲|⌃|increase|increment|more|plus|add|up)\b|^\+|ui-spinner-up/;
    const down = /^(-|−|–|▼|⌄|decrease|decrement|fewer|less|minus|remove|down)\b|^[-−–]|ui-spinner-down/;
    let scope = el.parentElement;
    for (let d = 0; d < 3 && scope; d++, scope = scope.parentElement) {
      const cands = Array.from(scope.querySelectorAll('button, [role=button], a, .ui-spinner-button'))
        .filter((b) => b !== el && !b.contains(el) && !isDisabled(b));
      const name = (b) => ((b.getAttribute('aria-label') || b.getAttribute('title') || b.textContent || '').trim().toLowerCase() +
        ' ' + (b.getAttribute('class') || '').toLowerCase());
      const u = cands.find((b) => up.test(name(b)) || /ui-spinner-up/.test(name(b)));
      const dn = cands.find((b) => down.test(name(b)) || /ui-spinner-down/.test(name(b)));
      if (u && dn) return { up: u, down: dn };
    }
    return null;
  }

  /**
   * Step a slider or spinner towards `want` one press at a time, reading what it shows after
   * each: stops when it matches, when it stops moving, or when a step jumps past the value.
   */
  async function stepUntil(el, want, up, down) {
    let cur = numberShown(el);
    let presses = 0;
    while (!same(cur, want)) {
      if (cur === null || presses >= 2000) return { stuck: true, presses };
      const rising = cur < want;
      (rising ? up : down)();
      presses++;
      let next = numberShown(el);
      for (let i = 0; i < 6 && same(next, cur); i++) {
        await nextFrame();
        next = numberShown(el);
      }
      if (next === null || same(next, cur)) return { stuck: true, presses };
      if (rising ? next > want : next < want) return { passed: [cur, next], presses };
      cur = next;
    }
    return { presses };
  }

  /** The number asked of a slider or spinner, if it is one the control can show. */
  function numberFor(p, what) {
    const want = numberWanted(p.value);
    if (want === null) return { err: { status: 'bad_value', message: 'a ' + what + ' takes a number, not ' + JSON.stringify(p.value) } };
    const { min, max } = boundsOf(p.el);
    if ((min !== null && want < min) || (max !== null && want > max)) {
      return { err: { status: 'bad_value', message: 'the ' + what + ' goes from ' + (min ?? '…') + ' to ' + (max ?? '…') + ', so ' + want + ' cannot be set' } };
    }
    p.widget = what;
    return { want };
  }

  /** A step jumped past the value: put the control back where it was and say why. */
  async function steppedPast(el, what, r, want, start, up, down) {
    await stepUntil(el, start, up, down);
    return {
      status: 'bad_value',
      message: 'the ' + what + ' moves in steps: it went from ' + r.passed[0] + ' to ' + r.passed[1] + ', so ' + want +
        ' cannot be set (left at ' + numberShown(el) + ')',
    };
  }

  /**
   * A slider: a native range input takes the value as a drag would leave it (input, change); an
   * ARIA slider is moved with its arrow keys until it shows the value.
   */
  async function setSlider(p) {
    const el = p.el;
    const { want, err } = numberFor(p, 'slider');
    if (err) return err;
    if (el.tagName === 'INPUT') {
      const { min, max } = boundsOf(el);
      const step = el.getAttribute('step') || '1';
      const was = el.value;
      const put = (v) => {
        focusEvents(el, true);
        nativeSetter(el).call(el, v);
        fire(el, 'input');
        fire(el, 'change');
        focusEvents(el, false);
      };
      put(String(want));
      if (!same(numberShown(el), want)) {
        const took = el.value;
        put(was);
        return { status: 'bad_value', message: 'the slider moves in steps of ' + step + ' from ' + min + ': it would take ' + took + ', not ' + want + ' (left at ' + was + ')' };
      }
      p.setBy = 'value ' + el.value + ' (range ' + min + ' to ' + max + ', step ' + step + ')';
      return null;
    }
    const vertical = el.getAttribute('aria-orientation') === 'vertical';
    const up = () => pressKey(el, vertical ? 'ArrowUp' : 'ArrowRight');
    const down = () => pressKey(el, vertical ? 'ArrowDown' : 'ArrowLeft');
    const start = numberShown(el);
    const r = await stepUntil(el, want, up, down);
    if (r.passed) return steppedPast(el, 'slider', r, want, start, up, down);
    if (r.stuck) return { status: 'bad_value', message: 'the slider did not move with its arrow keys (it shows ' + numberShown(el) + ')' };
    p.setBy = r.presses ? r.presses + ' arrow key press' + (r.presses > 1 ? 'es' : '') + ' to ' + want : 'already at ' + want;
    return null;
  }

  /**
   * A spinner: typed into when it is a text field that keeps what is typed (jQuery UI's), else
   * stepped with its arrow keys, else with its own + and − controls, until it shows the value.
   */
  async function setSpinner(p) {
    const el = p.el;
    const { want, err } = numberFor(p, 'spinner');
    if (err) return err;
    if (same(numberShown(el), want)) {
      p.setBy = 'already at ' + want;
      return null;
    }
    if (el.tagName === 'INPUT' && isEditable(el) && !isDisabled(el)) {
      const err = setText(el, String(p.value).trim());
      if (!err && same(numberShown(el), want)) {
        p.setBy = 'typed ' + want;
        return null;
      }
    }
    const start = numberShown(el);
    const keyUp = () => pressKey(el, 'ArrowUp');
    const keyDown = () => pressKey(el, 'ArrowDown');
    let r = await stepUntil(el, want, keyUp, keyDown);
    if (r.passed) return steppedPast(el, 'spinner', r, want, start, keyUp, keyDown);
    if (!r.stuck) {
      p.setBy = r.presses + ' arrow key press' + (r.presses > 1 ? 'es' : '') + ' to ' + want;
      return null;
    }
    const btn = stepButtons(el);
    if (!btn) return { status: 'bad_value', message: 'the spinner moved neither by typing, by its arrow keys, nor has + and − controls (it shows ' + numberShown(el) + ')' };
    const btnUp = () => pressButton(btn.up);
    const btnDown = () => pressButton(btn.down);
    r = await stepUntil(el, want, btnUp, btnDown);
    if (r.passed) return steppedPast(el, 'spinner', r, want, start, btnUp, btnDown);
    if (r.stuck) return { status: 'bad_value', message: 'the spinner stopped at ' + numberShown(el) + ' (its own controls do not go further)' };
    p.setBy = r.presses + ' press' + (r.presses > 1 ? 'es' : '') + ' of its own + and − controls to ' + want;
    return null;
  }

  function setEditable(el, value) {
    const v = String(value);
    el.focus({ preventScroll: true });
    const doc = el.ownerDocument;
    const sel = winOf(el).getSelection();
    const range = doc.createRange();
    range.selectNodeContents(el);
    sel.removeAllRanges();
    sel.addRange(range);
    // execCommand fires beforeinput/input like typing does, so editors (ProseMirror, Slate…) see it.
    let ok = false;
    try {
      ok = doc.execCommand('insertText', false, v);
    } catch (_) {
      ok = false;
    }
    if (!ok || el.innerText.replace(/\n$/, '') !== v) {
      el.textContent = v;
      fire(el, 'input', { inputType: 'insertReplacementText', data: v });
    }
    el.blur();
    return null;
  }

  function setSelect(el, value) {
    const wanted = Array.isArray(value) ? value : [value];
    if (!el.multiple && wanted.length > 1) return { status: 'bad_value', message: 'this select takes one value' };
    const opts = Array.from(el.options);
    // Options that load after the page (fetched lists): wait for them like for a late field.
    if (opts.length === 0) return { status: 'not_found', message: 'the list has no options yet' };
    const picks = [];
    for (const w of wanted) {
      const q = norm(w);
      const o = opts.find((o) => norm(optionLabel(o)) === q) || opts.find((o) => o.value === String(w)) ||
        opts.find((o) => norm(o.value) === q) || uniq(opts.filter((o) => matchScore(q, norm(optionLabel(o))) >= 2));
      if (!o) {
        return {
          status: 'bad_value',
          message: 'no option ' + JSON.stringify(w) + '; options are: ' + opts.map((o) => JSON.stringify(optionLabel(o))).slice(0, 20).join(', '),
        };
      }
      if (o.disabled) return { status: 'bad_value', message: 'option ' + JSON.stringify(optionLabel(o)) + ' is disabled' };
      picks.push(o);
    }
    focusEvents(el, true);
    for (const o of opts) o.selected = picks.includes(o);
    fire(el, 'input');
    fire(el, 'change');
    focusEvents(el, false);
    return null;
  }

  /**
   * The widget a library shows in place of a native select it hid (select2, Chosen, Tom Select,
   * bootstrap-select…): they all follow the select's change event, so the select is what is set.
   */
  function enhancedWidgetOf(sel) {
    const r = sel.getBoundingClientRect();
    if (isVisible(sel) && r.width > 2 && r.height > 2) return null;
    const LIB = '[class*="select2" i], [class*="chosen" i], [class*="choices" i], [class*="ts-wrapper" i], ' +
      '[class*="selectize" i], [class*="bootstrap-select" i]';
    const next = sel.nextElementSibling;
    if (next && isVisible(next) && (next.matches(LIB) || next.matches('[role=combobox]') || next.querySelector('[role=combobox]'))) return next;
    const up = sel.parentElement;
    if (up && up.matches(LIB) && isVisible(up)) return up;
    return null;
  }

  function uniq(arr) {
    return arr.length === 1 ? arr[0] : undefined;
  }

  function setCheckbox(el, value) {
    const want = truthy(value);
    if (want === null) return { status: 'bad_value', message: 'a checkbox takes true/false (or yes/no), not ' + JSON.stringify(value) };
    if (readValue(el, 'checkbox') !== want) activate(el);
    if (readValue(el, 'checkbox') !== want) return { status: 'bad_value', message: 'the checkbox did not change when clicked' };
    return null;
  }

  /**
   * Toggle a checkbox or radio. `click()` runs the activation behaviour (checked, input, change) even
   * when a custom-styled control hides the input behind its label, and — unlike a visibility check
   * here — it does not force a layout in the middle of filling.
   */
  function activate(el) {
    el.click();
  }

  function setRadioInGroup(radios, value) {
    const q = norm(value);
    const ranked = rank(value, radios.map((r) => ({ el: r, names: labelsOf(r, 'radio').concat([{ text: r.value, norm: norm(r.value), how: 'value', tier: 3 }]) })));
    const best = ranked.best.filter((b) => b.score >= 2 || norm(b.label.text) === q);
    if (best.length !== 1) {
      return {
        status: 'bad_value',
        message: (best.length ? 'option ' + JSON.stringify(value) + ' is ambiguous' : 'no option ' + JSON.stringify(value)) +
          '; options are: ' + radios.map((r) => JSON.stringify(radioLabel(r))).join(', '),
      };
    }
    activate(best[0].el);
    if (!best[0].el.checked && best[0].el.tagName === 'INPUT') return { status: 'bad_value', message: 'the radio did not change when clicked' };
    return null;
  }

  // ---------------------------------------------------------------- form filling

  /** Labels of every control and radio group on the page, computed once per form. */
  function fieldIndex(controls) {
    const items = controls.map((el) => ({ el, names: labelsOf(el, controlKind(el)) }));
    const groups = new Map();
    for (const el of controls) {
      if (controlKind(el) !== 'radio' || el.tagName !== 'INPUT') continue;
      const g = groupOf(el);
      if (!groups.has(g[0])) groups.set(g[0], g);
    }
    const gItems = Array.from(groups.keys()).map((first) => ({ el: first, names: groupLabelsOf(first) }));
    return { items, groups, gItems };
  }

  /** Find the control for one form key; radio groups may be named by their legend/caption. */
  function resolveField(key, index) {
    const { items, groups, gItems } = index;
    const ranked = rank(key, items);
    const best = ranked.best;
    // Radio groups: the key names the group, the value names the option.
    const gRank = rank(key, gItems);
    const keyOf = (b) => b.score * 10 - b.tier;
    const bestKey = best.length ? keyOf(best[0]) : -1;
    const gKey = gRank.best.length ? keyOf(gRank.best[0]) : -1;
    if (gKey > bestKey || (gKey === bestKey && gKey >= 0 && best.every((b) => controlKind(b.el) === 'radio'))) {
      if (gRank.best.length > 1) {
        return { status: 'ambiguous', candidates: gRank.best.map((b) => '"' + b.label.text + '" (radio group ' + describe(b.el) + ')') };
      }
      const g = gRank.best[0];
      return { status: 'ok', el: g.el, group: groups.get(g.el), how: g.label.how, score: scoreName(g), label: g.label.text };
    }
    let cands = best;
    if (cands.length > 1) {
      const vis = cands.filter((b) => isVisible(b.el) || (b.el.labels && b.el.labels.length && isVisible(b.el.labels[0])));
      if (vis.length > 0) cands = vis;
    }
    // What a person sees decides: an open modal's field, then the uncovered ones.
    cands = seen(cands);
    if (cands.length === 0) return { status: 'not_found', candidates: closest(ranked.near.concat(gRank.near)) };
    if (cands.length > 1) {
      return { status: 'ambiguous', candidates: cands.slice(0, 8).map((b) => '"' + b.label.text + '" (' + describe(b.el) + ', ' + b.label.how + ')') };
    }
    const b = cands[0];
    return { status: 'ok', el: b.el, how: b.label.how, score: scoreName(b), label: b.label.text };
  }

  function checkActionable(el, needEditable) {
    const reach = isVisible(el) || (el.labels && el.labels.length > 0 && isVisible(el.labels[0]));
    if (!el.isConnected) return { status: 'detached' };
    if (!reach) return { status: 'hidden' };
    if (isDisabled(el)) return { status: 'disabled' };
    if (needEditable && !isEditable(el)) return { status: 'readonly' };
    return null;
  }

  /** Phase 1 for one key: find the element and check it can take a value (reads layout only). */
  function planOne(key, value, index) {
    const r = resolveField(key, index);
    if (r.status !== 'ok') return { out: { key, status: r.status, candidates: r.candidates || [] } };
    const el = r.el;
    const kind = r.group ? 'radio-group' : controlKind(el);
    const matched = { element: describe(el), how: r.how, score: r.score, label: r.label };
    const bad = r.group ? null : checkActionable(el, kind === 'text' || kind === 'editable');
    // A read-only text field and a date: a date picker owns it (tried when setting).
    if (bad && bad.status === 'readonly' && kind === 'text' && el.tagName === 'INPUT' && parseDate(value, orderOf(el))) {
      return { key, value, el, kind: 'datepicker', group: null, matched };
    }
    if (bad) return { out: Object.assign({ key, matched }, bad) };
    return { key, value, el, kind, group: r.group, matched };
  }

  /** Phase 2 for one key: set the value as a user would. */
  async function setOne(p) {
    const { el, kind, value } = p;
    if (p.group) return setRadioInGroup(p.group.filter((g) => !isDisabled(g)), value);
    if (kind === 'datepicker') return pickDate(p);
    if (kind === 'text') {
      if (typeof value === 'boolean' || value === null || typeof value === 'object') {
        return { status: 'bad_value', message: 'a text field takes text, not ' + JSON.stringify(value) };
      }
      const type = el.tagName === 'INPUT' ? (el.getAttribute('type') || 'text').toLowerCase() : '';
      if (NATIVE_DATES.has(type)) {
        const v = nativeDateValue(type, value, el);
        if (v.error) return { status: 'bad_value', message: 'the ' + type + ' field takes ' + v.error + ', not ' + JSON.stringify(value) };
        p.widget = type + ' input';
        p.setBy = 'value ' + v.value + (v.value !== String(value).trim() ? ' (from ' + JSON.stringify(String(value)) + ')' : '');
        return setText(el, v.value);
      }
      if (!isAutocomplete(el)) {
        const err = setText(el, value);
        // A field that refuses typing but owns a date picker (React pickers often do): pick it.
        if (err && parseDate(value, orderOf(el))) {
          const picked = await pickDate(p);
          if (!picked) p.setBy = 'typing was not kept; ' + p.setBy;
          if (!picked || picked.status !== 'readonly') return picked;
        }
        return err;
      }
      // Typed with the field keeping focus: a blur would close the list before it opens.
      const v = String(value);
      el.focus({ preventScroll: true });
      if (!document.hasFocus()) focusEvents(el, true);
      fire(el, 'beforeinput', { inputType: 'insertText', data: v });
      nativeSetter(el).call(el, v);
      fire(el, 'input', { inputType: 'insertText', data: v });
      const err = await pickOption(p);
      if (document.activeElement === el) el.blur();
      else focusEvents(el, false);
      return err;
    }
    if (kind === 'select') {
      const err = setSelect(el, value);
      const shown = err ? null : enhancedWidgetOf(el);
      if (shown) {
        p.widget = 'enhanced select';
        p.setBy = 'chosen in the hidden <select> it stands for; it now shows ' + JSON.stringify(textOf(shown, 80));
      }
      return err;
    }
    if (kind === 'checkbox') {
      const before = readValue(el, 'checkbox');
      const err = setCheckbox(el, value);
      if (!err && el.tagName !== 'INPUT') {
        p.widget = el.hasAttribute('aria-pressed') ? 'toggle button' : el.getAttribute('role') === 'switch' ? 'switch' : 'checkbox';
        p.setBy = before === readValue(el, 'checkbox') ? 'already ' + (before ? 'on' : 'off') : 'clicked';
      }
      return err;
    }
    if (kind === 'radio') {
      const want = truthy(value);
      if (want === true) {
        activate(el);
        return null;
      }
      if (want === false) return readValue(el, 'checkbox') ? { status: 'bad_value', message: 'a radio cannot be unchecked; choose another option' } : null;
      // "Color": "Blue" where "Color" matched one radio of the group: pick within its group.
      return setRadioInGroup(groupOf(el), value);
    }
    if (kind === 'editable') return setEditable(el, value);
    if (kind === 'listbox') return setListbox(p);
    if (kind === 'slider') return setSlider(p);
    if (kind === 'spinner') return setSpinner(p);
    return { status: 'bad_value', message: 'unsupported field' };
  }

  /** Phase 3 for one key: what the field holds now (passwords masked). */
  function readOne(p) {
    const { el, kind } = p;
    const now = p.group ? readValue(p.group[0], 'radio') : kind === 'radio' && el.tagName === 'INPUT' ? el.checked : readValue(el, kind);
    const secret = el.tagName === 'INPUT' && (el.getAttribute('type') || '').toLowerCase() === 'password';
    const out = { key: p.key, status: 'ok', matched: p.matched, value: secret ? '(hidden, ' + String(now).length + ' characters)' : now };
    if (p.widget) Object.assign(out, { widget: p.widget, set_by: p.setBy });
    return out;
  }

  /**
   * Fill a whole form in one call.
   * req: {fields: [{key, value}], submit: null | {button: "Text"} | {form: true}}
   * Returns {fields: [...per key outcome], submit: outcome|null, nav_marker}.
   *
   * Three phases — locate and check everything, then set everything, then read everything back —
   * so the page lays out once for the checks instead of once per field.
   */
  async function fillForm(req) {
    let roots = allRoots();
    const dismissed = await dismissCovering(req.fields.map((f) => f.key), roots);
    if (dismissed.length) roots = allRoots();
    const index = fieldIndex(allControls(roots));
    const marker = markNavigation();
    const plans = req.fields.map((f) => planOne(f.key, f.value, index));
    const errors = new Map();
    for (const p of plans) {
      if (p.out) continue;
      const err = await setOne(p);
      if (err) errors.set(p, Object.assign({ key: p.key, matched: p.matched }, err));
    }
    let form = null;
    const fields = plans.map((p) => {
      if (p.out) return p.out;
      if (errors.has(p)) return errors.get(p);
      form = form || p.el.form || null;
      return readOne(p);
    });
    let submit = null;
    if (req.submit && fields.every((f) => f.status === 'ok')) submit = await submitForm(req.submit, form, roots);
    return { fields, submit, nav_marker: marker, dismissed };
  }

  async function submitForm(spec, form, roots) {
    let target = null;
    if (spec.button) {
      // Prefer the button in the form we filled; fall back to the whole page.
      const scoped = form ? [form] : roots;
      let r = resolve({ kind: 'button', value: spec.button }, scoped);
      if (r.status !== 'ok' && form) r = resolve({ kind: 'button', value: spec.button }, roots);
      if (r.status !== 'ok') return { status: r.status, what: 'submit button ' + JSON.stringify(spec.button), candidates: r.candidates || [] };
      target = r.el;
      const bad = checkActionable(target, false);
      if (bad) return Object.assign({ what: 'submit button ' + describe(target) }, bad);
      form = target.form || form;
    }
    if (form && !form.noValidate && !(target && target.formNoValidate) && !form.checkValidity()) {
      const invalid = Array.from(form.elements).filter((e) => e.willValidate && !e.checkValidity())
        .map((e) => describe(e) + ': ' + e.validationMessage);
      return { status: 'invalid', message: 'the form refuses to submit: ' + invalid.join('; ') };
    }
    if (!target && !form) return { status: 'not_found', what: 'a form to submit', candidates: [] };
    if (target) target.click();
    else form.requestSubmit();
    return { status: 'ok', element: describe(target || form), how: target ? 'button' : 'form.requestSubmit()' };
  }

  /**
   * Put a marker on this document so Rust can tell when a new one has replaced it, and note whether
   * an action starts a cross-document navigation (Navigation API; a submit nobody prevented).
   */
  function markNavigation() {
    const m = Math.random().toString(36).slice(2);
    const set = (k, v) => Object.defineProperty(window, k, { value: v, configurable: true, enumerable: false, writable: true });
    set('__deskhandNav', m);
    set('__deskhandNavStarted', false);
    if (window.navigation) {
      window.navigation.addEventListener('navigate', (e) => {
        if (!(e.destination && e.destination.sameDocument) && !e.downloadRequest) window.__deskhandNavStarted = true;
      }, { once: true });
    }
    // Window is last on the submit event's path, so defaultPrevented is final here.
    window.addEventListener('submit', (e) => { if (!e.defaultPrevented) window.__deskhandNavStarted = true; }, { once: true });
    return m;
  }

  // ---------------------------------------------------------------- actions: click, scroll, rects

  /**
   * Make an element ready for a real (native) click: visible, enabled, stable, not covered.
   * Returns {status:"ok", x, y, element} in top-level viewport CSS pixels.
   */
  async function prepareClick(loc) {
    const r = resolve(loc);
    if (r.status !== 'ok') return r;
    const el = r.el;
    const bad = checkActionable(el, false);
    if (bad) return Object.assign({ what: describeLocator(loc), element: describe(el) }, bad);
    el.scrollIntoView({ block: 'center', inline: 'center', behavior: 'instant' });
    const a = el.getBoundingClientRect();
    await nextFrame();
    const b = el.getBoundingClientRect();
    if (a.x !== b.x || a.y !== b.y || a.width !== b.width || a.height !== b.height) {
      return { status: 'unstable', what: describeLocator(loc), element: describe(el) };
    }
    const tr = topRect(el);
    const x = tr.x + tr.width / 2;
    const y = tr.y + tr.height / 2;
    const hit = deepHit(x, y);
    if (hit && hit !== el && !el.contains(hit) && !hostChainContains(el, hit)) {
      // A label that points at our control is fine to hit.
      if (!(hit.tagName === 'LABEL' && hit.control === el)) {
        return { status: 'covered', what: describeLocator(loc), element: describe(el), by: describe(hit) };
      }
    }
    // Verify the coming native click lands on our element: the page may still move (a late banner,
    // a field appearing above) between now and the click. A press that lands elsewhere is swallowed
    // (never delivered to the wrong element) and Rust retries.
    const marker = markNavigation();
    guardNextClick(el, marker);
    return { status: 'ok', x, y, element: describe(el), how: r.how, score: r.score, nav_marker: marker };
  }

  function guardNextClick(el, marker) {
    const top = window;
    top.__deskhandMiss = null;
    let verdict = null;
    const wins = winOf(el) === top ? [top] : [top, winOf(el)];
    const types = ['pointerdown', 'mousedown', 'pointerup', 'mouseup', 'click'];
    const guard = (e) => {
      const path = e.composedPath();
      if (verdict === null) {
        verdict = path.includes(el) ? 'hit' : 'miss';
        if (verdict === 'hit') top.__deskhandHit = marker;
        else top.__deskhandMiss = describe(path[0]);
      } else if (verdict === 'hit' && e.type === 'click' && !path.includes(el)) {
        // Pressed on our element but released elsewhere (the page moved in between): the browser
        // sends the click to a common ancestor, so our element never got it. Swallow and retry.
        verdict = 'miss';
        top.__deskhandHit = null;
        top.__deskhandMiss = describe(path[0]) + ' (on release)';
      }
      if (verdict === 'miss') {
        e.preventDefault();
        e.stopImmediatePropagation();
      }
      if (e.type === 'click') remove();
    };
    const remove = () => { for (const w of wins) for (const t of types) w.removeEventListener(t, guard, true); };
    for (const w of wins) for (const t of types) w.addEventListener(t, guard, true);
    setTimeout(remove, 5000);
  }

  // The two points of a drag: the element to press, brought into view and checked as a click
  // checks it (visible, enabled, stable, not covered), and the centre of the drop target, which
  // must then be on screen too. No click guard: the release lands elsewhere by design.
  async function prepareDrag(from, to) {
    const r = resolve(from);
    if (r.status !== 'ok') return r;
    const el = r.el;
    const bad = checkActionable(el, false);
    if (bad) return Object.assign({ what: describeLocator(from), element: describe(el) }, bad);
    const t = resolve(to);
    if (t.status !== 'ok') return t;
    el.scrollIntoView({ block: 'center', inline: 'nearest', behavior: 'instant' });
    const a = el.getBoundingClientRect();
    await nextFrame();
    const b = el.getBoundingClientRect();
    if (a.x !== b.x || a.y !== b.y || a.width !== b.width || a.height !== b.height) {
      return { status: 'unstable', what: describeLocator(from), element: describe(el) };
    }
    const fr = topRect(el);
    const x = fr.x + fr.width / 2;
    const y = fr.y + fr.height / 2;
    const hit = deepHit(x, y);
    if (hit && hit !== el && !el.contains(hit) && !hostChainContains(el, hit)) {
      return { status: 'covered', what: describeLocator(from), element: describe(el), by: describe(hit) };
    }
    const tr = topRect(t.el);
    const tx = tr.x + tr.width / 2;
    const ty = tr.y + tr.height / 2;
    if (tx < 0 || ty < 0 || tx > innerWidth || ty > innerHeight) {
      return { status: 'hidden', what: describeLocator(to), element: describe(t.el),
        message: 'the drop target is not on screen together with the element to drag' };
    }
    return { status: 'ok', x, y, tx, ty, element: describe(el), target: describe(t.el) };
  }

  function deepHit(x, y) {
    let doc = document;
    let hit = doc.elementFromPoint(x, y);
    let ox = 0;
    let oy = 0;
    for (let i = 0; i < 10 && hit; i++) {
      if (hit.shadowRoot) {
        const inner = hit.shadowRoot.elementFromPoint(x - ox, y - oy);
        if (inner && inner !== hit) { hit = inner; continue; }
      }
      if (hit.tagName === 'IFRAME') {
        let d = null;
        try { d = hit.contentDocument; } catch (_) { d = null; }
        if (!d) return hit;
        const fr = hit.getBoundingClientRect();
        ox += fr.left + hit.clientLeft;
        oy += fr.top + hit.clientTop;
        doc = d;
        hit = doc.elementFromPoint(x - ox, y - oy);
        continue;
      }
      break;
    }
    return hit;
  }

  /**
   * Click at a viewport point with script events, for callers without trusted input (the
   * extension): pointer and mouse down/up, then click, on whatever is under the point then.
   */
  function syntheticClick(x, y) {
    const hit = deepHit(x, y);
    if (!hit) return { status: 'not_found', what: 'an element at ' + x + ',' + y, candidates: [] };
    const init = { bubbles: true, cancelable: true, composed: true, clientX: x, clientY: y, button: 0, view: hit.ownerDocument.defaultView || window };
    hit.dispatchEvent(new PointerEvent('pointerdown', Object.assign({ buttons: 1, isPrimary: true, pointerType: 'mouse' }, init)));
    hit.dispatchEvent(new MouseEvent('mousedown', Object.assign({ buttons: 1 }, init)));
    if (hit.focus) hit.focus({ preventScroll: true });
    hit.dispatchEvent(new PointerEvent('pointerup', Object.assign({ isPrimary: true, pointerType: 'mouse' }, init)));
    hit.dispatchEvent(new MouseEvent('mouseup', init));
    // click() runs the element's activation behaviour (follow a link, toggle a box, submit a form).
    hit.click();
    return { status: 'ok', element: describe(hit) };
  }

  function hostChainContains(el, hit) {
    // `hit` may be a shadow host or iframe that holds `el`.
    let cur = el;
    while (cur) {
      const root = cur.getRootNode();
      if (root.host) { if (root.host === hit) return true; cur = root.host; continue; }
      const fe = winOf(cur).frameElement;
      if (fe) { if (fe === hit) return true; cur = fe; continue; }
      return false;
    }
    return false;
  }

  /** Element rect in document coordinates of the top page, for element screenshots. */
  function rectOf(loc) {
    const r = resolve(loc);
    if (r.status !== 'ok') return r;
    const el = r.el;
    if (!isVisible(el)) return { status: 'hidden', what: describeLocator(loc), element: describe(el) };
    el.scrollIntoView({ block: 'center', inline: 'center', behavior: 'instant' });
    const tr = topRect(el);
    const pick = Math.random().toString(36).slice(2);
    if (!globalThis.__deskhandPick) Object.defineProperty(globalThis, '__deskhandPick', { value: {}, configurable: true });
    globalThis.__deskhandPick[pick] = el;
    return {
      status: 'ok', element: describe(el), pick, x: tr.x + window.scrollX, y: tr.y + window.scrollY,
      vx: tr.x, vy: tr.y, width: tr.width, height: tr.height, dpr: window.devicePixelRatio || 1,
    };
  }

  function scrollToElement(loc) {
    const r = resolve(loc);
    if (r.status !== 'ok') return r;
    r.el.scrollIntoView({ block: 'center', inline: 'nearest', behavior: 'instant' });
    return { status: 'ok', element: describe(r.el), x: window.scrollX, y: window.scrollY };
  }

  function scrollBy(dx, dy) {
    window.scrollBy({ left: dx, top: dy, behavior: 'instant' });
    return { status: 'ok', x: window.scrollX, y: window.scrollY };
  }

  function scrollableAncestor(el) {
    let cur = el.parentElement;
    while (cur && cur !== document.body && cur !== document.documentElement) {
      const st = getComputedStyle(cur);
      if (/(auto|scroll)/.test(st.overflowY) && cur.scrollHeight > cur.clientHeight + 1) return cur;
      cur = cur.parentElement;
    }
    return null;
  }

  /** One step of "scroll until": count matches, then scroll the list's container to its end. */
  function scrollStep(selector) {
    const roots = allRoots();
    const found = deepQueryAll(roots, selector);
    if (found.error) return { status: 'invalid', message: found.error };
    const last = found[found.length - 1];
    const box = last ? scrollableAncestor(last) : null;
    const se = document.scrollingElement || document.documentElement;
    let height;
    if (box) {
      box.scrollTop = box.scrollHeight;
      height = box.scrollHeight;
    } else {
      if (last) last.scrollIntoView({ block: 'end', behavior: 'instant' });
      window.scrollTo({ top: se.scrollHeight, behavior: 'instant' });
      height = se.scrollHeight;
    }
    // Nudge: some feeds only listen for wheel/scroll events, which scrollTo already fires.
    window.dispatchEvent(new Event('scroll'));
    return { status: 'ok', count: found.length, height, y: box ? box.scrollTop : window.scrollY };
  }

  function count(selector) {
    const found = deepQueryAll(allRoots(), selector);
    if (found.error) return { status: 'invalid', message: found.error };
    return { status: 'ok', count: found.length };
  }


  const api = {
    version: VERSION,
    norm, matchScore, fillForm, prepareClick, prepareDrag, rectOf, scrollToElement, scrollBy, scrollStep, count,
    syntheticClick,
    locate(loc) {
      const r = resolve(loc);
      if (r.status === 'ok') return { status: 'ok', element: describe(r.el), how: r.how, score: r.score, label: r.label, visible: isVisible(r.el) };
      return r;
    },
  };
  Object.defineProperty(globalThis, '__deskhand', { value: api, configurable: true, enumerable: false });
  return api;
})()
