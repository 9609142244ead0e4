// Switchboard desk: the agent desk, the supervisor view and the admin console, on the public
// REST API and the WebSocket stream only. Plain JavaScript, no build step. Text from the API is
// only ever set as text (never as HTML).
'use strict';

const S = {
  user: null, csrf: '', ws: null, lastId: 0, retry: 500,
  openId: null, conversation: null, messages: [], unread: new Map(), offers: [],
  templates: [], windowTimer: null, refreshTimer: null,
  warnings: new Map(), // conversation id → its conversation.window_closing.v1
  drafts: new Map(), // conversation id → the reply being written (kept across re-renders)
  typingAt: 0, typingTimer: null,
  inflight: 0, // API requests not yet answered
};
const $ = (id) => document.getElementById(id);
const PRESENCES = { available: 'Available', busy: 'Busy', busy_dnd: 'Do not disturb', away: 'Away', offline: 'Offline' };

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat()) {
    if (kid !== null && kid !== undefined && kid !== false) el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body, extra) {
  const headers = { accept: 'application/json', ...(extra || {}) };
  // A File goes as its raw bytes (an upload), anything else as JSON.
  const raw = typeof Blob !== 'undefined' && body instanceof Blob;
  if (body !== undefined) headers['content-type'] = raw ? (body.type || 'application/octet-stream') : 'application/json';
  if (method !== 'GET' && S.csrf) headers['x-csrf-token'] = S.csrf;
  S.inflight += 1;
  let res, text;
  try {
    res = await fetch('/api/v1' + path, {
      method, headers, credentials: 'same-origin', body: body === undefined || raw ? body : JSON.stringify(body),
    });
    text = await res.text();
  } finally {
    S.inflight -= 1;
  }
  const json = text ? JSON.parse(text) : null;
  if (!res.ok) {
    if (res.status === 401 && S.user && !path.startsWith('/auth/')) signedOut('Your session has ended. Sign in again.');
    throw new ApiError(res.status, (json && json.error && json.error.message) || res.statusText);
  }
  return json;
}

function notice(text, ok) {
  const el = $('notice');
  el.textContent = text;
  el.className = ok ? 'notice ok' : 'notice';
  el.hidden = !text;
}

async function attempt(fn) {
  try { notice(''); return await fn(); } catch (e) { notice(e.message); return undefined; }
}

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  const two = (n) => String(n).padStart(2, '0');
  return hh ? `${hh}:${two(mm)}:${two(ss)}` : `${mm}:${two(ss)}`;
}

// ---- signing in ----------------------------------------------------------------------------

