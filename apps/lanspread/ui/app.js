/*
 * app.js: the whole behaviour of the lanspread page (docs/API.md, "The page").
 *
 * It owns:
 *  - the page's copy of the daemon state: replaced by each `snapshot`
 *    event, then changed only by `game-state`, `games`, `peers` and
 *    `settings` events (never by guesses made here);
 *  - view-only state the daemon does not know about: which button's POST is
 *    in flight, which card shows an "are you sure?" question, the refusal
 *    text of a failed POST (shown until the next game-state of that game),
 *    and which settings fields the user has edited but not saved;
 *  - rendering: cards are keyed by game id and updated in place, so a
 *    progress update does not recreate the buttons under the mouse; the
 *    words of a state or a button (a paused card's Resume and Discard),
 *    the percentages and sizes.
 */
'use strict';

const ACTION_LABELS = {
  download: 'Download', pause: 'Pause', cancel: 'Cancel', install: 'Install', play: 'Play',
  update: 'Update', uninstall: 'Uninstall', remove: 'Remove files', verify: 'Verify',
  repair: 'Repair',
};
// A paused download: download resumes it, cancel discards what it has.
const PAUSED_LABELS = { download: 'Resume', cancel: 'Discard' };
const CONFIRM_QUESTIONS = {
  uninstall: 'Really uninstall?',
  remove: 'Really remove the downloaded files?',
};
const STATE_LABELS = {
  available: 'Available', downloading: 'Downloading', installing: 'Installing',
  downloaded: 'Downloaded', installed: 'Installed', update_available: 'Update available',
  uninstalling: 'Uninstalling', removing: 'Removing', unavailable: 'Unavailable',
  paused: 'Paused', verifying: 'Verifying',
};
// The busy states with a progress bar: its label, and its text before the
// first numbers come.
const PROGRESS = {
  downloading: ['Download progress', 'Starting download…'],
  verifying: ['Verify progress', 'Starting verification…'],
  installing: ['Install progress', 'Installing…'],
};
const FILTERS = {
  all: () => true,
  installed: (c) => c.state === 'installed' || c.state === 'update_available',
  available: (c) => c.state === 'available',
  updates: (c) => c.state === 'update_available',
};
const NO_GAMES = 'No games yet: add games to GAME_DIR or wait for peers';
const NO_MATCH = 'No games match the search or filter.';

let state = null; // {seq, setup_needed, runtime, settings, games: Map, peers}
const view = {
  pending: new Map(),    // game id -> action whose POST has not answered yet
  confirming: new Map(), // game id -> action waiting for Yes/No
  refused: new Map(),    // game id -> error text of the last refused POST
  dirty: new Set(),      // ids of settings inputs edited since last filled
};

const $ = (sel, root) => (root || document).querySelector(sel);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

function setText(node, text) {
  const t = text === undefined || text === null ? '' : String(text);
  if (node.textContent !== t) node.textContent = t;
}

/* ---- talking to the daemon ------------------------------------------ */

async function api(method, path, body) {
  // The session cookie (HttpOnly) goes with every same-origin request.
  const opts = { method, headers: {} };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch('/api/' + path, opts);
  } catch (err) {
    return { ok: false, status: 0, data: { error: 'Cannot reach lanspread (' + err.message + ')' } };
  }
  if (res.status === 401) {
    location.reload(); // the session ended: the server shows the login page
    return { ok: false, status: 401, data: { error: 'Logged out' } };
  }
  let data = null;
  try { data = await res.json(); } catch (err) { data = null; }
  if (!res.ok && !(data && data.error)) data = { error: 'Request failed (HTTP ' + res.status + ')' };
  return { ok: res.ok, status: res.status, data };
}

function connect() {
  const source = new EventSource('/api/events');
  source.addEventListener('snapshot', (ev) => handle(ev, applySnapshot));
  source.addEventListener('game-state', (ev) => handle(ev, applyGameState));
  source.addEventListener('games', (ev) => handle(ev, applyGames));
  source.addEventListener('peers', (ev) => handle(ev, applyPeers));
  source.addEventListener('settings', (ev) => handle(ev, applySettings));
  source.onerror = () => {
    showBanner(true);
    // A refused connection (e.g. HTTP error) is not retried by the browser;
    // one refused for an ended session finds the login page on reload.
    if (source.readyState === EventSource.CLOSED) setTimeout(checkSession, 3000);
  };
}

