// Switchboard admin console: the WhatsApp-through-Twilio walkthrough (account, numbers,
// callback URLs) and the desk's users, on the public REST API only.
'use strict';

window.SwitchboardAdmin = (() => {
  const $ = (id) => document.getElementById(id);

  function copyButton(h, text, label) {
    return h('button', { type: 'button', class: 'secondary', 'aria-label': label, onclick: async (e) => {
      try { await navigator.clipboard.writeText(text); e.target.textContent = 'Copied'; } catch (_) { e.target.textContent = 'Select and copy'; }
    } }, 'Copy');
  }

  function urlLine(h, name, url) {
    return h('div', { class: 'url' }, h('span', { text: name }), h('code', { text: url }), copyButton(h, url, `Copy the ${name} URL`));
  }

  async function view(api, h, attempt, notice) {
    $('main').replaceChildren(h('div', { class: 'grid' },
      h('section', { class: 'card', 'aria-labelledby': 'account-h' },
        h('h2', { id: 'account-h', text: '1. Twilio account' }),
        h('form', { class: 'form', id: 'channel-form' },
          h('label', {}, 'Name', h('input', { name: 'name', required: true })),
          h('label', {}, 'Account SID', h('input', { name: 'account_sid', required: true, pattern: 'AC[0-9a-fA-F]{32}', placeholder: 'AC…' })),
          h('label', {}, 'Auth token', h('input', { name: 'auth_token', type: 'password', required: true, autocomplete: 'off' })),
          h('button', { type: 'submit' }, 'Add account')),
        h('p', { class: 'empty', text: 'The auth token is stored encrypted and never shown again.' }),
        h('h3', { text: '3. Callback information' }),
        h('div', { id: 'channels' })),
      h('section', { class: 'card', 'aria-labelledby': 'numbers-h' },
        h('h2', { id: 'numbers-h', text: '2. WhatsApp numbers' }),
        h('form', { class: 'form', id: 'number-form' },
          h('label', {}, 'Account', h('select', { name: 'channel_id', id: 'number-channel', required: true })),
          h('label', {}, 'Name', h('input', { name: 'display_name', required: true })),
          h('label', {}, 'Number (+E.164)', h('input', { name: 'phone', required: true, pattern: '\\+[1-9][0-9]{6,14}', placeholder: '+14155238886' })),
          h('button', { type: 'submit' }, 'Add number')),
        h('div', { id: 'numbers' })),
      h('section', { class: 'card', 'aria-labelledby': 'users-h' },
        h('h2', { id: 'users-h', text: 'Users' }),
        h('form', { class: 'form', id: 'user-form' },
          h('label', {}, 'Email', h('input', { name: 'email', type: 'email', required: true })),
          h('label', {}, 'Name', h('input', { name: 'name', required: true })),
          h('label', {}, 'Role', h('select', { name: 'role', id: 'user-role' },
            h('option', { value: 'agent', text: 'Agent' }), h('option', { value: 'supervisor', text: 'Supervisor' }), h('option', { value: 'admin', text: 'Admin' }))),
          h('label', {}, 'Agent record', h('select', { name: 'agent_id', id: 'user-agent' })),
          h('button', { type: 'submit' }, 'Invite')),
        h('div', { id: 'invite-link' }),
        h('div', { id: 'users' }))));

    const load = async () => {
      const [channels, numbers, users, agents] = await Promise.all([
        attempt(() => api('GET', '/channels?page_size=200')), attempt(() => api('GET', '/numbers?page_size=200')),
        attempt(() => api('GET', '/users')), attempt(() => api('GET', '/agents'))]);
      if (channels) {
        $('channels').replaceChildren(...(channels.items.length ? channels.items.map((c) => h('div', { class: 'card', 'data-channel': c.id },
          h('strong', { text: `${c.name} · ${c.account_sid}` }),
          urlLine(h, 'Inbound', c.inbound_url), urlLine(h, 'Status callback', c.status_url),
          c.fallback_url ? urlLine(h, 'Fallback', c.fallback_url) : null))
          : [h('p', { class: 'empty', text: 'No account yet.' })]));
        $('number-channel').replaceChildren(...channels.items.map((c) => h('option', { value: c.id, text: c.name })));
      }
      if (numbers) {
        $('numbers').replaceChildren(h('ul', { class: 'list' }, ...numbers.items.map((n) => h('li', { 'data-number': n.id, text: `${n.display_name} · ${n.phone} · ${n.active ? 'active' : 'inactive'}` }))));
      }
      if (agents) {
        $('user-agent').replaceChildren(h('option', { value: '', text: '—' }), ...agents.map((a) => h('option', { value: a.id, text: a.name })));
      }
      if (users) {
        $('users').replaceChildren(h('ul', { class: 'list' }, ...users.map((u) => h('li', { text: `${u.name} · ${u.email} · ${u.role}${u.active ? '' : ' · invited'}${u.disabled_at ? ' · disabled' : ''}` }))));
      }
    };

    const fields = (form) => Object.fromEntries(new FormData(form).entries());
    $('channel-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      const made = await attempt(() => api('POST', '/channels', fields(e.target)));
      if (made) { e.target.reset(); notice(`Account ${made.name} added. Paste its inbound URL into Twilio.`, true); load(); }
    });
    $('number-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      const made = await attempt(() => api('POST', '/numbers', fields(e.target)));
      if (made) { e.target.reset(); notice(`Number ${made.phone} added.`, true); load(); }
    });
    $('user-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      const f = fields(e.target);
      const body = { email: f.email, name: f.name, role: f.role };
      if (f.role === 'agent') body.agent_id = f.agent_id;
      const invited = await attempt(() => api('POST', '/users', body));
      if (invited) {
        const link = `${location.origin}/desk#setup=${invited.setup_token}`;
        $('invite-link').replaceChildren(h('p', { text: `Send ${invited.user.name} this link (shown once, valid until ${new Date(invited.expires_at).toLocaleString()}):` }), urlLine(h, 'Setup', link));
        e.target.reset();
        load();
      }
    });
    await load();
  }

  return { view };
})();