function showSignIn(message) {
  $('bar').hidden = true;
  const email = h('input', { id: 'email', type: 'email', autocomplete: 'username', required: true });
  const password = h('input', { id: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const form = h('form', { class: 'card signin', 'aria-labelledby': 'signin-h' },
    h('h1', { id: 'signin-h', text: 'Sign in to Switchboard' }),
    h('label', {}, 'Email', email),
    h('label', {}, 'Password', password),
    h('button', { type: 'submit', id: 'sign-in' }, 'Sign in'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const me = await attempt(() => api('POST', '/auth/sign-in', { email: email.value, password: password.value }));
    if (me) signedIn(me);
  });
  $('main').replaceChildren(form);
  notice(message || '');
  email.focus();
}

function showSetup(token) {
  $('bar').hidden = true;
  const password = h('input', { id: 'new-password', type: 'password', autocomplete: 'new-password', minlength: 12, required: true });
  const form = h('form', { class: 'card signin' },
    h('h1', { text: 'Choose your password' }),
    h('p', { class: 'empty', text: 'At least 12 characters.' }),
    h('label', {}, 'New password', password),
    h('button', { type: 'submit' }, 'Save password'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const done = await attempt(() => api('POST', '/auth/setup', { token, password: password.value }).then(() => true));
    if (done) { history.replaceState(null, '', '/desk'); showSignIn(''); notice('Password saved. Sign in.', true); }
  });
  $('main').replaceChildren(form);
}

function signedIn(me) {
  S.user = me.user;
  S.csrf = me.csrf_token;
  $('bar').hidden = false;
  $('who').textContent = `${S.user.name} (${S.user.role})`;
  const views = { agent: [['desk', 'Desk']], supervisor: [['supervisor', 'Supervisor']], admin: [['supervisor', 'Supervisor'], ['admin', 'Admin']] }[S.user.role];
  $('nav').replaceChildren(...views.map(([id, name]) => h('a', { href: '#/' + id, id: 'nav-' + id }, name)));
  $('presence-label').hidden = S.user.role !== 'agent';
  connectStream();
  if (!location.hash.startsWith('#/')) location.hash = '#/' + views[0][0];
  else route();
}

function signedOut(message) {
  S.user = null;
  S.csrf = '';
  if (S.ws) { S.ws.onclose = null; S.ws.close(); S.ws = null; }
  clearInterval(S.windowTimer);
  clearInterval(S.refreshTimer);
  showSignIn(message);
}

// ---- the stream ----------------------------------------------------------------------------

function connectStream() {
  if (!S.user) return;
  const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
  const ws = new WebSocket(`${scheme}${location.host}/api/v1/stream${S.lastId ? '?after=' + S.lastId : ''}`, ['switchboard.v1']);
  S.ws = ws;
  ws.onopen = () => { S.retry = 500; };
  ws.onmessage = (e) => {
    const frame = JSON.parse(e.data);
    if (frame.type === 'stream.ready') { S.lastId = Math.max(S.lastId, frame.last_id || 0); return; }
    if (frame.type === 'stream.reset') { S.lastId = 0; route(); return; }
    if (frame.id) S.lastId = Math.max(S.lastId, frame.id);
    onEvent(frame);
  };
  ws.onclose = (e) => {
    if (S.ws !== ws) return;
    if (e.code === 1008 && /session/.test(e.reason)) { signedOut('Your session has ended. Sign in again.'); return; }
    setTimeout(connectStream, S.retry);
    S.retry = Math.min(S.retry * 2, 10000);
  };
}

// The events that change the conversation list.
const LIST_EVENTS = ['conversation.opened.v1', 'conversation.assigned.v1', 'conversation.status_changed.v1'];

// The agent's stream says the customer's window closes soon: say when, and what still reaches them.
function showWarning() {
  const el = $('window-warning');
  const w = S.warnings.get(S.openId);
  if (!el) return;
  el.hidden = !w;
  if (!w) return;
  const at = new Date(w.closes_at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const templates = (w.templates || []).join(', ');
  el.textContent = `The customer's 24-hour window closes at ${at}. After that only a template reaches them` + (templates ? `: ${templates}.` : ', and this number has none approved.');
}

// A supervisor watching the conversation sees its agent typing (for as long as WhatsApp shows it).
function showTyping() {
  const el = $('typing');
  if (!el) return;
  el.textContent = 'The agent is typing…';
  clearTimeout(S.typingTimer);
  S.typingTimer = setTimeout(() => { el.textContent = ''; }, 25000);
}

// The agent types: at most every 5 s the API hears it (it sends Twilio's typing indicator, which
// also shows the customer their messages read, as the workstream's policy says).
function typing() {
  if (Date.now() - S.typingAt < 5000) return;
  S.typingAt = Date.now();
  api('POST', `/conversations/${S.openId}/typing`, {}).catch(() => {});
}

function onEvent(frame) {
  const d = frame.data || {};
  const view = location.hash;
  if (view === '#/desk') {
    if (frame.type.startsWith('offer.')) loadOffers();
    if (LIST_EVENTS.includes(frame.type)) loadConversations();
    if (frame.type === 'conversation.window_closing.v1') { S.warnings.set(d.conversation_id, d); if (d.conversation_id === S.openId) showWarning(); }
    if (frame.type === 'conversation.message.v1') {
      if (d.conversation_id === S.openId) loadMessages();
      else if (d.direction === 'inbound') { S.unread.set(d.conversation_id, (S.unread.get(d.conversation_id) || 0) + 1); loadConversations(); }
    }
    if (frame.type === 'message.status.v1' && d.conversation_id === S.openId) loadMessages();
    // Re-read it only when its status really moved (the desk may have shown the new one already,
    // after an accept): re-rendering replaces the composer.
    if (frame.type === 'conversation.status_changed.v1' && d.conversation_id === S.openId && (!S.conversation || S.conversation.status !== d.to)) openConversation(S.openId);
    if (frame.type === 'conversation.read.v1' && d.conversation_id === S.openId) loadMessages();
  } else if (view.startsWith('#/supervisor')) {
    if (frame.type === 'conversation.typing.v1' && d.conversation_id === S.openId) showTyping();
    if (frame.type !== 'conversation.typing.v1') scheduleSupervisorRefresh();
    if (S.openId && d.conversation_id === S.openId && ['conversation.message.v1', 'message.status.v1'].includes(frame.type)) loadMessages();
  }
}

// ---- views ---------------------------------------------------------------------------------

function route() {
  if (!S.user) return;
  clearInterval(S.windowTimer);
  clearInterval(S.refreshTimer);
  const [view, tab] = (location.hash.slice(2) || 'desk').split('/');
  for (const a of document.querySelectorAll('#nav a')) a.toggleAttribute('aria-current', a.id === 'nav-' + view);
  for (const a of document.querySelectorAll('#nav a')) if (a.id === 'nav-' + view) a.setAttribute('aria-current', 'page');
  if (view === 'desk' && S.user.role === 'agent') return deskView();
  if (view === 'supervisor' && S.user.role !== 'agent') return supervisorView();
  if (view === 'admin' && S.user.role === 'admin') return window.SwitchboardAdmin.view(api, h, attempt, notice, tab);
  $('main').replaceChildren(h('p', { class: 'card', text: 'This view is not for your role.' }));
}

async function deskView() {
  $('main').replaceChildren(h('div', { class: 'desk' },
    h('aside', { class: 'side' },
      h('section', { class: 'card', 'aria-labelledby': 'offers-h' }, h('h2', { id: 'offers-h', text: 'Offers' }), h('ul', { id: 'offers', class: 'list' })),
      h('section', { class: 'card', 'aria-labelledby': 'convs-h' }, h('h2', { id: 'convs-h', text: 'My conversations' }), h('ul', { id: 'convs', class: 'list' }))),
    h('section', { class: 'card conversation', id: 'conv', 'aria-labelledby': 'conv-h' }, h('p', { class: 'empty', id: 'conv-h', text: 'Choose a conversation.' }))));
  const me = await attempt(() => api('GET', '/me'));
  if (me && me.agent) $('presence').value = me.agent.chosen_presence || me.agent.presence;
  await Promise.all([loadOffers(), loadConversations()]);
  S.windowTimer = setInterval(tick, 1000);
  if (S.openId) openConversation(S.openId);
}

async function loadOffers() {
  const offers = await attempt(() => api('GET', '/me/offers'));
  if (!offers || !$('offers')) return;
  S.offers = offers.filter((o) => o.state === 'pending');
  $('offers').replaceChildren(...(S.offers.length ? S.offers.map((o) => h('li', { class: 'offer', 'data-offer': o.id },
    h('span', {}, 'Conversation ', h('code', { text: o.conversation_id.slice(-8) })),
    h('span', { class: 'countdown', 'data-expires': o.expires_at || '' }),
    h('span', { class: 'actions' },
      h('button', { type: 'button', class: 'accept', onclick: () => accept(o) }, 'Accept'),
      h('button', { type: 'button', class: 'secondary decline', onclick: () => decline(o) }, 'Decline'))))
    : [h('li', { class: 'empty', text: 'No offers.' })]));
  tick();
}

async function accept(offer) {
  const done = await attempt(() => api('POST', `/offers/${offer.id}/accept`, {}));
  if (done === undefined) return;
  await Promise.all([loadOffers(), loadConversations()]);
  openConversation(offer.conversation_id);
}

async function decline(offer) {
  await attempt(() => api('POST', `/offers/${offer.id}/decline`, {}));
  loadOffers();
}

function customerName(c) {
  const customer = c.customer || {};
  return customer.profile_name || customer.phone || customer.bsuid || 'Customer';
}

async function loadConversations() {
  const page = await attempt(() => api('GET', '/conversations?status=active,waiting,wrap_up&page_size=100'));
  if (!page || !$('convs')) return;
  const items = page.items.map((c) => {
    const unread = S.unread.get(c.id) || 0;
    return h('li', {}, h('button', { type: 'button', class: 'item', 'data-conversation': c.id, 'aria-current': c.id === S.openId ? 'true' : null, onclick: () => openConversation(c.id) },
      h('span', {}, customerName(c), h('br'), h('small', { class: 'empty', text: c.status })),
      unread ? h('span', { class: 'badge', 'aria-label': `${unread} unread`, text: String(unread) }) : null));
  });
  $('convs').replaceChildren(...(items.length ? items : [h('li', { class: 'empty', text: 'None yet.' })]));
}

async function openConversation(id) {
  S.openId = id;
  S.unread.delete(id);
  const c = await attempt(() => api('GET', `/conversations/${id}`));
  if (!c || !$('conv')) return;
  // Everything the view needs is read first; the state changes with the view, at once, so the
  // window line and the composer never disagree.
  const compose = S.user.role === 'agent' && c.status === 'active' ? await attempt(() => api('GET', `/conversations/${id}/compose`)) : null;
  let templates = [];
  if (!c.window_open) {
    const all = await attempt(() => api('GET', `/templates?number_id=${encodeURIComponent(c.number_id)}`));
    // Outside the window: approved templates of a type WhatsApp approves (never a list picker).
    templates = (all || []).map((t) => ({ ...t, localizations: t.localizations.filter((l) => l.status === 'approved' && l.content_type !== 'twilio/list-picker') })).filter((t) => t.localizations.length);
  }
  const history = c.customer ? await attempt(() => api('GET', `/conversations?customer_id=${encodeURIComponent(c.customer.id)}&status=closed&page_size=10`)) : null;
  if (id !== S.openId || !$('conv')) return;
  S.conversation = c;
  S.compose = compose;
  S.templates = templates;
  renderConversation(history ? history.items.filter((x) => x.id !== c.id) : []);
  // Opened: under the workstream's `on_open` policy the customer sees their messages read.
  if (S.user.role === 'agent' && c.status === 'active') await api('POST', `/conversations/${id}/read`, {}).catch(() => {});
  await loadMessages();
  loadConversations();
}

function renderConversation(earlier) {
  const c = S.conversation;
  const agent = S.user.role === 'agent';
  const mine = agent && c.status === 'active';
  const live = ['open', 'active', 'waiting', 'wrap_up'].includes(c.status);
  const actions = h('div', { class: 'actions' });
  if (mine) actions.append(h('button', { type: 'button', id: 'end', class: 'secondary', onclick: () => transition('end') }, 'End'));
  if (agent && c.status === 'wrap_up') actions.append(h('button', { type: 'button', id: 'close', class: 'secondary', onclick: () => transition('close') }, 'Close'));
  if (mine || (!agent && live)) actions.append(transferControl());
  if (!agent && live) {
    actions.append(h('button', { type: 'button', id: 'force-close', class: 'danger', onclick: async () => {
      const done = await attempt(() => api('POST', `/conversations/${S.openId}/force-close`, { note: 'closed by a supervisor' }));
      if (done !== undefined) openConversation(S.openId);
    } }, 'Force close'));
  }
  $('conv').replaceChildren(...[
    h('header', {}, h('div', {}, h('h2', { id: 'conv-h', text: customerName(c) }),
      h('small', { class: 'empty', text: `${(c.customer && (c.customer.phone || c.customer.bsuid)) || ''} · ${c.status}` }),
      h('small', { class: 'typing', id: 'typing', 'aria-live': 'polite' })), actions),
    h('div', { class: 'messages', id: 'messages', role: 'log', 'aria-label': 'Messages' }),
    agent ? composer(c) : null,
    earlier.length ? h('details', {}, h('summary', { text: `Earlier conversations (${earlier.length})` }),
      h('ul', {}, ...earlier.map((e) => h('li', { text: `${e.opened_at || ''} · ${e.first_message || ''}` })))) : null].filter(Boolean));
  tick();
  showWarning();
}

function transferControl() {
  const select = h('select', { id: 'transfer-to', 'aria-label': 'Transfer to' }, h('option', { value: '', text: 'Transfer to…' }));
  attempt(() => api('GET', '/me/transfer-targets')).then((t) => {
    if (!t) return;
    select.append(h('optgroup', { label: 'Queues' }, ...t.queues.map((q) => h('option', { value: 'queue:' + q.id, text: q.name + (q.open ? '' : ' (closed)') }))));
    select.append(h('optgroup', { label: 'Agents present' }, ...t.agents.map((a) => h('option', { value: 'agent:' + a.id, text: `${a.name} (${PRESENCES[a.presence] || a.presence})` }))));
  });
  const go = h('button', { type: 'button', class: 'secondary', onclick: async () => {
    const [kind, id] = select.value.split(':');
    if (!id) return;
    const done = await attempt(() => api('POST', `/conversations/${S.openId}/transfer`, kind === 'queue' ? { queue_id: id } : { agent_id: id }));
    if (done === undefined) return;
    notice('Transferred.', true);
    if (S.user.role === 'agent') { S.openId = null; deskView(); } else openConversation(S.openId);
  } }, 'Transfer');
  return h('span', { class: 'url' }, select, go);
}

async function transition(what) {
  const done = await attempt(() => api('POST', `/conversations/${S.openId}/${what}`, {}));
  if (done !== undefined) openConversation(S.openId);
}

function composer(c) {
  if (c.status !== 'active') return h('p', { class: 'empty composer', text: 'This conversation is not active with you.' });
  const windowLine = h('div', {}, h('div', { class: 'window', id: 'window' }),
    h('div', { class: 'window-warning', id: 'window-warning', role: 'status', hidden: true }));
  if (c.window_open) {
    const text = h('textarea', { id: 'reply', 'aria-label': 'Reply', placeholder: 'Write a reply' });
    text.value = S.drafts.get(S.openId) || '';
    const send = h('button', { type: 'button', id: 'send', onclick: () => sendReply({ text: text.value }, () => { text.value = ''; S.drafts.delete(S.openId); }) }, 'Send');
    text.addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) send.click(); });
    text.addEventListener('input', () => { S.drafts.set(S.openId, text.value); typing(); });
    const note = h('input', { id: 'note', 'aria-label': 'Note', placeholder: 'Internal note' });
    const addNote = h('button', { type: 'button', class: 'secondary', onclick: async () => {
      if (!note.value.trim()) return;
      const done = await attempt(() => api('POST', `/conversations/${S.openId}/notes`, { text: note.value }));
      if (done !== undefined) { note.value = ''; loadMessages(); }
    } }, 'Add note');
    return h('div', { class: 'composer' }, windowLine, h('div', { class: 'row' }, text, send), attachmentRow(), h('div', { class: 'row' }, note, addNote));
  }
  // The window is closed: only an approved template may go out.
  if (!S.templates.length) return h('div', { class: 'composer' }, windowLine, h('p', { class: 'empty', text: 'The 24-hour window is closed and this number has no approved template.' }));
  const pick = h('select', { id: 'template', 'aria-label': 'Template' }, ...S.templates.map((t) => h('option', { value: t.id, text: t.name })));
  const lang = h('select', { id: 'template-language', 'aria-label': 'Language' });
  const vars = h('div', { class: 'row', id: 'template-variables' });
  const preview = h('p', { class: 'empty', id: 'template-preview' });
  const refresh = () => {
    const t = S.templates.find((x) => x.id === pick.value);
    if (lang.dataset.template !== t.id) {
      lang.replaceChildren(...t.localizations.map((l) => h('option', { value: l.language, text: l.language })));
      lang.value = t.localizations.some((l) => l.language === t.default_language) ? t.default_language : t.localizations[0].language;
      lang.dataset.template = t.id;
    }
    const loc = t.localizations.find((l) => l.language === lang.value);
    // Buttons or list items the customer will see, after the text.
    const content = loc.content || {};
    const choices = (content.actions || content.items || []).map((a) => a.title || a.item).filter(Boolean);
    preview.textContent = loc.text + (choices.length ? `\n[ ${choices.join(' | ')} ]` : '');
    const names = [...new Set([...loc.text.matchAll(/\{\{\s*([\w.]+)\s*\}\}/g)].map((m) => m[1]))];
    vars.replaceChildren(...names.map((n) => h('label', {}, `Variable ${n}`, h('input', { 'data-variable': n, required: true }))));
  };
  pick.addEventListener('change', refresh);
  lang.addEventListener('change', refresh);
  const send = h('button', { type: 'button', id: 'send-template', onclick: () => {
    const variables = {};
    for (const input of vars.querySelectorAll('input')) variables[input.dataset.variable] = input.value;
    sendReply({ template: { template_id: pick.value, language: lang.value, variables } }, () => {});
  } }, 'Send template');
  const box = h('div', { class: 'composer' }, windowLine, h('div', { class: 'row' }, h('label', {}, 'Template', pick), h('label', {}, 'Language', lang)), preview, vars, h('div', { class: 'row' }, send));
  setTimeout(refresh);
  return box;
}