function handle(ev, apply) {
  let data;
  try { data = JSON.parse(ev.data); } catch (err) { return; }
  if (!state && apply !== applySnapshot) return; // nothing to apply it to yet
  apply(data);
}

/* ---- applying state ------------------------------------------------- */

function applySnapshot(snap) {
  showBanner(false);
  state = {
    seq: snap.seq,
    setup_needed: !!snap.setup_needed,
    runtime: snap.runtime || {},
    version: snap.version || '',
    settings: snap.settings || {},
    suggested_game_dir: snap.suggested_game_dir || '',
    games: new Map(),
    peers: snap.peers || [],
  };
  for (const card of snap.games || []) state.games.set(card.id, card);
  view.refused.clear();
  renderAll();
}

function applyGameState(card) {
  state.games.set(card.id, card);
  view.refused.delete(card.id);
  renderLibrary();
}

function applyGames(data) {
  state.games = new Map();
  for (const card of data.games || []) state.games.set(card.id, card);
  renderLibrary();
}

function applyPeers(data) {
  state.peers = data.peers || [];
  renderPeers();
  renderHeader();
}

function applySettings(data) {
  if (data.settings) state.settings = data.settings;
  if (data.runtime) state.runtime = data.runtime;
  if (data.version) state.version = data.version;
  if ('setup_needed' in data) state.setup_needed = !!data.setup_needed;
  if ('suggested_game_dir' in data) state.suggested_game_dir = data.suggested_game_dir || '';
  renderAll();
}

/* ---- formatting ------------------------------------------------------ */

function formatSize(bytes) {
  if (typeof bytes !== 'number' || !isFinite(bytes)) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes, i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  if (i === 0) return v + ' B';
  return (v >= 100 ? v.toFixed(0) : v.toFixed(1)) + ' ' + units[i];
}

function formatSpeed(bps) {
  const units = ['B/s', 'kB/s', 'MB/s', 'GB/s'];
  let v = bps, i = 0;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return (i === 0 ? Math.round(v) : v.toFixed(1)) + ' ' + units[i];
}

function formatEta(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return s + ' s';
  if (s < 3600) {
    const m = Math.floor(s / 60), r = s % 60;
    return r ? m + ' min ' + r + ' s' : m + ' min';
  }
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return m ? h + ' h ' + m + ' min' : h + ' h';
}

function plural(n, one, many) {
  return n + ' ' + (n === 1 ? one : many);
}

function percent(bytes, total) {
  return Math.floor((100 * bytes) / total);
}

// "Paused 60%" for a paused download; else the state's label.
function stateText(card) {
  const dl = card.download;
  if (card.state === 'paused' && dl && dl.total_bytes > 0)
    return STATE_LABELS.paused + ' ' + percent(dl.bytes, dl.total_bytes) + '%';
  return STATE_LABELS[card.state] || card.state;
}

function actionLabel(card, action) {
  return (card.state === 'paused' && PAUSED_LABELS[action]) || ACTION_LABELS[action] || action;
}

// The offer of the latest version (the runtime's "offers", newest first).
function latestOffer(card) {
  return (card.offers || []).find((o) => o.version === card.latest_version);
}

function versionText(card) {
  const local = card.local_version, latest = card.latest_version;
  const offer = latestOffer(card);
  const mark = !offer ? '' : offer.pinned ? ' (pinned)' : offer.new_peers_only ? ' (new peers only)' : '';
  if (local && latest && local !== latest) return local + ' → ' + latest + mark;
  return (local || latest || '?') + (local === latest ? '' : mark);
}

// "alice (ab12cd34…)": a peer by its name and the start of its id.
function peerText(p) {
  return (p.name || '?') + ' (' + String(p.peer_id || '').slice(0, 8) + '…)';
}

