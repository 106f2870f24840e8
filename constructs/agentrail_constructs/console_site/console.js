/* agentrail operator console.
 * Plain ES2020, no dependencies. All API data is rendered with createElement + textContent:
 * nothing from the API or the user is ever parsed as HTML.
 */
(() => {
  'use strict';

  const SESSION_KEY = 'agentrail.console.session';
  const PKCE_KEY = 'agentrail.console.pkce';
  const RETURN_KEY = 'agentrail.console.return';
  const EXPIRED_MSG = 'Your session has expired. Sign in again.';
  const STATUSES = ['pending', 'approved', 'rejected', 'expired'];
  const MAX_COMMENT = 10240;
  const COST_DAYS = 14;
  const PALETTE = ['#1f5fa8', '#b3471d', '#2e7d32', '#7b3fa0', '#8a6d00', '#00707a', '#a3214f', '#4a4a4a', '#5c6bc0', '#6d4c41'];
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const FEATURES = ['approvals', 'runs', 'costs', 'sessions'];
  const DEFAULT_FEATURES = ['approvals', 'runs', 'costs'];
  const SNIPPET = 200;

  const state = {
    config: null,
    session: null,      // {token, user, groups, exp}
    expired: false,     // show the "session expired" message on the sign-in view
    signinError: '',
    navSeq: 0,          // bumps on every render; async loaders drop stale results
    focusId: null,      // element id to focus instead of the h1 after the next render
  };

  let els = {};

  // ---------------------------------------------------------------- DOM helpers

  function setAttrs(el, attrs) {
    if (!attrs) return;
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'testid') el.setAttribute('data-testid', String(v));
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }

  function append(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    return append(el, children);
  }

  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    setAttrs(el, attrs);
    return append(el, children);
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
  }

  function srOnly(text) {
    return h('span', { class: 'sr-only' }, text);
  }

  function cls(value) {
    return String(value == null ? '' : value).toLowerCase().replace(/[^a-z0-9_-]/g, '');
  }

  function badge(value, extra) {
    const text = value == null || value === '' ? 'unknown' : String(value);
    return h('span', { class: 'badge s-' + cls(text) + (extra ? ' ' + extra : '') }, text);
  }

  function props(pairs) {
    const dl = h('dl', { class: 'props' });
    for (const pair of pairs) {
      if (!pair) continue;
      const [label, value] = pair;
      dl.appendChild(h('div', null, h('dt', null, label), h('dd', null, value == null || value === '' ? '—' : value)));
    }
    return dl;
  }

  function table(caption, headers, rows, opts = {}) {
    const t = h('table', opts.attrs || null);
    if (caption) t.appendChild(h('caption', null, caption));
    t.appendChild(h('thead', null, h('tr', null, headers.map((hd) => {
      const [text, num, sr] = Array.isArray(hd) ? hd : [hd, false, false];
      return h('th', { scope: 'col', class: num ? 'num' : null }, sr ? srOnly(text) : text);
    }))));
    t.appendChild(h('tbody', null, rows));
    if (opts.foot) t.appendChild(h('tfoot', null, opts.foot));
    return t;
  }

  function td(value, num) {
    return h('td', { class: num ? 'num' : null }, value == null || value === '' ? '—' : value);
  }

  // ---------------------------------------------------------------- formatting

  const pad = (n) => String(n).padStart(2, '0');

  function fmtDate(unix) {
    if (unix === null || unix === undefined || unix === '') return '—';
    const d = new Date(Number(unix) * 1000);
    if (Number.isNaN(d.getTime())) return '—';
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function timeEl(unix) {
    const text = fmtDate(unix);
    if (text === '—') return text;
    return h('time', { datetime: new Date(Number(unix) * 1000).toISOString() }, text);
  }

  function fmtDuration(seconds) {
    let sec = Number(seconds);
    if (!Number.isFinite(sec)) return '—';
    sec = Math.max(0, sec);
    if (sec < 60) return `${Math.floor(sec)} s`;
    const min = sec / 60;
    if (min < 60) return `${Math.floor(min)} min`;
    const hrs = min / 60;
    if (hrs < 48) return `${Math.floor(hrs)} h`;
    return `${Math.floor(hrs / 24)} d`;
  }

  function nowSec() {
    return Date.now() / 1000;
  }

  function age(unix) {
    if (unix == null) return '—';
    return fmtDuration(nowSec() - Number(unix));
  }

  function timeLeft(unix) {
    if (unix == null) return '—';
    const left = Number(unix) - nowSec();
    if (!Number.isFinite(left)) return '—';
    return left <= 0 ? 'expired' : fmtDuration(left);
  }

  function fmtLatencySec(sec) {
    const v = Number(sec);
    if (sec == null || !Number.isFinite(v)) return '—';
    if (v < 1) return `${Math.round(v * 1000)} ms`;
    if (v < 60) return `${v.toFixed(1)} s`;
    return fmtDuration(v);
  }

  function fmtMs(ms) {
    if (ms == null) return '—';
    const v = Number(ms);
    if (!Number.isFinite(v)) return '—';
    return v < 1000 ? `${Math.round(v)} ms` : fmtLatencySec(v / 1000);
  }

  function fmtInt(n) {
    if (n == null || n === '') return '—';
    const v = Number(n);
    return Number.isFinite(v) ? v.toLocaleString('en-US') : String(n);
  }

  function fmtMoney(v, currency) {
    if (v == null || v === '') return '—';
    const n = Number(v);
    if (!Number.isFinite(n)) return String(v);
    try {
      return n.toLocaleString('en-US', {
        style: 'currency', currency: currency || 'USD', minimumFractionDigits: 2, maximumFractionDigits: 4,
      });
    } catch (_) {
      return `${n.toFixed(4)} ${currency || 'USD'}`;
    }
  }

  function pretty(value) {
    if (typeof value === 'string') {
      const t = value.trim();
      if (/^[[{]/.test(t)) {
        try { return JSON.stringify(JSON.parse(t), null, 2); } catch (_) { /* plain text */ }
      }
      return value;
    }
    try {
      const out = JSON.stringify(value, null, 2);
      return out === undefined ? String(value) : out;
    } catch (_) {
      return String(value);
    }
  }

  function pre(value) {
    return h('pre', null, pretty(value));
  }

  function plural(n, one, many) {
    return `${n} ${n === 1 ? one : many}`;
  }

  // ---------------------------------------------------------------- live region / errors

  function announce(message) {
    const live = els.live;
    if (!live) return;
    if (live.textContent === message) {
      live.textContent = '';
      setTimeout(() => { live.textContent = message; }, 60);
    } else {
      live.textContent = message;
    }
  }

  class ApiError extends Error {
    constructor(message, status, code) {
      super(message);
      this.status = status;
      this.code = code || null;
    }
  }

  function errorMessage(body, status) {
    if (body && typeof body === 'object') {
      if (body.error && typeof body.error === 'object' && body.error.message) return String(body.error.message);
      // The API's errors: {"error": "<code>", "message": "<one sentence>"}; the gateway's: {"message": "..."}.
      if (body.message) return String(body.message);
      if (typeof body.error === 'string' && body.error) return body.error;
    }
    if (status === 403) return 'You are not allowed to do this.';
    if (status === 404) return 'Not found.';
    if (status === 503) return 'The service is unavailable. Try again later.';
    return `Request failed (HTTP ${status}).`;
  }

  function errorBox(err, testid) {
    const msg = err && err.message ? err.message : 'Something went wrong.';
    return h('p', { class: 'error', role: 'alert', testid: testid || 'view-error' }, msg);
  }

  // ---------------------------------------------------------------- session / tokens

  function b64urlDecode(str) {
    let b = String(str).replace(/-/g, '+').replace(/_/g, '/');
    while (b.length % 4) b += '=';
    const bin = atob(b);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new TextDecoder().decode(bytes);
  }

  function b64urlEncode(bytes) {
    let bin = '';
    for (const b of bytes) bin += String.fromCharCode(b);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function decodeJwt(token) {
    try {
      const part = String(token).split('.')[1];
      const claims = JSON.parse(b64urlDecode(part));
      return claims && typeof claims === 'object' ? claims : {};
    } catch (_) {
      return {};
    }
  }

  function makeSession(token, extra) {
    const claims = decodeJwt(token);
    const groups = Array.isArray(claims['cognito:groups']) ? claims['cognito:groups']
      : ((extra && Array.isArray(extra.groups)) ? extra.groups : []);
    const user = (extra && extra.user) || claims.username || claims['cognito:username'] || claims.sub || 'unknown';
    let exp = Number(claims.exp);
    if (!Number.isFinite(exp) && extra && Number.isFinite(Number(extra.expires_at))) exp = Number(extra.expires_at);
    return { token, user: String(user), groups: groups.map(String), exp: Number.isFinite(exp) ? exp : null };
  }

  function saveSession(session) {
    state.session = session;
    try { sessionStorage.setItem(SESSION_KEY, JSON.stringify(session)); } catch (_) { /* storage unavailable */ }
  }

  function loadSession() {
    try {
      const raw = sessionStorage.getItem(SESSION_KEY);
      if (!raw) return null;
      const s = JSON.parse(raw);
      return s && typeof s.token === 'string' && s.token ? s : null;
    } catch (_) {
      return null;
    }
  }

  function clearSession() {
    state.session = null;
    try { sessionStorage.removeItem(SESSION_KEY); } catch (_) { /* ignore */ }
  }

  function isExpired(session) {
    return !!(session && session.exp && session.exp * 1000 <= Date.now());
  }

  /** Forget the token and show sign-in with the expiry message (cognito: go to the hosted UI). */
  function expire() {
    clearSession();
    state.expired = true;
    state.signinError = '';
    renderSignIn();
    announce(EXPIRED_MSG);
    if (state.config && state.config.mode === 'cognito') {
      startCognito().catch((e) => {
        state.signinError = 'Could not start sign-in: ' + (e && e.message ? e.message : 'unknown error');
        renderSignIn();
      });
    }
  }

  function checkExpiry() {
    if (state.session && isExpired(state.session)) expire();
  }

  function apiUrl(path) {
    const base = String(state.config.apiBase || '').replace(/\/+$/, '');
    return base ? base + path : path.replace(/^\//, '');
  }

  async function api(path, opts = {}) {
    if (!state.session) throw new ApiError('Not signed in.', 401, 'signed_out');
    if (isExpired(state.session)) {
      expire();
      throw new ApiError(EXPIRED_MSG, 401, 'expired');
    }
    const headers = { Authorization: state.session.token, Accept: 'application/json' };
    let body;
    if (opts.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(opts.json);
    }
    let resp;
    try {
      resp = await fetch(apiUrl(path), { method: opts.method || 'GET', headers, body, cache: 'no-store' });
    } catch (_) {
      throw new ApiError('Could not reach the API. Check your connection and try again.', 0, 'network');
    }
    let data = null;
    try {
      const text = await resp.text();
      data = text ? JSON.parse(text) : null;
    } catch (_) {
      data = null;
    }
    if (resp.status === 401) {
      expire();
      throw new ApiError(EXPIRED_MSG, 401, 'unauthorized');
    }
    if (!resp.ok) throw new ApiError(errorMessage(data, resp.status), resp.status, data && data.error && data.error.code);
    return data;
  }

  // ---------------------------------------------------------------- cognito (authorization code + PKCE)

  function cognitoDomain() {
    return String(state.config.cognito.domain || '').replace(/\/+$/, '');
  }

  async function startCognito() {
    const c = state.config.cognito || {};
    const verifier = b64urlEncode(crypto.getRandomValues(new Uint8Array(48)));
    const nonce = b64urlEncode(crypto.getRandomValues(new Uint8Array(24)));
    const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
    const challenge = b64urlEncode(new Uint8Array(digest));
    sessionStorage.setItem(PKCE_KEY, JSON.stringify({ verifier, state: nonce }));
    if (location.hash && location.hash.length > 2) sessionStorage.setItem(RETURN_KEY, location.hash);
    const params = [
      ['response_type', 'code'],
      ['client_id', c.clientId],
      ['redirect_uri', c.redirectUri],
      ['scope', (c.scopes || []).join(' ')],
      ['state', nonce],
      ['code_challenge', challenge],
      ['code_challenge_method', 'S256'],
    ];
    const query = params.map(([k, v]) => `${k}=${encodeURIComponent(v == null ? '' : v)}`).join('&');
    location.assign(`${cognitoDomain()}/oauth2/authorize?${query}`);
  }

  /** Returns true when this page load was a hosted-UI callback that produced a session. */
  async function handleCognitoCallback() {
    const params = new URLSearchParams(location.search);
    if (!params.has('code') && !params.has('error')) return false;
    let saved = null;
    try { saved = JSON.parse(sessionStorage.getItem(PKCE_KEY) || 'null'); } catch (_) { saved = null; }
    const back = sessionStorage.getItem(RETURN_KEY) || homeHash();
    sessionStorage.removeItem(PKCE_KEY);
    sessionStorage.removeItem(RETURN_KEY);
    history.replaceState(null, '', location.pathname + (back.startsWith('#/') ? back : homeHash()));
    if (params.has('error')) {
      throw new Error('Sign-in failed: ' + (params.get('error_description') || params.get('error')));
    }
    if (!saved || !saved.state || saved.state !== params.get('state')) {
      throw new Error('Sign-in failed: the response does not match this sign-in attempt. Sign in again.');
    }
    const c = state.config.cognito;
    const form = new URLSearchParams();
    form.set('grant_type', 'authorization_code');
    form.set('client_id', c.clientId);
    form.set('code', params.get('code'));
    form.set('redirect_uri', c.redirectUri);
    form.set('code_verifier', saved.verifier);
    let resp;
    try {
      resp = await fetch(`${cognitoDomain()}/oauth2/token`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
      });
    } catch (_) {
      throw new Error('Sign-in failed: could not reach the sign-in service.');
    }
    let data = null;
    try { data = await resp.json(); } catch (_) { data = null; }
    if (!resp.ok || !data || !data.access_token) {
      const why = data && (data.error_description || data.error);
      throw new Error('Sign-in failed' + (why ? ': ' + why : '.'));
    }
    saveSession(makeSession(data.access_token));
    state.expired = false;
    return true;
  }

  // ---------------------------------------------------------------- header / view frame

  /** The views the API supports (config.json "features"), in config order; absent or unusable: the task API's. */
  function features() {
    const cfg = state.config && state.config.features;
    const list = Array.isArray(cfg) ? FEATURES.filter((f) => cfg.includes(f)).sort((a, b) => cfg.indexOf(a) - cfg.indexOf(b)) : [];
    return list.length ? list : DEFAULT_FEATURES;
  }

  function homeHash() {
    return '#/' + features()[0];
  }

  function updateHeader(section) {
    const signedIn = !!state.session;
    const enabled = features();
    els.nav.hidden = !signedIn;
    els.signout.hidden = !signedIn;
    clear(els.who);
    if (signedIn) {
      const groups = state.session.groups && state.session.groups.length ? state.session.groups.join(', ') : 'no groups';
      append(els.who, ['Signed in as ', h('strong', null, state.session.user), ` (${groups})`]);
    }
    for (const a of els.nav.querySelectorAll('a[data-section]')) {
      const off = !enabled.includes(a.getAttribute('data-section'));
      a.hidden = off;
      if (a.parentElement) a.parentElement.hidden = off;
      if (signedIn && a.getAttribute('data-section') === section) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
  }

  function startView(title) {
    const seq = ++state.navSeq;
    const view = els.view;
    clear(view);
    const h1 = h('h1', { tabindex: '-1', testid: 'view-title' }, title);
    const root = h('div', { class: 'view-body' });
    view.append(h1, root);
    setTitle(title);
    const target = state.focusId && document.getElementById(state.focusId);
    state.focusId = null;
    (target || h1).focus();
    return { seq, root, h1 };
  }

  function setTitle(title) {
    const product = (state.config && state.config.title) || 'agentrail console';
    document.title = title ? `${title} · ${product}` : product;
  }

  function loading(text) {
    return h('p', { class: 'muted' }, text || 'Loading…');
  }

  function stale(seq) {
    return seq !== state.navSeq;
  }

  /** A toolbar "Refresh" button (id `id`) that re-renders the current route and keeps the focus on itself. */
  function refreshButton(id) {
    const btn = h('button', { type: 'button', class: 'secondary', id }, 'Refresh');
    btn.addEventListener('click', () => {
      state.focusId = id;
      route();
    });
    return btn;
  }

  /** Shared failure rendering of the async views: the API's message in a role=alert box, and a way back. */
  function failView(region, e, back) {
    clear(region);
    region.removeAttribute('aria-busy');
    region.append(errorBox(e));
    if (back) region.append(h('p', null, back));
  }

  /**
   * The loading step of the async views: appends a "Loading…" region (aria-busy) to `root` and GETs `path`.
   * Returns {region, data} with the region emptied and no longer busy, or null when the view went stale
   * meanwhile or the call failed (the failure is shown in the region by failView, with `back` if given).
   */
  async function loaded(seq, root, path, back) {
    const region = h('div', { 'aria-busy': 'true' }, loading());
    root.append(region);
    let data;
    try {
      data = await api(path);
    } catch (e) {
      if (!stale(seq)) failView(region, e, back);
      return null;
    }
    if (stale(seq)) return null;
    clear(region);
    region.removeAttribute('aria-busy');
    return { region, data };
  }

  // ---------------------------------------------------------------- routing

  function parseHash() {
    const raw = location.hash.replace(/^#\/?/, '');
    const qi = raw.indexOf('?');
    const pathPart = qi >= 0 ? raw.slice(0, qi) : raw;
    const query = new URLSearchParams(qi >= 0 ? raw.slice(qi + 1) : '');
    const parts = pathPart.split('/').filter(Boolean).map((p) => {
      try { return decodeURIComponent(p); } catch (_) { return p; }
    });
    return { parts, query };
  }

  function navigate(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  }

  function route() {
    if (!state.config) return;
    if (!state.session || isExpired(state.session)) {
      if (state.session) { expire(); return; }
      renderSignIn();
      return;
    }
    const { parts, query } = parseHash();
    const [section, id] = parts;
    const n = parts.length;
    const on = features().includes(section);
    if (on && section === 'approvals' && n === 1) viewApprovals(query);
    else if (on && section === 'approvals' && n === 2) viewApproval(id);
    else if (on && section === 'runs' && n === 1) viewRuns();
    else if (on && section === 'runs' && n === 2) viewRun(id, query.get('approval'));
    else if (on && section === 'costs' && n === 1) viewCosts();
    else if (on && section === 'sessions' && n === 1) viewSessions();
    else if (on && section === 'sessions' && n === 2) viewSession(id);
    else if (on && section === 'sessions' && n === 4 && parts[2] === 'turns') viewTurn(id, parts[3]);
    else {
      // An empty, unknown or disabled route: the first feature's list.
      const home = homeHash();
      history.replaceState(null, '', home);
      if (n) announce('There is no page at that address; showing ' + home.slice(2) + '.');
      route();
    }
  }

  // ---------------------------------------------------------------- sign-in

  function renderSignIn() {
    updateHeader(null);
    const { root } = startView('Sign in');
    const cfg = state.config;
    if (state.expired) root.append(h('p', { class: 'notice', testid: 'session-expired' }, EXPIRED_MSG));
    const err = h('div', { class: 'alert', role: 'alert', testid: 'signin-error' }, state.signinError || '');

    if (cfg.mode === 'local') {
      const users = (cfg.local && Array.isArray(cfg.local.users)) ? cfg.local.users : [];
      const sel = h('select', { id: 'signin-user', name: 'user', testid: 'signin-user', required: true },
        users.map((u) => {
          const groups = Array.isArray(u.groups) && u.groups.length ? ` (${u.groups.join(', ')})` : '';
          return h('option', { value: u.name }, `${u.name}${groups}`);
        }));
      const btn = h('button', { type: 'submit', class: 'primary', testid: 'signin-submit' }, 'Sign in');
      const form = h('form', { class: 'signin', 'aria-labelledby': 'signin-heading' },
        h('h2', { id: 'signin-heading' }, 'Local mode'),
        h('p', null, 'Choose the user to act as. Tokens are issued by the local server.'),
        h('div', { class: 'field' }, h('label', { for: 'signin-user' }, 'User'), sel),
        h('div', { class: 'actions' }, btn),
        err);
      if (!users.length) {
        btn.disabled = true;
        err.textContent = 'No local users are configured.';
      }
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        btn.disabled = true;
        err.textContent = '';
        try {
          const tokenUrl = (cfg.local && cfg.local.tokenUrl) || 'token';
          let resp;
          try {
            resp = await fetch(tokenUrl, {
              method: 'POST',
              headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
              body: JSON.stringify({ user: sel.value }),
              cache: 'no-store',
            });
          } catch (_) {
            throw new Error('Could not reach the local token service.');
          }
          let data = null;
          try { data = await resp.json(); } catch (_) { data = null; }
          if (!resp.ok || !data || !data.token) throw new Error(errorMessage(data, resp.status));
          saveSession(makeSession(data.token, { user: data.user, groups: data.groups, expires_at: data.expires_at }));
          state.expired = false;
          state.signinError = '';
          announce(`Signed in as ${state.session.user}.`);
          navigate(location.hash && location.hash.length > 2 ? location.hash : homeHash());
        } catch (e) {
          err.textContent = 'Sign-in failed: ' + (e && e.message ? e.message : 'unknown error');
          btn.disabled = false;
        }
      });
      root.append(form);
    } else if (cfg.mode === 'cognito') {
      const btn = h('button', { type: 'button', class: 'primary', testid: 'signin-submit' }, 'Sign in');
      btn.addEventListener('click', () => {
        btn.disabled = true;
        startCognito().catch((e) => {
          btn.disabled = false;
          err.textContent = 'Could not start sign-in: ' + (e && e.message ? e.message : 'unknown error');
        });
      });
      root.append(h('div', { class: 'signin' },
        h('p', null, 'Sign in with your organisation account. You will be sent to the sign-in page and brought back here.'),
        h('div', { class: 'actions' }, btn),
        err));
    } else {
      root.append(errorBox({ message: 'The console configuration has an unknown mode.' }));
    }
  }

  function signOut() {
    clearSession();
    state.expired = false;
    state.signinError = '';
    renderSignIn();
    announce('Signed out.');
  }

  // ---------------------------------------------------------------- approvals

  async function viewApprovals(query) {
    updateHeader('approvals');
    const wanted = query.get('status');
    const status = STATUSES.includes(wanted) ? wanted : 'pending';
    const { seq, root } = startView('Approvals');

    const sel = h('select', { id: 'approval-status-filter', testid: 'approval-status-filter' },
      STATUSES.map((st) => h('option', { value: st, selected: st === status }, st[0].toUpperCase() + st.slice(1))));
    sel.addEventListener('change', () => {
      state.focusId = 'approval-status-filter';
      navigate('#/approvals?status=' + encodeURIComponent(sel.value));
    });
    root.append(h('div', { class: 'toolbar' },
      h('div', { class: 'field inline' }, h('label', { for: 'approval-status-filter' }, 'Status'), sel),
      refreshButton('approvals-refresh')));

    const got = await loaded(seq, root, '/approvals?status=' + encodeURIComponent(status));
    if (!got) return;
    const { region, data } = got;
    const list = (data && Array.isArray(data.approvals)) ? data.approvals : [];
    if (!list.length) {
      region.append(h('p', { testid: 'approvals-empty' }, `No ${status} approvals.`));
      return;
    }
    const rows = list.map((a) => h('tr', { testid: 'approval-row', 'data-approval-id': a.approval_id },
      td(a.tool),
      h('td', { class: 'text' }, a.summary || '—'),
      td(a.requester),
      td(age(a.requested_at), true),
      td(status === 'pending' ? timeLeft(a.expires_at) : (a.status || status), status === 'pending'),
      h('td', null, h('a', { href: '#/approvals/' + encodeURIComponent(a.approval_id) },
        'Open', srOnly(` approval for ${a.tool || 'action'} ${a.approval_id}`)))));
    region.append(table(`${plural(list.length, 'approval', 'approvals')} (${status})`,
      ['Action', 'Summary', 'Requester', ['Age', true], status === 'pending' ? ['Time left', true] : 'Status', ['Details', false, true]],
      rows));
  }

  async function viewApproval(id, afterDecision) {
    updateHeader('approvals');
    const { seq, root, h1 } = startView('Approval');
    const got = await loaded(seq, root, '/approvals/' + encodeURIComponent(id), h('a', { href: '#/approvals' }, 'Back to approvals'));
    if (!got) return;
    const region = got.region;
    const a = got.data || {};
    h1.textContent = `Approval: ${a.tool || id}`;
    setTitle(h1.textContent);

    const runHref = `#/runs/${encodeURIComponent(a.task_id || '')}?approval=${encodeURIComponent(a.approval_id || id)}`;
    region.append(
      h('p', null, 'Status: ', h('span', { class: 'badge s-' + cls(a.status), testid: 'approval-status' }, a.status || 'unknown')),
      props([
        ['Action', a.tool],
        ['Summary', a.summary ? h('span', { class: 'text' }, a.summary) : null],
        ['Requester', a.requester],
        ['Approver group', a.approver_group],
        ['Requested', a.requested_at != null ? [timeEl(a.requested_at), ` (${age(a.requested_at)} ago)`] : null],
        ['Expires', a.expires_at != null ? [timeEl(a.expires_at), ` (time left: ${timeLeft(a.expires_at)})`] : null],
        ['Approval ID', a.approval_id || id],
        ['Run', a.task_id ? h('a', { href: runHref, testid: 'view-run' }, 'View run') : null],
        ['Arguments hash', a.arguments_hash ? h('code', null, a.arguments_hash) : null],
      ]),
      h('h2', null, 'Arguments'),
      pre(a.arguments == null ? {} : a.arguments));

    if (a.decided_by || a.decided_at || (a.status && a.status !== 'pending')) {
      region.append(h('h2', null, 'Decision'), props([
        ['Status', badge(a.status)],
        ['Decided by', a.decided_by],
        ['Decided at', a.decided_at != null ? timeEl(a.decided_at) : null],
        ['Comment', a.comment != null && a.comment !== ''
          ? h('p', { class: 'comment', testid: 'approval-comment' }, a.comment) : null],
      ]));
    }

    if (a.can_decide === true) region.append(decisionForm(a, id, seq));

    const audit = Array.isArray(a.audit) ? a.audit : [];
    region.append(h('h2', null, 'Audit trail'));
    if (!audit.length) {
      region.append(h('p', { class: 'muted' }, 'No audit entries.'));
    } else {
      region.append(table(null, ['When', 'Actor', 'Action', 'Detail'], audit.map((r) => h('tr', { testid: 'audit-row' },
        h('td', null, timeEl(r.at)),
        td(r.actor),
        td(r.action),
        h('td', { class: 'text' }, r.detail == null || r.detail === '' ? '—' : (typeof r.detail === 'string' ? r.detail : pretty(r.detail)))))));
    }
    if (afterDecision) announce(afterDecision);
  }

  function decisionForm(a, id, seq) {
    const comment = h('textarea', {
      id: 'decision-comment', name: 'comment', testid: 'decision-comment', maxlength: String(MAX_COMMENT),
      rows: '5', 'aria-describedby': 'decision-comment-hint',
    });
    const approve = h('button', { type: 'button', class: 'approve', testid: 'approve' }, 'Approve');
    const reject = h('button', { type: 'button', class: 'reject', testid: 'reject' }, 'Reject');
    const alertBox = h('div', { class: 'alert', role: 'alert', testid: 'decision-error' });

    async function decide(decision) {
      approve.disabled = true;
      reject.disabled = true;
      alertBox.textContent = '';
      const text = comment.value;
      try {
        await api(`/approvals/${encodeURIComponent(a.approval_id || id)}/decision`, {
          method: 'POST',
          json: { decision, comment: text.trim() === '' ? null : text },
        });
        if (stale(seq)) return;
        const done = decision === 'approve' ? 'approved' : 'rejected';
        await viewApproval(id, `Decision recorded: ${done}.`);
      } catch (e) {
        if (stale(seq)) return;
        alertBox.textContent = e && e.message ? e.message : 'The decision failed.';
        approve.disabled = false;
        reject.disabled = false;
      }
    }
    approve.addEventListener('click', () => decide('approve'));
    reject.addEventListener('click', () => decide('reject'));

    return h('section', { 'aria-labelledby': 'decide-heading' },
      h('h2', { id: 'decide-heading' }, 'Decide'),
      h('div', { class: 'field' },
        h('label', { for: 'decision-comment' }, 'Comment (optional)'),
        comment,
        h('span', { id: 'decision-comment-hint', class: 'muted' }, `Up to ${fmtInt(MAX_COMMENT)} characters. Shown to the requester and kept in the audit trail.`)),
      h('div', { class: 'actions' }, approve, reject),
      alertBox);
  }

  // ---------------------------------------------------------------- runs

  function usageTotal(usage) {
    if (!usage || typeof usage !== 'object') return null;
    if (usage.total_tokens != null) return usage.total_tokens;
    if (usage.input_tokens != null || usage.output_tokens != null) return (usage.input_tokens || 0) + (usage.output_tokens || 0);
    return null;
  }

  async function viewRuns() {
    updateHeader('runs');
    const { seq, root } = startView('Runs');
    root.append(h('div', { class: 'toolbar' },
      h('p', { class: 'muted' }, 'Your most recent 50 runs, newest first.'), refreshButton('runs-refresh')));
    const got = await loaded(seq, root, '/tasks?limit=50');
    if (!got) return;
    const { region, data } = got;
    const tasks = (data && Array.isArray(data.tasks)) ? data.tasks : [];
    if (!tasks.length) {
      region.append(h('p', { testid: 'runs-empty' }, 'No runs yet.'));
      return;
    }
    region.append(table(plural(tasks.length, 'run', 'runs'),
      ['Status', 'Type', 'Created', ['Steps', true], ['Tokens', true], ['Cost', true], 'Message', ['Details', false, true]],
      tasks.map((t) => h('tr', { testid: 'run-row', 'data-task-id': t.task_id },
        h('td', null, badge(t.status)),
        td(t.task_type),
        h('td', null, timeEl(t.created_at)),
        td(fmtInt(t.steps), true),
        td(fmtInt(usageTotal(t.usage)), true),
        td(fmtMoney(t.cost_usd), true),
        h('td', { class: 'text' }, t.message || '—'),
        h('td', null, h('a', { href: '#/runs/' + encodeURIComponent(t.task_id) }, 'Open', srOnly(` run ${t.task_id}`)))))));
  }

  async function viewRun(id, approvalId) {
    updateHeader('runs');
    const { seq, root, h1 } = startView('Run');
    const q = approvalId ? '?approval_id=' + encodeURIComponent(approvalId) : '';
    const got = await loaded(seq, root, `/tasks/${encodeURIComponent(id)}/timeline${q}`, h('a', { href: '#/runs' }, 'Back to runs'));
    if (!got) return;
    const region = got.region;
    const data = got.data || {};
    const t = data.task || {};
    h1.textContent = `Run ${t.task_id || id}`;
    setTitle(h1.textContent);

    const usage = t.usage || {};
    const latency = (t.finished_at != null && t.started_at != null) ? fmtLatencySec(t.finished_at - t.started_at) : null;
    region.append(
      h('h2', null, 'Summary'),
      props([
        ['Status', badge(t.status)],
        ['Type', t.task_type],
        ['Task ID', t.task_id || id],
        ['Created', timeEl(t.created_at)],
        ['Started', timeEl(t.started_at)],
        ['Finished', timeEl(t.finished_at)],
        ['Latency', latency],
        ['Steps', t.steps != null ? fmtInt(t.steps) : null],
        ['Tokens', `${fmtInt(usage.input_tokens)} in / ${fmtInt(usage.output_tokens)} out / ${fmtInt(usageTotal(usage))} total`],
        ['Cost', fmtMoney(t.cost_usd)],
        ['Message', t.message ? h('span', { class: 'text' }, t.message) : null],
        t.error ? ['Error', h('span', { class: 'text' }, [t.error.code ? `${t.error.code}: ` : '', t.error.message || ''])] : null,
      ]));

    if (t.result != null) region.append(h('h2', null, 'Result'), pre(t.result));

    const spend = t.spend && typeof t.spend === 'object' ? Object.entries(t.spend) : [];
    if (spend.length) {
      region.append(h('h2', null, 'Spend by agent'), table(null,
        ['Agent', ['Calls', true], ['Input tokens', true], ['Output tokens', true], ['Total tokens', true], ['Cost', true]],
        spend.map(([agent, v]) => {
          const u = (v && v.usage) || {};
          return h('tr', null, td(agent), td(fmtInt(v && v.calls), true), td(fmtInt(u.input_tokens), true),
            td(fmtInt(u.output_tokens), true), td(fmtInt(usageTotal(u)), true), td(fmtMoney(v && v.cost_usd), true));
        })));
    }

    region.append(h('h2', null, 'Timeline'), timelineList(data.events));

    const subtasks = Array.isArray(data.subtasks) ? data.subtasks : [];
    if (subtasks.length) {
      region.append(h('h2', null, 'Subtasks'), h('ul', { class: 'plain' }, subtasks.map((st) => h('li', null,
        props([
          ['Subtask', `#${st.index != null ? st.index : '?'}`],
          ['Status', badge(st.status)],
          // A subtask is part of this task: its attempts' runs are the agents of the timeline's events above.
          ['Runs', Array.isArray(st.runs) && st.runs.length ? h('code', null, st.runs.join(', ')) : 'not started'],
          st.answer != null ? ['Answer', h('span', { class: 'text' }, st.answer)] : null,
        ])))));
    }
  }

  /** The events of a timeline (a task's or a session turn's) as an ordered list of `timeline-event` items. */
  function timelineList(events) {
    const list = Array.isArray(events) ? events : [];
    if (!list.length) return h('p', { class: 'muted', testid: 'timeline-empty' }, 'No events.');
    return h('ol', { class: 'timeline' }, list.map(eventItem));
  }

  function eventItem(ev) {
    ev = ev || {};
    const kind = ev.kind || 'event';
    const pairs = [
      ['Time', timeEl(ev.at)],
      ev.agent != null ? ['Agent', ev.agent] : null,
      ev.step != null ? ['Step', String(ev.step)] : null,
      ev.tool != null ? ['Tool', h('code', null, ev.tool)] : null,
      ev.outcome != null ? ['Outcome', badge(ev.outcome)] : null,
      ev.latency_ms != null ? ['Latency', fmtMs(ev.latency_ms)] : null,
      ev.status != null ? ['Status', badge(ev.status)] : null,
      ev.arguments != null ? ['Arguments', pre(ev.arguments)] : null,
      ev.result != null ? ['Result', pre(ev.result)] : null,
      ev.approval_id != null ? ['Approval', h('a', { href: '#/approvals/' + encodeURIComponent(ev.approval_id) }, ev.approval_id)] : null,
      ev.decision != null ? ['Decision', badge(ev.decision)] : null,
      ev.actor != null ? ['Decided by', ev.actor] : null,
      ev.comment != null && ev.comment !== '' ? ['Comment', h('p', { class: 'comment', testid: 'event-comment' }, ev.comment)] : null,
      ev.subtask_id != null ? ['Subtask', h('code', null, ev.subtask_id)] : null,
    ];
    return h('li', { testid: 'timeline-event', 'data-kind': kind },
      h('h3', null, h('span', { class: 'badge kind' }, kind.replace(/_/g, ' ')), ' ', ev.title || kind),
      props(pairs));
  }

  // ---------------------------------------------------------------- sessions (the stateful API)

  function snippet(text) {
    if (text == null || text === '') return '—';
    const str = typeof text === 'string' ? text : pretty(text);
    return str.length > SNIPPET ? str.slice(0, SNIPPET) + '…' : str;
  }

  function sessionHref(id) {
    return '#/sessions/' + encodeURIComponent(id);
  }

  function turnHref(id, n) {
    return `${sessionHref(id)}/turns/${encodeURIComponent(n)}`;
  }

  function tokensText(usage) {
    const u = usage || {};
    return `${fmtInt(u.input_tokens)} in / ${fmtInt(u.output_tokens)} out / ${fmtInt(usageTotal(u))} total`;
  }

  async function viewSessions() {
    updateHeader('sessions');
    const { seq, root } = startView('Sessions');
    root.append(h('div', { class: 'toolbar' },
      h('p', { class: 'muted' }, 'Your most recent 50 sessions, most recently updated first.'), refreshButton('sessions-refresh')));
    const got = await loaded(seq, root, '/sessions?limit=50');
    if (!got) return;
    const { region, data } = got;
    const list = (data && Array.isArray(data.sessions)) ? data.sessions : [];
    if (!list.length) {
      region.append(h('p', { testid: 'sessions-empty' }, 'No sessions yet.'));
      return;
    }
    region.append(table(plural(list.length, 'session', 'sessions'),
      ['Session', 'Created', 'Updated', 'Expires', ['Turns', true], ['Details', false, true]],
      list.map((x) => h('tr', { testid: 'session-row', 'data-session-id': x.session_id },
        h('td', { class: 'text' }, h('code', null, x.session_id || '—')),
        h('td', null, timeEl(x.created_at)),
        h('td', null, timeEl(x.updated_at)),
        h('td', null, timeEl(x.expires_at)),
        td(fmtInt(x.turns), true),
        h('td', null, h('a', { href: sessionHref(x.session_id) }, 'Open', srOnly(` session ${x.session_id}`)))))));
  }

  function turnRow(id, t) {
    t = t || {};
    return h('tr', { testid: 'turn-row', 'data-turn': t.number },
      td(t.number != null ? String(t.number) : null, true),
      h('td', null, timeEl(t.created_at)),
      h('td', { class: 'text' }, t.message == null || t.message === '' ? '—' : String(t.message)),
      h('td', { class: 'text' }, snippet(t.answer)),
      h('td', null, badge(t.status)),
      td(fmtInt(usageTotal(t.usage)), true),
      td(fmtMoney(t.cost_usd), true),
      h('td', null, t.number != null
        ? h('a', { href: turnHref(id, t.number) }, 'Timeline', srOnly(` of turn ${t.number}`)) : '—'));
  }

  async function viewSession(id) {
    updateHeader('sessions');
    const { seq, root, h1 } = startView('Session');
    const back = h('a', { href: '#/sessions' }, 'Back to sessions');
    const path = '/sessions/' + encodeURIComponent(id);
    const got = await loaded(seq, root, path, back);
    if (!got) return;
    const region = got.region;
    const data = got.data || {};
    const sid = data.session_id || id;
    h1.textContent = `Session ${sid}`;
    setTitle(h1.textContent);

    region.append(
      h('p', null, back),
      h('h2', null, 'Summary'),
      props([
        ['Session ID', h('code', null, sid)],
        ['Created', timeEl(data.created_at)],
        ['Updated', timeEl(data.updated_at)],
        ['Expires', data.expires_at != null ? [timeEl(data.expires_at), ` (time left: ${timeLeft(data.expires_at)})`] : null],
        ['Turns', data.turns != null ? fmtInt(data.turns) : null],
      ]));
    if (data.state != null) region.append(h('h2', null, 'State'), pre(data.state));

    region.append(h('h2', null, 'Turns'));
    const first = Array.isArray(data.history) ? data.history : [];
    if (!first.length) {
      region.append(h('p', { class: 'muted', testid: 'turns-empty' }, 'No turns yet.'));
      return;
    }
    const total = Number(data.turns);
    let shown = 0;
    const setCaption = () => {
      caption.textContent = Number.isFinite(total) && total > shown
        ? `${fmtInt(shown)} of ${plural(total, 'turn', 'turns')}, oldest first` : `${plural(shown, 'turn', 'turns')}, oldest first`;
    };
    const t = table(null,
      [['Turn', true], 'Time', 'Message', `Answer (first ${SNIPPET} characters)`, 'Status', ['Tokens', true], ['Cost', true],
        ['Timeline', false, true]],
      []);
    const caption = t.createCaption();
    const tbody = t.querySelector('tbody');
    const addRows = (entries) => {
      const rows = entries.map((x) => turnRow(sid, x));
      tbody.append(...rows);
      shown += rows.length;
      setCaption();
      return rows;
    };
    addRows(first);
    region.append(t);

    let cursor = data.next_cursor;
    if (!cursor) return;
    const more = h('button', { type: 'button', class: 'secondary', testid: 'turns-more' }, 'Load more turns');
    const moreErr = h('div', { class: 'alert', role: 'alert', testid: 'turns-error' });
    more.addEventListener('click', async () => {
      more.disabled = true;
      moreErr.textContent = '';
      try {
        const page = await api(`${path}?cursor=${encodeURIComponent(cursor)}`);
        if (stale(seq)) return;
        const rows = addRows(page && Array.isArray(page.history) ? page.history : []);
        cursor = page && page.next_cursor;
        announce(`Loaded ${plural(rows.length, 'more turn', 'more turns')}.`);
        if (cursor) {
          more.disabled = false;
        } else {
          more.remove();
          const link = rows.length && rows[0].querySelector('a');
          if (link) link.focus();
        }
      } catch (e) {
        if (stale(seq)) return;
        moreErr.textContent = e && e.message ? e.message : 'Could not load more turns.';
        more.disabled = false;
      }
    });
    region.append(h('div', { class: 'actions' }, more), moreErr);
  }

  async function viewTurn(id, n) {
    updateHeader('sessions');
    const { seq, root, h1 } = startView(`Turn ${n}`);
    const back = h('a', { href: sessionHref(id), testid: 'back-to-session' }, 'Back to session');
    const got = await loaded(seq, root, `/sessions/${encodeURIComponent(id)}/turns/${encodeURIComponent(n)}/timeline`, back);
    if (!got) return;
    const region = got.region;
    const data = got.data || {};
    const t = data.turn || {};
    const sid = data.session_id || id;
    h1.textContent = `Turn ${t.number != null ? t.number : n} of session ${sid}`;
    setTitle(h1.textContent);

    region.append(
      h('p', null, back),
      h('h2', null, 'Summary'),
      props([
        ['Status', badge(t.status)],
        ['Model', t.model != null ? h('code', null, t.model) : null],
        ['Tokens', tokensText(t.usage)],
        ['Cost', fmtMoney(t.cost_usd)],
        ['Time', timeEl(t.created_at)],
        ['Message ID', t.message_id != null ? h('code', null, t.message_id) : null],
        ['Message', t.message != null && t.message !== '' ? h('span', { class: 'text' }, String(t.message)) : null],
        ['Answer', t.answer != null && t.answer !== '' ? h('span', { class: 'text' }, typeof t.answer === 'string' ? t.answer : pretty(t.answer)) : null],
        t.feedback != null ? ['Feedback', typeof t.feedback === 'object' ? pre(t.feedback) : String(t.feedback)] : null,
      ]),
      h('h2', null, 'Timeline'),
      timelineList(data.events));
  }

  // ---------------------------------------------------------------- costs

  function niceCeil(v) {
    if (!(v > 0)) return 1;
    const exp = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * exp) return m * exp;
    return 10 * exp;
  }

  // A stacked bar chart per day by agent of one measure of the cost entries: `metric` names it (id, what, value,
  // format) and its test ids (chart, bar).
  function barChart(entries, metric) {
    const days = [...new Set(entries.map((e) => String(e.day)))].sort();
    const agents = [...new Set(entries.map((e) => String(e.agent)))].sort();
    const colour = (agent) => PALETTE[agents.indexOf(String(agent)) % PALETTE.length];
    const totals = new Map(days.map((d) => [d, 0]));
    for (const e of entries) totals.set(String(e.day), totals.get(String(e.day)) + Math.max(0, metric.value(e)));
    const grand = [...totals.values()].reduce((x, y) => x + y, 0);
    const top = niceCeil(Math.max(0, ...totals.values()));

    const ml = 72, mr = 16, mt = 16, mb = 40;
    const band = Math.max(36, Math.min(72, 600 / Math.max(1, days.length)));
    const plotW = band * days.length;
    const plotH = 220;
    const W = ml + plotW + mr, H = mt + plotH + mb;
    const y = (v) => mt + plotH - (v / top) * plotH;
    const barW = Math.min(40, band * 0.65);

    const svg = s('svg', {
      class: 'chart', role: 'img', viewBox: `0 0 ${W} ${H}`, width: String(W), height: String(H),
      preserveAspectRatio: 'xMinYMin meet',
      'aria-labelledby': `${metric.id}-title ${metric.id}-desc`, testid: metric.chart, focusable: 'false',
    },
    s('title', { id: `${metric.id}-title` }, `${metric.what} per day by agent`),
    s('desc', { id: `${metric.id}-desc` },
      `Stacked bars for ${plural(days.length, 'day', 'days')} and ${plural(agents.length, 'agent', 'agents')}; total ${metric.format(grand)}. The same data is in the table below.`));

    const ticks = 4;
    for (let i = 0; i <= ticks; i++) {
      const v = (top * i) / ticks;
      const yy = y(v);
      svg.append(
        s('line', { class: i === 0 ? 'axis' : 'grid', x1: ml, x2: ml + plotW, y1: yy, y2: yy }),
        s('text', { x: ml - 6, y: yy + 4, 'text-anchor': 'end' }, metric.format(v)));
    }
    svg.append(s('line', { class: 'axis', x1: ml, x2: ml, y1: mt, y2: mt + plotH }));

    days.forEach((day, i) => {
      const x = ml + i * band + (band - barW) / 2;
      let acc = 0;
      for (const agent of agents) {
        for (const e of entries) {
          if (String(e.day) !== day || String(e.agent) !== agent) continue;
          const v = Math.max(0, metric.value(e));
          const y0 = y(acc), y1 = y(acc + v);
          acc += v;
          svg.append(s('rect', {
            x: x.toFixed(2), y: y1.toFixed(2), width: barW.toFixed(2), height: Math.max(0, y0 - y1).toFixed(2),
            fill: colour(agent), testid: metric.bar, 'data-day': day, 'data-agent': agent, 'data-value': String(v),
          }, s('title', null, `${day} · ${agent}: ${metric.format(v)}`)));
        }
      }
      svg.append(s('text', { x: (ml + i * band + band / 2).toFixed(2), y: mt + plotH + 16, 'text-anchor': 'middle' },
        day.length >= 10 ? day.slice(5) : day));
    });

    const legend = h('ul', { class: 'legend', 'aria-label': `Legend of ${metric.what}` }, agents.map((agent) => h('li', null,
      s('svg', { class: 'swatch', width: '14', height: '14', viewBox: '0 0 14 14', 'aria-hidden': 'true', focusable: 'false' },
        s('rect', { x: '0.5', y: '0.5', width: '13', height: '13', rx: '2', fill: colour(agent), stroke: '#333' })),
      agent)));
    return h('div', { class: 'chart-wrap' }, svg, legend);
  }

  async function viewCosts() {
    updateHeader('costs');
    const { seq, root } = startView('Costs');
    const got = await loaded(seq, root, `/costs?days=${COST_DAYS}`);
    if (!got) return;
    const { region, data } = got;
    const currency = (data && data.currency) || 'USD';
    const entries = (data && Array.isArray(data.days) ? data.days : [])
      .filter((e) => e && typeof e === 'object')
      .slice()
      .sort((p, q) => String(p.day).localeCompare(String(q.day)) || String(p.agent).localeCompare(String(q.agent)));
    region.append(h('p', { class: 'muted' },
      `Last ${COST_DAYS} days, in ${currency}` + (data && data.source ? `; source: ${data.source}.` : '.')));
    if (!entries.length) {
      region.append(h('p', { testid: 'costs-empty' }, `No costs in the last ${COST_DAYS} days.`));
      return;
    }
    region.append(
      h('h2', null, 'Cost per day'),
      barChart(entries, {
        id: 'costs-chart', what: `Cost in ${currency}`, chart: 'costs-chart', bar: 'costs-bar',
        value: (e) => Number(e.cost_usd) || 0, format: (v) => fmtMoney(v, currency),
      }),
      h('h2', null, 'Tokens per day'),
      barChart(entries, {
        id: 'tokens-chart', what: 'Tokens (input and output)', chart: 'tokens-chart', bar: 'tokens-bar',
        value: (e) => (Number(e.input_tokens) || 0) + (Number(e.output_tokens) || 0), format: (v) => fmtInt(Math.round(v)),
      }));

    const sum = (k) => entries.reduce((acc, e) => acc + (Number(e[k]) || 0), 0);
    region.append(h('h2', null, 'Cost per agent per day'), table(null,
      ['Day', 'Agent', ['Tasks', true], ['Input tokens', true], ['Output tokens', true], [`Cost (${currency})`, true]],
      entries.map((e) => h('tr', { testid: 'costs-row', 'data-day': e.day, 'data-agent': e.agent },
        td(e.day), td(e.agent), td(fmtInt(e.tasks), true), td(fmtInt(e.input_tokens), true),
        td(fmtInt(e.output_tokens), true), td(fmtMoney(e.cost_usd, currency), true))),
      {
        foot: h('tr', null, h('th', { scope: 'row', colspan: '2' }, 'Total'), td(fmtInt(sum('tasks')), true),
          td(fmtInt(sum('input_tokens')), true), td(fmtInt(sum('output_tokens')), true), td(fmtMoney(sum('cost_usd'), currency), true)),
      }));
  }

  // ---------------------------------------------------------------- boot

  async function loadConfig() {
    const resp = await fetch('config.json', { cache: 'no-store' });
    if (!resp.ok) throw new Error(`Could not load config.json (HTTP ${resp.status}).`);
    const cfg = await resp.json();
    if (!cfg || typeof cfg !== 'object') throw new Error('config.json is not a JSON object.');
    if (cfg.mode !== 'local' && cfg.mode !== 'cognito') throw new Error('config.json has an unknown "mode".');
    if (cfg.mode === 'cognito' && (!cfg.cognito || !cfg.cognito.domain || !cfg.cognito.clientId)) {
      throw new Error('config.json is missing the "cognito" settings.');
    }
    return cfg;
  }

  async function init() {
    els = {
      view: document.getElementById('view'),
      live: document.getElementById('live'),
      nav: document.getElementById('main-nav'),
      who: document.getElementById('who'),
      signout: document.getElementById('signout'),
      brand: document.getElementById('brand'),
    };
    els.signout.addEventListener('click', signOut);
    const skip = document.getElementById('skip-link');
    if (skip) {
      skip.addEventListener('click', (ev) => {
        ev.preventDefault();
        const h1 = els.view.querySelector('h1');
        if (h1) h1.focus();
      });
    }

    try {
      state.config = await loadConfig();
    } catch (e) {
      clear(els.view);
      const h1 = h('h1', { tabindex: '-1', testid: 'view-title' }, 'Console unavailable');
      els.view.append(h1, errorBox(e));
      document.title = 'Console unavailable';
      return;
    }
    if (state.config.title) els.brand.textContent = state.config.title;
    setTitle('');

    if (state.config.mode === 'cognito') {
      try {
        await handleCognitoCallback();
      } catch (e) {
        clearSession();
        state.signinError = e && e.message ? e.message : 'Sign-in failed.';
      }
    }
    if (!state.session) state.session = loadSession();

    window.addEventListener('hashchange', route);
    setInterval(checkExpiry, 15000);
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') checkExpiry();
    });

    if (state.session && isExpired(state.session)) {
      if (state.config.mode === 'cognito' && state.signinError) {
        // A failed callback: do not bounce straight back to the hosted UI; show the error.
        clearSession();
        state.expired = true;
      } else {
        expire();
        return;
      }
    }
    route();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