// Files, only where the number lets agents attach: one chosen here is uploaded (checked against
// the number's settings), then sent by id; or a public HTTPS URL that Twilio fetches.
function attachmentRow() {
  const rules = S.compose;
  if (!rules || !rules.attachments) return h('p', { class: 'empty', id: 'no-attachments', text: 'This number does not let agents send attachments.' });
  const file = h('input', { id: 'attachment-file', type: 'file', accept: '.jpg,.jpeg,.png,.mp3,.ogg,.oga,.amr,.mp4,.pdf', 'aria-label': 'File to send' });
  const url = h('input', { id: 'attachment-url', type: 'url', placeholder: 'or https://…/file.pdf', 'aria-label': 'Attachment URL' });
  const type = h('select', { id: 'attachment-type', 'aria-label': 'Attachment type' },
    ...['image/jpeg', 'image/png', 'application/pdf', 'video/mp4', 'audio/ogg'].map((t) => h('option', { value: t, text: t })));
  const caption = h('input', { id: 'attachment-caption', placeholder: 'Caption (images)', 'aria-label': 'Caption' });
  const clear = () => { file.value = ''; url.value = ''; caption.value = ''; };
  const go = h('button', { type: 'button', class: 'secondary', id: 'send-attachment', onclick: async () => {
    const chosen = file.files && file.files[0];
    if (chosen) {
      const id = S.openId;
      const uploaded = await attempt(() => api('POST', `/conversations/${id}/files?name=${encodeURIComponent(chosen.name)}`, chosen));
      if (uploaded) sendReply({ media: { file_id: uploaded.id, caption: caption.value } }, clear);
      return;
    }
    if (!url.value) return;
    sendReply({ media: { url: url.value, content_type: type.value, caption: caption.value } }, clear);
  } }, 'Send file');
  const limit = `up to ${(rules.max_attachment_bytes / 1048576).toFixed(1)} MB`;
  return h('div', { class: 'row' }, file, url, type, caption, go, h('small', { class: 'empty', text: limit }));
}