// Who offers one version: "2.0 (pinned, new peers only) from alice
// (ab12cd34…), bob (cd34ef56…)".
function offerText(o) {
  const marks = [o.pinned && 'pinned', o.new_peers_only && 'new peers only'].filter(Boolean);
  return o.version + (marks.length ? ' (' + marks.join(', ') + ')' : '') + ' from ' +
    o.peers.map(peerText).join(', ');
}

// A refused offer, with the daemon's reason: "2.0 from evil (e0dd1234…)
// refused: its file list is not the pinned one".
function refusalText(r) {
  return r.version + ' from ' + peerText(r) + ' refused: ' + (r.message || r.code);
}

// Who offers each version, for the version's tooltip.
function offersTitle(card) {
  return (card.offers || []).map(offerText).join('; ');
}

/* ---- library ---------------------------------------------------------- */

function sortedGames() {
  return Array.from(state.games.values()).sort((a, b) =>
    (a.name || a.id).localeCompare(b.name || b.id, undefined, { sensitivity: 'base' }) ||
    a.id.localeCompare(b.id));
}

function matches(card) {
  const filter = FILTERS[$('#filter').value] || FILTERS.all;
  const q = $('#search').value.trim().toLowerCase();
  if (!filter(card)) return false;
  return !q || (card.name || '').toLowerCase().includes(q) || card.id.toLowerCase().includes(q);
}

function renderLibrary() {
  if (!state) return;
  const lib = $('#library');
  const old = new Map();
  for (const node of lib.children) old.set(node.dataset.gameId, node);
  let shown = 0;
  sortedGames().forEach((card, i) => {
    const node = old.get(card.id) || createCard(card.id);
    old.delete(card.id);
    updateCard(node, card);
    node.hidden = !matches(card);
    if (!node.hidden) shown++;
    if (lib.children[i] !== node) lib.insertBefore(node, lib.children[i] || null);
  });
  for (const node of old.values()) node.remove();
  const empty = $('#empty');
  setText(empty, state.games.size ? NO_MATCH : NO_GAMES);
  empty.hidden = shown > 0;
}

function cardElement(id) {
  return $('#library').querySelector('.card[data-game-id="' + CSS.escape(id) + '"]');
}

function rerenderCard(id) {
  const card = state && state.games.get(id);
  const node = cardElement(id);
  if (card && node) updateCard(node, card);
}

function createCard(id) {
  const card = el('article', 'card');
  card.dataset.gameId = id;
  const head = el('div', 'card-head');
  head.append(el('h3', 'name'), el('span', 'state'));
  const meta = el('dl', 'meta');
  for (const [label, cls] of [['Genre', 'genre'], ['Players', 'players'], ['Size', 'size'],
    ['Version', 'version'], ['Peers', 'seeders']]) {
    const row = el('div');
    row.append(el('dt', null, label), el('dd', cls));
    meta.append(row);
  }
  card.append(head, meta, el('div', 'offers-slot'), el('p', 'description'), el('div', 'progress-slot'),
    el('div', 'verify-slot'), el('div', 'error-slot'), el('div', 'actions'));
  return card;
}

function updateCard(node, card) {
  if (node.dataset.state !== card.state) node.dataset.state = card.state;
  setText($('.name', node), card.name || card.id);
  setText($('.state', node), stateText(card));
  setText($('.genre', node), card.genre || '—');
  setText($('.players', node), card.max_players ? 'up to ' + card.max_players : '—');
  setText($('.size', node), formatSize(card.size));
  setText($('.version', node), versionText(card));
  const offers = offersTitle(card);
  const versionTitle = 'installed: ' + (card.local_version || 'none') +
    ', latest: ' + (card.latest_version || 'unknown') + (offers ? '; offered: ' + offers : '');
  if ($('.version', node).title !== versionTitle) $('.version', node).title = versionTitle;
  setText($('.seeders', node), card.peers ? 'on ' + plural(card.peers, 'peer', 'peers') : 'none');
  setText($('.description', node), card.description || '');
  updateOffers($('.offers-slot', node), card);
  updateProgress($('.progress-slot', node), card);
  updateVerify($('.verify-slot', node), card);
  updateError($('.error-slot', node), card);
  updateActions($('.actions', node), card);
}

