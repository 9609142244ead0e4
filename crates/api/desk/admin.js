// Switchboard admin console: the WhatsApp-through-Twilio walkthrough screen by screen (account,
// numbers, callback URLs, number settings, routing, work distribution, templates and automated
// messages, bots, sandbox, deletion) and the desk's users, on the public REST API only.
'use strict';

window.SwitchboardAdmin = (() => {
  const $ = (id) => document.getElementById(id);
  const TABS = [
    ['setup', 'Account & numbers'], ['settings', 'Number settings'], ['routing', 'Routing'],
    ['distribution', 'Work distribution'], ['messages', 'Templates & messages'], ['bots', 'Bots'],
    ['sandbox', 'Sandbox'], ['delete', 'Deletion'], ['users', 'Users'],
  ];
  let ctx = null; // { api, h, attempt, notice }

  const fields = (form) => Object.fromEntries(new FormData(form).entries());
  const list = (items, line) => ctx.h('ul', { class: 'list' }, ...(items.length ? items.map(line) : [ctx.h('li', { class: 'empty', text: 'None yet.' })]));
  const card = (id, title, ...kids) => ctx.h('section', { class: 'card', 'aria-labelledby': id }, ctx.h('h2', { id, text: title }), ...kids);
  const input = (label, attrs) => ctx.h('label', {}, label, ctx.h('input', attrs));
  const checkbox = (label, name, checked) => ctx.h('label', { class: 'check' }, ctx.h('input', { type: 'checkbox', name, checked }), label);
  const options = (items, value, text, chosen) => items.map((x) => ctx.h('option', { value: value(x), text: text(x), selected: value(x) === chosen }));
  const get = (path) => ctx.attempt(() => ctx.api('GET', path));
  const send = (method, path, body) => ctx.attempt(() => ctx.api(method, path, body).then((r) => r || {}));

  function copyButton(text, label) {
    return ctx.h('button', { type: 'button', class: 'secondary', 'aria-label': label, onclick: async (e) => {
      try { await navigator.clipboard.writeText(text); e.target.textContent = 'Copied'; } catch (_) { e.target.textContent = 'Select and copy'; }
    } }, 'Copy');
  }

  function urlLine(name, url) {
    return ctx.h('div', { class: 'url' }, ctx.h('span', { text: name }), ctx.h('code', { text: url }), copyButton(url, `Copy the ${name} URL`));
  }

  function form(id, kids, onsubmit) {
    const f = ctx.h('form', { class: 'form', id }, ...kids);
    f.addEventListener('submit', async (e) => { e.preventDefault(); await onsubmit(fields(f), f); });
    return f;
  }

  async function channelsAndNumbers() {
    const [channels, numbers] = await Promise.all([get('/channels?page_size=200'), get('/numbers?page_size=200')]);
    return { channels: channels ? channels.items : [], numbers: numbers ? numbers.items : [] };
  }

  // 1–3: account, numbers, callback information.
  async function setup(main) {
    const { h } = ctx;
    const { channels, numbers } = await channelsAndNumbers();
    main.append(
      card('account-h', '1. Twilio account',
        form('channel-form', [
          input('Name', { name: 'name', required: true }),
          input('Account SID', { name: 'account_sid', required: true, pattern: 'AC[0-9a-fA-F]{32}', placeholder: 'AC…' }),
          input('Auth token', { name: 'auth_token', type: 'password', required: true, autocomplete: 'off' }),
          h('button', { type: 'submit' }, 'Add account')], async (f) => {
          const made = await send('POST', '/channels', f);
          if (made.id) { ctx.notice(`Account ${made.name} added. Paste its inbound URL into Twilio.`, true); show('setup'); }
        }),
        h('p', { class: 'empty', text: 'The auth token is stored encrypted and never shown again.' }),
        h('h3', { text: '3. Callback information' }),
        h('div', { id: 'channels' }, ...(channels.length ? channels.map((c) => h('div', { class: 'card', 'data-channel': c.id },
          h('strong', { text: `${c.name} · ${c.account_sid}` }),
          urlLine('Inbound', c.inbound_url), urlLine('Status callback', c.status_url),
          c.fallback_url ? urlLine('Fallback', c.fallback_url) : null)) : [h('p', { class: 'empty', text: 'No account yet.' })]))),
      card('numbers-h', '2. WhatsApp numbers',
        form('number-form', [
          h('label', {}, 'Account', h('select', { name: 'channel_id', id: 'number-channel', required: true }, ...options(channels, (c) => c.id, (c) => c.name))),
          input('Name', { name: 'display_name', required: true }),
          input('Number (+E.164)', { name: 'phone', required: true, pattern: '\\+[1-9][0-9]{6,14}', placeholder: '+14155238886' }),
          h('button', { type: 'submit' }, 'Add number')], async (f) => {
          const made = await send('POST', '/numbers', f);
          if (made.id) { ctx.notice(`Number ${made.phone} added.`, true); show('setup'); }
        }),
        h('div', { id: 'numbers' }, list(numbers, (n) => h('li', { 'data-number': n.id, text: `${n.display_name} · ${n.phone} · ${n.active ? 'active' : 'inactive'}` })))));
  }

  // 4: the number's WhatsApp settings: workstream, language, attachments.
  async function settings(main) {
    const { h } = ctx;
    const [{ numbers }, workstreams] = await Promise.all([channelsAndNumbers(), get('/workstreams')]);
    for (const n of numbers) {
      const s = n.settings;
      main.append(card(`settings-${n.id}`, `${n.display_name} · ${n.phone}`, form(`settings-form-${n.id}`, [
        h('label', {}, 'Workstream', h('select', { name: 'workstream_id' }, h('option', { value: '', text: '—' }), ...options(workstreams || [], (w) => w.id, (w) => w.name, s.workstream_id))),
        input('Language', { name: 'default_language', value: s.default_language, required: true, size: 6 }),
        checkbox('Customers may send attachments', 'customer_attachments', s.customer_attachments),
        checkbox('Agents may send attachments', 'agent_attachments', s.agent_attachments),
        input('Largest attachment (bytes)', { name: 'max_attachment_bytes', type: 'number', min: 1, value: s.max_attachment_bytes }),
        checkbox('Active', 'active', n.active),
        h('button', { type: 'submit' }, 'Save')], async (f, el) => {
        const next = { ...s, workstream_id: f.workstream_id || null, default_language: f.default_language,
          customer_attachments: el.customer_attachments.checked, agent_attachments: el.agent_attachments.checked,
          max_attachment_bytes: Number(f.max_attachment_bytes) };
        const saved = await send('PATCH', `/numbers/${n.id}`, { settings: next, active: el.active.checked });
        if (saved.id) ctx.notice(`${n.display_name} saved.`, true);
      })));
    }
    if (!numbers.length) main.append(h('p', { class: 'card empty', text: 'Add a number first.' }));
  }

  // A routing object editor: name and JSON definition, for one collection.
  async function objects(main, path, title, example) {
    const { h } = ctx;
    const items = (await get(path)) || [];
    const editor = (o) => form(`edit-${path.slice(1)}-${o ? o.id : 'new'}`, [
      input('Name', { name: 'name', value: o ? o.name : '', required: true }),
      h('label', { class: 'wide' }, 'Definition (JSON)', h('textarea', { name: 'definition', rows: 4, cols: 48, text: JSON.stringify(o ? o.definition : example, null, 1) })),
      h('button', { type: 'submit' }, o ? 'Save' : 'Create'),
      o ? h('button', { type: 'button', class: 'danger', onclick: async () => {
        if (!window.confirm(`Delete ${o.name}?`)) return;
        const done = await send('DELETE', `${path}/${o.id}`);
        if (done) show(current);
      } }, 'Delete') : null], async (f) => {
      let definition;
      try { definition = JSON.parse(f.definition); } catch (e) { ctx.notice(`The definition is not JSON: ${e.message}`); return; }
      const saved = await send(o ? 'PUT' : 'POST', o ? `${path}/${o.id}` : path, { name: f.name, definition });
      if (saved.id) { ctx.notice(`${f.name} saved.`, true); show(current); }
    });
    main.append(card(`${path.slice(1)}-h`, title, ...items.map((o) => h('details', { 'data-object': o.id }, h('summary', { text: o.name }), editor(o))),
      h('details', {}, h('summary', { text: 'New…' }), editor(null))));
  }

  // 5: workstreams (with classification and route-to-queue rules), queues, operating hours.
  async function routing(main) {
    await objects(main, '/workstreams', 'Workstreams', { mode: 'push', offer_timeout_secs: 120 });
    const { h } = ctx;
    const workstreams = (await get('/workstreams')) || [];
    for (const w of workstreams) {
      const rules = (kind, label) => form(`${kind}-${w.id}`, [
        h('label', { class: 'wide' }, `${label} (JSON array)`, h('textarea', { name: 'rules', rows: 3, cols: 48, text: JSON.stringify(w.definition[kind] || [], null, 1) })),
        h('button', { type: 'submit' }, 'Save rules')], async (f) => {
        let parsed;
        try { parsed = JSON.parse(f.rules); } catch (e) { ctx.notice(`Not JSON: ${e.message}`); return; }
        const saved = await send('PUT', `/workstreams/${w.id}/${kind === 'classification' ? 'classification' : 'route-to-queue'}`, parsed);
        if (saved) ctx.notice(`${label} of ${w.name} saved.`, true);
      });
      main.append(card(`rules-${w.id}`, `${w.name}: rules`, rules('classification', 'Classification rules'), rules('route_to_queue', 'Route-to-queue rules')));
    }
    await objects(main, '/queues', 'Queues (priority, members, operating hours, overflow)', { priority: 1, assignment: 'highest_capacity', members: [] });
    await objects(main, '/operating-hours', 'Operating hours', { time_zone: 'UTC', weekly: [] });
  }

  // 6: capacity profiles, skills and agents.
  async function distribution(main) {
    await objects(main, '/capacity-profiles', 'Capacity profiles', { units: 1, blocking: true });
    await objects(main, '/skills', 'Skills', {});
    await objects(main, '/agents', 'Agents (capacity and skills)', { capacity_units: 5 });
  }

  // 7: templates (synced from Twilio), automated messages, the post-conversation survey.
  async function messages(main) {
    const { h } = ctx;
    const { channels, numbers } = await channelsAndNumbers();
    for (const c of channels) {
      main.append(card(`templates-${c.id}`, `${c.name}: templates`,
        h('button', { type: 'button', class: 'secondary', onclick: async () => {
          const r = await send('POST', `/channels/${c.id}/templates/sync`, {});
          if (r) ctx.notice('Template sync asked of Twilio; refresh in a moment.', true);
        } }, 'Sync from Twilio')));
      const automated = (await get(`/automated-messages?channel_id=${c.id}`)) || [];
      main.append(card(`automated-${c.id}`, `${c.name}: automated messages`,
        list(automated, (m) => h('li', { text: `${m.trigger} · ${m.language} · ${m.active ? 'on' : 'off'} · ${m.text}` })),
        form(`automated-form-${c.id}`, [
          input('Trigger', { name: 'trigger', required: true, placeholder: 'agent_assigned' }),
          input('Language', { name: 'language', value: 'en', required: true, size: 6 }),
          input('Text', { name: 'text', required: true, size: 40 }),
          h('button', { type: 'submit' }, 'Save message')], async (f) => {
          const saved = await send('PUT', '/automated-messages', { channel_id: c.id, trigger: f.trigger, language: f.language, text: f.text, active: true });
          if (saved) { ctx.notice('Automated message saved.', true); show('messages'); }
        })));
    }
    for (const n of numbers) {
      const templates = (await get(`/templates?number_id=${n.id}`)) || [];
      const s = n.settings;
      main.append(card(`number-msgs-${n.id}`, `${n.display_name}: templates and survey`,
        list(templates, (t) => h('li', { text: `${t.name}: ${t.localizations.map((l) => `${l.language} ${l.status}`).join(', ')}` })),
        form(`survey-${n.id}`, [
          checkbox('Send a survey when a conversation closes', 'enabled', s.survey_enabled),
          input('Survey URL', { name: 'url', type: 'url', value: s.survey_url || '', size: 32 }),
          input('Message', { name: 'message', value: s.survey_message || '', size: 32 }),
          h('button', { type: 'submit' }, 'Save survey')], async (f, el) => {
          const saved = await send('PUT', `/numbers/${n.id}/survey`, { enabled: el.enabled.checked, url: f.url, message: f.message });
          if (saved.id) ctx.notice('Survey saved.', true);
        })));
    }
  }

  // 8: bots in front of agents.
  async function bots(main) {
    const { h } = ctx;
    const items = (await get('/bots')) || [];
    main.append(card('bots-h', 'Bots',
      list(items, (b) => h('li', { text: `${b.name} · ${b.endpoint}` })),
      form('bot-form', [
        input('Name', { name: 'name', required: true }),
        input('Endpoint (https://…)', { name: 'endpoint', type: 'url', required: true, size: 32 }),
        input('Signing secret', { name: 'signing_secret', type: 'password', required: true, minlength: 16, autocomplete: 'off' }),
        h('button', { type: 'submit' }, 'Add bot')], async (f) => {
        const made = await send('POST', '/bots', { ...f, timeout_ms: 5000, max_attempts: 2 });
        if (made.id) { ctx.notice(`Bot ${made.name} added; put it in a workstream's definition ("bot_id").`, true); show('bots'); }
      }),
      h('p', { class: 'empty', text: 'The signing secret is stored encrypted and never shown again.' })));
  }

  // 9: the Twilio Sandbox for WhatsApp.
  async function sandbox(main) {
    const { h } = ctx;
    const { channels } = await channelsAndNumbers();
    for (const c of channels) {
      main.append(card(`sandbox-${c.id}`, c.name, form(`sandbox-form-${c.id}`, [
        checkbox('This is the shared Twilio Sandbox for WhatsApp', 'sandbox', c.sandbox),
        input('Join code (the words after "join")', { name: 'sandbox_join_code', value: c.sandbox_join_code || '' }),
        h('button', { type: 'submit' }, 'Save')], async (f, el) => {
        const saved = await send('PATCH', `/channels/${c.id}`, { sandbox: el.sandbox.checked, sandbox_join_code: f.sandbox_join_code });
        if (saved.id) { ctx.notice('Saved.', true); show('sandbox'); }
      }), c.sandbox && c.sandbox_notes ? h('p', { class: 'empty', text: c.sandbox_notes }) : null));
    }
  }

  // 10: deleting a number or an account, saying first what happens to open conversations.
  async function deletion(main) {
    const { h } = ctx;
    const { channels, numbers } = await channelsAndNumbers();
    const open = async (n) => {
      const page = await get(`/conversations?number_id=${n.id}&status=open,active,waiting,wrap_up&page_size=200`);
      return page ? page.items.length : 0;
    };
    const rows = [];
    for (const n of numbers) {
      const count = await open(n);
      rows.push(h('li', { 'data-number': n.id }, h('span', { text: `${n.display_name} · ${n.phone} · ${count} open conversation(s)` }), ' ',
        h('button', { type: 'button', class: 'danger', onclick: async () => {
          const msg = `Delete ${n.phone}? Its ${count} open conversation(s) will be closed (reason: channel_deleted), their unsent replies marked failed, and its templates removed. History stays readable.`;
          if (!window.confirm(msg)) return;
          const r = await send('DELETE', `/numbers/${n.id}`);
          if (r) { ctx.notice(`Deleted: ${r.conversations_closed || 0} conversation(s) closed, ${r.messages_failed || 0} send(s) failed.`, true); show('delete'); }
        } }, 'Delete number')));
    }
    main.append(card('delete-numbers-h', 'Numbers', h('ul', { class: 'list' }, ...rows)),
      card('delete-channels-h', 'Accounts', list(channels, (c) => h('li', {}, h('span', { text: `${c.name} · ${c.account_sid}` }), ' ',
        h('button', { type: 'button', class: 'danger', onclick: async () => {
          if (!window.confirm(`Delete ${c.name}? Its numbers must be deleted first; then its webhooks answer 404.`)) return;
          const r = await send('DELETE', `/channels/${c.id}`);
          if (r) { ctx.notice('Account deleted.', true); show('delete'); }
        } }, 'Delete account')))));
  }

  async function users(main) {
    const { h } = ctx;
    const [people, agents] = await Promise.all([get('/users'), get('/agents')]);
    main.append(card('users-h', 'Users',
      form('user-form', [
        input('Email', { name: 'email', type: 'email', required: true }),
        input('Name', { name: 'name', required: true }),
        h('label', {}, 'Role', h('select', { name: 'role', id: 'user-role' },
          h('option', { value: 'agent', text: 'Agent' }), h('option', { value: 'supervisor', text: 'Supervisor' }), h('option', { value: 'admin', text: 'Admin' }))),
        h('label', {}, 'Agent record', h('select', { name: 'agent_id', id: 'user-agent' }, h('option', { value: '', text: '—' }), ...options(agents || [], (a) => a.id, (a) => a.name))),
        h('button', { type: 'submit' }, 'Invite')], async (f) => {
        const body = { email: f.email, name: f.name, role: f.role };
        if (f.role === 'agent') body.agent_id = f.agent_id;
        const invited = await send('POST', '/users', body);
        if (invited.setup_token) {
          const link = `${location.origin}/desk#setup=${invited.setup_token}`;
          await show('users');
          $('invite-link').replaceChildren(h('p', { text: `Send ${invited.user.name} this link (shown once, valid until ${new Date(invited.expires_at).toLocaleString()}):` }), urlLine('Setup', link));
        }
      }),
      h('div', { id: 'invite-link' }),
      list(people || [], (u) => h('li', {}, h('span', { text: `${u.name} · ${u.email} · ${u.role}${u.active ? '' : ' · invited'}${u.disabled_at ? ' · disabled' : ''}` }), ' ',
        h('button', { type: 'button', class: 'secondary', onclick: async () => {
          const r = await send('POST', `/users/${u.id}/reset-password`, {});
          if (r.setup_token) $('invite-link').replaceChildren(h('p', { text: `New password link for ${u.name} (shown once):` }), urlLine('Setup', `${location.origin}/desk#setup=${r.setup_token}`));
        } }, 'Reset password'), ' ',
        h('button', { type: 'button', class: 'secondary', onclick: async () => {
          const r = await send('PATCH', `/users/${u.id}`, { disabled: !u.disabled_at });
          if (r.id) show('users');
        } }, u.disabled_at ? 'Enable' : 'Disable')))));
  }

  const SCREENS = { setup, settings, routing, distribution, messages, bots, sandbox, delete: deletion, users };
  let current = 'setup';

  async function show(tab) {
    current = SCREENS[tab] ? tab : 'setup';
    for (const a of document.querySelectorAll('#admin-tabs a')) a.toggleAttribute('aria-current', a.dataset.tab === current);
    const main = ctx.h('div', { class: 'grid', id: 'admin-screen' });
    $('admin-body').replaceChildren(main);
    await SCREENS[current](main);
  }

  async function view(api, h, attempt, notice, tab) {
    ctx = { api, h, attempt, notice };
    $('main').replaceChildren(h('div', {},
      h('nav', { class: 'tabs', id: 'admin-tabs', 'aria-label': 'Admin screens' },
        ...TABS.map(([id, name]) => h('a', { href: `#/admin/${id}`, 'data-tab': id, id: `tab-${id}` }, name))),
      h('div', { id: 'admin-body' })));
    await show(tab || 'setup');
  }

  return { view };
})();