async function sendReply(content, sent) {
  const id = S.openId;
  const body = { ...content, client_message_id: crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random() };
  // The reply continues the trace of the customer's message it answers (the latest one).
  const answered = [...(S.messages || [])].reverse().find((m) => m.direction === 'inbound' && m.traceparent);
  const trace = answered ? { traceparent: answered.traceparent } : undefined;
  const done = await attempt(() => api('POST', `/conversations/${id}/messages`, body, trace));
  if (done !== undefined) { sent(); loadMessages(); }
}

const TICKS = {
  pending: '🕓 sending', queued: '🕓 queued', accepted: '🕓 queued', sent: '✓ sent', delivered: '✓✓ delivered', read: '✓✓ read',
  failed: '⚠ failed', undelivered: '⚠ undelivered',
};

function messageView(m) {
  const kind = m.direction === 'note' || m.author_kind === 'note' ? 'note' : m.author_kind;
  const d = m.details || {};
  const parts = [];
  if (d.replied_to && d.replied_to.message_id) {
    const quoted = S.messages.find((x) => x.id === d.replied_to.message_id);
    parts.push(h('div', { class: 'quote', text: quoted ? quoted.body : 'an earlier message' }));
  }
  if (m.body) parts.push(h('span', { class: 'body', text: m.body }));
  if (d.button) parts.push(h('div', { class: 'empty', text: `Button: ${d.button.text || ''} (${d.button.payload || ''})` }));
  if (d.location) {
    const { latitude, longitude, label, address } = d.location;
    parts.push(h('div', {}, '📍 ', h('a', { href: `https://www.openstreetmap.org/?mlat=${latitude}&mlon=${longitude}`, target: '_blank', rel: 'noopener noreferrer', text: label || address || `${latitude}, ${longitude}` })));
  }
  for (const media of m.media || []) {
    if (media.content_type.startsWith('image/') && media.content_type !== 'image/svg+xml') parts.push(h('img', { src: media.url, alt: m.direction === 'inbound' ? 'Image from the customer' : (media.file_name || 'Image sent') }));
    else if (media.content_type.startsWith('audio/')) parts.push(h('audio', { src: media.url, controls: true }));
    else if (media.content_type.startsWith('video/')) parts.push(h('video', { src: media.url, controls: true }));
    else parts.push(h('a', { href: media.url, download: media.file_name || '', text: media.file_name ? `${media.file_name} (download)` : `Download (${media.content_type})` }));
  }
  const meta = [['bot', 'automated', 'system'].includes(m.author_kind) ? m.author_kind : null, m.created_at ? new Date(m.created_at).toLocaleTimeString() : null,
    m.direction === 'inbound' && m.read_at ? '✓ seen' : null].filter(Boolean).join(' · ');
  const tick = m.direction === 'outbound' ? h('span', { class: `tick ${m.status}`, 'data-status': m.status, text: TICKS[m.status] || m.status }) : null;
  const failure = (m.status === 'failed' || m.status === 'undelivered') && m.error_message ? ` ${m.error_message}` : '';
  return h('div', { class: `msg ${kind}`, 'data-message': m.id, 'data-direction': m.direction }, ...parts,
    h('span', { class: 'meta' }, meta, tick ? ' · ' : '', tick, failure));
}