const REFUSALS_SHOWN = 3;

// Who offers the latest version (what Download or Update fetches), every
// other version's offer in a details element, and the refused offers with
// why: visible text, so the peers are known before an update.
function updateOffers(slot, card) {
  const offers = card.offers || [], refused = card.refused_offers || [];
  const sig = JSON.stringify([card.latest_version, offers, refused]);
  if (slot.dataset.sig === sig) return;
  slot.dataset.sig = sig;
  const parts = [];
  const latest = latestOffer(card);
  if (latest) parts.push(el('p', 'offered-by', 'Offered: ' + offerText(latest)));
  const others = offers.filter((o) => o !== latest);
  if (others.length) {
    const details = el('details', 'other-offers');
    const list = el('ul');
    for (const o of others) list.append(el('li', null, offerText(o)));
    details.append(el('summary', null, plural(others.length, 'other version', 'other versions') +
      ' offered'), list);
    parts.push(details);
  }
  for (const r of refused.slice(0, REFUSALS_SHOWN)) {
    const p = el('p', 'refused-offer', refusalText(r));
    p.dataset.version = r.version;
    p.dataset.peerId = r.peer_id;
    parts.push(p);
  }
  if (refused.length > REFUSALS_SHOWN)
    parts.push(el('p', 'refused-offer', 'and ' + (refused.length - REFUSALS_SHOWN) + ' more refused'));
  slot.replaceChildren(...parts);
}

// The bar of a running operation, or of a paused download where it stopped.
function updateProgress(slot, card) {
  const paused = card.state === 'paused' && card.download;
  const [label, starting] = paused ? ['Download progress', 'Paused'] : PROGRESS[card.state] || [];
  if (!label) { if (slot.firstChild) slot.replaceChildren(); return; }
  let bar = $('.progress', slot), text = $('.progress-text', slot);
  if (!bar) {
    bar = el('progress', 'progress');
    text = el('p', 'progress-text');
    slot.replaceChildren(bar, text);
  }
  if (bar.getAttribute('aria-label') !== label) bar.setAttribute('aria-label', label);
  const p = paused ? card.download : card.progress;
  if (!p || !(p.total_bytes > 0)) {
    bar.removeAttribute('value'); // indeterminate
    setText(text, starting);
    setText(bar, text.textContent);
    return;
  }
  if (bar.max !== p.total_bytes) bar.max = p.total_bytes;
  bar.value = Math.min(p.bytes, p.total_bytes);
  setText(text, progressText(card.state, p));
  setText(bar, text.textContent); // fallback content, also the bar's text
}

function progressText(st, p) {
  const parts = [percent(p.bytes, p.total_bytes) + '%',
    formatSize(p.bytes) + ' of ' + formatSize(p.total_bytes)];
  if (st === 'paused') parts.unshift('Paused');
  if (st === 'downloading' || st === 'verifying') {
    if (p.bytes_per_sec > 0) parts.push(formatSpeed(p.bytes_per_sec));
    if (p.eta_s > 0) parts.push(formatEta(p.eta_s) + ' left');
  }
  return parts.join(' · ');
}

// The last verification's (or repair's) result, in the daemon's words.
function updateVerify(slot, card) {
  const v = card.verify || null;
  const sig = JSON.stringify(v && [v.ok, v.message]);
  if (slot.dataset.sig === sig) return;
  slot.dataset.sig = sig;
  if (!v) { slot.replaceChildren(); return; }
  const p = el('p', 'verify', v.message);
  p.dataset.ok = v.ok ? 'true' : 'false';
  p.setAttribute('role', 'status');
  slot.replaceChildren(p);
}