async function loadMessages() {
  const id = S.openId;
  const messages = await attempt(() => api('GET', `/conversations/${id}/messages?limit=500`));
  if (!messages || id !== S.openId || !$('messages')) return;
  S.messages = messages;
  const box = $('messages');
  const atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  box.replaceChildren(...messages.map(messageView));
  if (atEnd || box.dataset.loaded !== id) box.scrollTop = box.scrollHeight;
  box.dataset.loaded = id;
}

function tick() {
  const now = Date.now();
  for (const el of document.querySelectorAll('.countdown[data-expires]')) {
    const left = (Date.parse(el.dataset.expires) - now) / 1000;
    el.textContent = Number.isFinite(left) ? `expires in ${clock(left)}` : '';
  }
  const line = $('window');
  const c = S.conversation;
  if (line && c) {
    const left = c.window_expires_at ? (Date.parse(c.window_expires_at) - now) / 1000 : 0;
    const open = c.window_open && left > 0;
    line.textContent = open ? `24-hour window closes in ${clock(left)}` : 'The 24-hour window is closed: send an approved template.';
    line.classList.toggle('closed', !open);
    if (c.window_open && !open) { c.window_open = false; openConversation(c.id); }
  }
}

// ---- supervisor ----------------------------------------------------------------------------

let supervisorPending = null;
function scheduleSupervisorRefresh() {
  if (supervisorPending) return;
  supervisorPending = setTimeout(() => { supervisorPending = null; loadSupervisor(); }, 300);
}

function supervisorView() {
  $('main').replaceChildren(h('div', { class: 'grid' },
    h('section', { class: 'card wide', 'aria-labelledby': 'queues-h' }, h('h2', { id: 'queues-h', text: 'Queues' }), h('div', { id: 'queue-stats' })),
    h('section', { class: 'card', 'aria-labelledby': 'agents-h' }, h('h2', { id: 'agents-h', text: 'Agents' }), h('div', { id: 'agent-stats' })),
    h('section', { class: 'card wide', 'aria-labelledby': 'items-h' }, h('h2', { id: 'items-h', text: 'Waiting items' }), h('div', { id: 'queue-items', class: 'empty', text: 'Choose a queue.' })),
    h('section', { class: 'card', 'aria-labelledby': 'live-h' }, h('h2', { id: 'live-h', text: 'Conversations' }), h('ul', { id: 'live', class: 'list' })),
    h('section', { class: 'card conversation', id: 'conv', 'aria-labelledby': 'conv-h' }, h('p', { class: 'empty', id: 'conv-h', text: 'Open a conversation.' }))));
  S.openId = null;
  loadSupervisor();
  S.refreshTimer = setInterval(loadSupervisor, 5000);
}

function table(headers, rows) {
  return h('table', {}, h('thead', {}, h('tr', {}, ...headers.map((x) => h('th', { scope: 'col', text: x })))), h('tbody', {}, ...rows));
}