function updateError(slot, card) {
  const refused = view.refused.get(card.id) || null;
  const err = card.error || null;
  const sig = JSON.stringify([refused, err]);
  if (slot.dataset.sig === sig) return;
  slot.dataset.sig = sig;
  if (!refused && !err) { slot.replaceChildren(); return; }
  const box = el('div', 'error');
  box.setAttribute('role', 'alert');
  if (refused) box.append(el('p', 'error-message transient', refused));
  if (err) {
    box.append(el('p', 'error-message', err.message || 'Something went wrong'));
    if (err.detail) {
      const details = el('details');
      details.append(el('summary', null, 'Details'), el('pre', 'error-detail', err.detail));
      box.append(details);
    }
  }
  slot.replaceChildren(box);
}

function updateActions(slot, card) {
  const actions = card.actions || [];
  let asking = view.confirming.get(card.id);
  if (asking && !actions.includes(asking)) {
    view.confirming.delete(card.id);
    asking = undefined;
  }
  // A pending action no longer offered needs no disabled button: leave the
  // buttons alone when its POST answers.
  const pending = actions.includes(view.pending.get(card.id)) ? view.pending.get(card.id) : null;
  const sig = JSON.stringify([actions, pending, asking || null, card.state]);
  if (slot.dataset.sig === sig) return;
  slot.dataset.sig = sig;
  if (asking) { slot.replaceChildren(confirmBox(asking)); return; }
  slot.replaceChildren(...actions.map((action, i) => {
    const b = el('button', i === 0 ? 'primary' : null, actionLabel(card, action));
    b.type = 'button';
    b.dataset.action = action;
    b.disabled = pending === action;
    return b;
  }));
}

function confirmBox(action) {
  const box = el('div', 'confirm');
  const yes = el('button', 'danger', 'Yes');
  const no = el('button', null, 'No');
  yes.type = no.type = 'button';
  yes.dataset.confirm = 'yes';
  no.dataset.confirm = 'no';
  box.append(el('span', 'confirm-question', CONFIRM_QUESTIONS[action] || 'Are you sure?'), yes, no);
  return box;
}

function onLibraryClick(ev) {
  const button = ev.target.closest('button');
  const cardNode = button && button.closest('.card');
  if (!cardNode || button.disabled) return;
  const id = cardNode.dataset.gameId;
  if (button.dataset.action) {
    const action = button.dataset.action;
    if (CONFIRM_QUESTIONS[action]) {
      view.confirming.set(id, action);
      rerenderCard(id);
      const no = $('[data-confirm="no"]', cardNode);
      if (no) no.focus();
    } else {
      runAction(id, action);
    }
  } else if (button.dataset.confirm) {
    const action = view.confirming.get(id);
    view.confirming.delete(id);
    if (button.dataset.confirm === 'yes' && action) runAction(id, action);
    else rerenderCard(id);
  }
}

async function runAction(id, action) {
  view.pending.set(id, action);
  view.refused.delete(id);
  rerenderCard(id);
  const res = await api('POST', 'games/' + encodeURIComponent(id) + '/' + action, {});
  if (view.pending.get(id) === action) view.pending.delete(id);
  if (!res.ok) view.refused.set(id, res.data.error);
  rerenderCard(id);
}

/* ---- peers, header, setup ------------------------------------------- */

function renderPeers() {
  const list = $('#peers');
  const peers = state.peers.slice().sort((a, b) =>
    (a.status === 'connected' ? 0 : 1) - (b.status === 'connected' ? 0 : 1) ||
    (a.name || '').localeCompare(b.name || ''));
  list.replaceChildren(...peers.map((p) => {
    const li = el('li', 'peer');
    li.dataset.peerId = p.peer_id;
    li.dataset.status = p.status;
    li.append(el('span', 'peer-name', p.name || p.peer_id),
      el('span', 'peer-status', p.status),
      el('span', 'peer-addr', p.addr),
      el('span', 'peer-games', plural(p.games || 0, 'game', 'games')));
    return li;
  }));
  $('#no-peers').hidden = peers.length > 0;
}