async function loadSupervisor() {
  const [queues, agents] = await Promise.all([attempt(() => api('GET', '/stats/queues')), attempt(() => api('GET', '/stats/agents'))]);
  // Re-render only what changed, so a control is not replaced under the pointer for nothing.
  const unchanged = (id, data) => { const el = $(id); const sig = JSON.stringify(data); if (!el || el.dataset.sig === sig) return true; el.dataset.sig = sig; return false; };
  if (queues && !unchanged('queue-stats', queues)) {
    $('queue-stats').replaceChildren(table(['Queue', 'Waiting', 'Offered', 'Assigned', 'Longest wait', 'Agents available', ''],
      queues.map((q) => h('tr', { 'data-queue': q.queue_id },
        h('td', { text: q.name + (q.open ? '' : ' (closed)') }), h('td', { class: 'waiting', text: q.waiting }), h('td', { class: 'offered', text: q.offered }),
        h('td', { class: 'assigned', text: q.assigned }), h('td', { text: clock(q.longest_wait_seconds) }), h('td', { text: `${q.agents_available}/${q.members}` }),
        h('td', {}, h('button', { type: 'button', class: 'secondary', onclick: () => loadItems(q, agents || []) }, 'Items'))))));
  }
  // A supervisor limited to several queues asks queue by queue.
  const scopes = S.user.queue_ids.length > 1 ? S.user.queue_ids.map((q) => `&queue_id=${q}`) : [''];
  const pages = await Promise.all(scopes.map((q) => attempt(() => api('GET', `/conversations?status=open,active,waiting,wrap_up&page_size=100${q}`))));
  const live = pages.every(Boolean) ? { items: pages.flatMap((p) => p.items) } : null;
  if (live && !unchanged('live', live.items)) {
    $('live').replaceChildren(...(live.items.length ? live.items.map((c) => h('li', {}, h('button', { type: 'button', class: 'item', 'data-conversation': c.id, onclick: () => openConversation(c.id) },
      h('span', {}, customerName(c), h('br'), h('small', { class: 'empty', text: c.status })))))
      : [h('li', { class: 'empty', text: 'None.' })]));
  }
  if (agents && !unchanged('agent-stats', agents)) {
    $('agent-stats').replaceChildren(table(['Agent', 'Presence', 'Load', 'Conversations'],
      agents.map((a) => h('tr', { 'data-agent': a.agent_id },
        h('td', { text: a.name }), h('td', { text: PRESENCES[a.presence] || a.presence }), h('td', { text: `${a.used_units}/${a.capacity_units}` }), h('td', { text: a.active_items })))));
  }
}

async function loadItems(queue, agents) {
  const page = await attempt(() => api('GET', `/queues/${queue.queue_id}/items?page_size=100`));
  if (!page) return;
  const rows = page.items.map((item) => {
    const who = h('select', { 'aria-label': 'Assign to' }, h('option', { value: '', text: 'Assign to…' }), ...agents.map((a) => h('option', { value: a.agent_id, text: `${a.name} (${PRESENCES[a.presence] || a.presence})` })));
    return h('tr', {}, h('td', {}, h('code', { text: item.conversation_id.slice(-8) })), h('td', { text: item.state }), h('td', { text: item.enqueued_at ? new Date(item.enqueued_at).toLocaleTimeString() : '' }),
      h('td', {}, who, ' ', h('button', { type: 'button', class: 'secondary', onclick: async () => {
        if (!who.value) return;
        const done = await attempt(() => api('POST', `/conversations/${item.conversation_id}/assign`, { agent_id: who.value }));
        if (done !== undefined) { notice('Assigned.', true); loadItems(queue, agents); }
      } }, 'Assign'), ' ', h('button', { type: 'button', class: 'danger', onclick: async () => {
        const done = await attempt(() => api('POST', `/conversations/${item.conversation_id}/force-close`, { note: 'closed by a supervisor' }));
        if (done !== undefined) { notice('Closed.', true); loadItems(queue, agents); }
      } }, 'Force close')));
  });
  $('queue-items').className = '';
  $('queue-items').replaceChildren(h('h3', { text: queue.name }), rows.length ? table(['Conversation', 'State', 'Since', ''], rows) : h('p', { class: 'empty', text: 'Nothing waiting.' }));
}

// ---- start ---------------------------------------------------------------------------------

document.addEventListener('DOMContentLoaded', async () => {
  $('sign-out').addEventListener('click', async () => { await attempt(() => api('POST', '/auth/sign-out')); signedOut('Signed out.'); });
  $('presence').addEventListener('change', (e) => attempt(() => api('PUT', '/me/presence', { presence: e.target.value })));
  window.addEventListener('hashchange', route);
  const setup = new URLSearchParams(location.hash.slice(1)).get('setup');
  if (setup) { showSetup(setup); return; }
  try {
    signedIn(await api('GET', '/auth/me'));
  } catch (e) {
    showSignIn(e.status === 401 ? '' : e.message);
  }
});