function renderHeader() {
  const connected = state.peers.filter((p) => p.status === 'connected').length;
  setText($('#peer-name'), state.settings.name || '');
  setText($('#peer-count'), plural(connected, 'peer', 'peers') + ' connected');
  const status = $('#status');
  const error = state.runtime && state.runtime.error;
  setText(status, error || '');
  status.hidden = !error || state.setup_needed;
}

function renderSetup() {
  const setup = state.setup_needed;
  $('#setup').hidden = !setup;
  $('#library-panel').hidden = setup;
  $('#peers-panel').hidden = setup;
  /* No directory yet: propose the usual one, to be created. */
  const proposed = !state.settings.game_dir && state.suggested_game_dir;
  fillField($('#setup-game-dir'), state.settings.game_dir || state.suggested_game_dir || '');
  if (proposed && !view.dirty.has('setup-game-dir')) $('#setup-create').checked = true;
  const error = state.runtime && state.runtime.error;
  setText($('#setup-error'), error || '');
  $('#setup-error').hidden = !error;
}

/* ---- settings ------------------------------------------------------- */

function fillField(input, value) {
  if (document.activeElement === input || view.dirty.has(input.id)) return;
  if (input.value !== value) input.value = value;
}

function renderSettings() {
  const s = state.settings;
  fillField($('#game-dir'), s.game_dir || '');
  fillField($('#name'), s.name || '');
  fillField($('#static-peers'), (s.static_peers || []).join('\n'));
  setText($('#config-file'), s.config_file ? 'Settings file: ' + s.config_file : '');
  const listen = state.runtime && state.runtime.listen;
  setText($('#about'), 'Lanspread ' + state.version +
    (listen ? ' \u00b7 peers reach this one on UDP ' + listen : ''));
  renderTrust();
}

/* The party key and the UI password: the daemon says only whether each is
 * set (and the key's fingerprint), never a secret. */
function renderTrust() {
  const key = state.settings.party_key || {};
  const fp = key.fingerprint ? ' \u00b7 fingerprint ' + key.fingerprint : '';
  setText($('#party-key-status'), key.fixed
    ? 'Set by --party-key-file for this run' + fp + '; change that file to change it.'
    : key.set ? 'Party key set' + fp + ': only peers with the same key are linked.'
      : 'No party key: every peer is answered.');
  for (const id of ['party-key', 'set-party-key']) $('#' + id).disabled = !!key.fixed;
  $('#clear-party-key').disabled = !!key.fixed || !key.set;
  const pw = !!state.settings.ui_password;
  setText($('#password-status'), pw ? 'A UI password is set: it logs in from any machine.'
    : 'No UI password: only login addresses (lanspread --login-url) log in.');
  $('#current-password').hidden = !pw;
  $('#current-password-label').hidden = !pw;
  $('#remove-password').hidden = !pw;
}

function report(message, res, okText) {
  setText(message, res.ok ? okText : res.data.error);
  message.className = 'message ' + (res.ok ? 'ok' : 'bad');
}

async function putPartyKey(value) {
  const message = $('#party-key-message');
  setText(message, 'Saving…');
  message.className = 'message';
  const res = await api('PUT', 'settings', { party_key: value });
  if (res.ok && res.data && res.data.settings) applySettings(res.data);
  const fp = res.ok && res.data.settings.party_key && res.data.settings.party_key.fingerprint;
  report(message, res, fp ? 'Party key set: fingerprint ' + fp + '. Links are made again under it.'
    : 'Party key cleared.');
  if (res.ok) $('#party-key').value = '';
}

async function changePassword(next) {
  const message = $('#password-message');
  setText(message, 'Saving…');
  message.className = 'message';
  const res = await api('PUT', 'password', { current: $('#current-password').value, new: next });
  report(message, res, next ? 'Password changed: every other session was logged out.'
    : 'Password removed.');
  if (!res.ok) return;
  $('#current-password').value = '';
  $('#new-password').value = '';
  state.settings.ui_password = !!res.data.password_set;
  renderTrust();
}

function staticPeersValue() {
  return $('#static-peers').value.split('\n').map((l) => l.trim()).filter(Boolean);
}

/* Sends only what differs from the daemon's settings, so saving a new name
 * does not also re-apply an unchanged game directory. */
function settingsBody() {
  const s = (state && state.settings) || {};
  const body = {};
  const dir = $('#game-dir').value.trim();
  if (dir !== (s.game_dir || '') || (state && state.setup_needed)) {
    body.game_dir = dir;
    body.create = $('#create-dir').checked;
  }
  const name = $('#name').value.trim();
  if (name !== (s.name || '')) body.name = name;
  const peers = staticPeersValue();
  if (JSON.stringify(peers) !== JSON.stringify(s.static_peers || [])) body.static_peers = peers;
  return body;
}

async function putSettings(body, button, message, fields) {
  button.disabled = true;
  setText(message, 'Saving…');
  message.className = 'message';
  const res = await api('PUT', 'settings', body);
  button.disabled = false;
  setText(message, res.ok ? 'Saved' : res.data.error);
  message.classList.add(res.ok ? 'ok' : 'bad');
  if (!res.ok) return;
  for (const id of fields) view.dirty.delete(id);
  if (state && res.data && res.data.settings) applySettings(res.data);
}

function onSaveSettings(ev) {
  ev.preventDefault();
  putSettings(settingsBody(), $('#save-settings'), $('#settings-message'),
    ['game-dir', 'name', 'static-peers']);
}

function onSetupSave(ev) {
  ev.preventDefault();
  const body = { game_dir: $('#setup-game-dir').value.trim(), create: $('#setup-create').checked };
  putSettings(body, $('#setup-save'), $('#setup-message'), ['setup-game-dir']);
}

/* Debounced POST /api/check-game-dir while the user types a path; create
 * is the "create it if missing" box next to it. */
function watchGameDir(input, output, create) {
  let timer = 0, asked = 0;
  input.addEventListener('input', () => {
    clearTimeout(timer);
    setText(output, '');
    output.className = 'check';
    const path = input.value.trim();
    if (!path) return;
    timer = setTimeout(async () => {
      const mine = ++asked;
      const res = await api('POST', 'check-game-dir', { path, create: create.checked });
      if (mine !== asked || input.value.trim() !== path) return; // stale answer
      const ok = res.ok && res.data && res.data.ok;
      const good = (res.data && res.data.note) || 'OK: usable game directory';
      setText(output, ok ? good : (res.data && res.data.error) || 'Not usable');
      output.classList.add(ok ? 'ok' : 'bad');
    }, 400);
  });
}

/* ---- wiring ----------------------------------------------------------- */

function showBanner(on) {
  $('#banner').hidden = !on;
}

function renderAll() {
  renderHeader();
  renderSetup();
  renderSettings();
  renderPeers();
  renderLibrary();
}

function init() {
  $('#library').addEventListener('click', onLibraryClick);
  $('#search').addEventListener('input', renderLibrary);
  $('#filter').addEventListener('change', renderLibrary);
  $('#settings-form').addEventListener('submit', onSaveSettings);
  $('#setup-form').addEventListener('submit', onSetupSave);
  $('#party-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!$('#party-key').value.trim()) {
      setText($('#party-key-message'), 'Type the party key first.');
      $('#party-key-message').className = 'message bad';
      return;
    }
    putPartyKey($('#party-key').value);
  });
  $('#clear-party-key').addEventListener('click', () => putPartyKey(null));
  $('#password-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    changePassword($('#new-password').value);
  });
  $('#remove-password').addEventListener('click', () => changePassword(''));
  for (const id of ['game-dir', 'name', 'static-peers', 'setup-game-dir']) {
    document.getElementById(id).addEventListener('input', () => view.dirty.add(id));
  }
  watchGameDir($('#game-dir'), $('#game-dir-check'), $('#create-dir'));
  watchGameDir($('#setup-game-dir'), $('#setup-game-dir-check'), $('#setup-create'));
  $('#logout').addEventListener('click', async () => {
    await api('POST', 'logout');
    location.reload();
  });
  connect();
}

async function checkSession() {
  const r = await api('GET', 'state'); // reloads on 401
  if (r.status !== 401) connect();
}

init();
