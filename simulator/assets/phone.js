// The sandbox "phone": a person picks an account, scans a gateway page's QR (or confirms its
// pairing code) and chats as that account, all through the /control API.
(function () {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const state = { account: null };

  async function api(method, path, body) {
    const res = await fetch('/control' + path, { method, headers: { 'content-type': 'application/json' }, body: body ? JSON.stringify(body) : undefined });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error((data.error && data.error.message) || 'HTTP ' + res.status);
    return data;
  }
  const guard = (fn) => async (...a) => { $('error').textContent = ''; try { await fn(...a); } catch (e) { $('error').textContent = e.message; } };
  const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; };

  async function loadAccounts() {
    const { accounts } = await api('GET', '/accounts');
    const sel = $('account');
    const current = state.account || (accounts[0] && accounts[0].phone);
    sel.textContent = '';
    for (const a of accounts) {
      const o = el('option', a.pushname + ' (+' + a.phone + ')');
      o.value = a.phone;
      sel.appendChild(o);
    }
    if (current) sel.value = current;
    state.account = sel.value || null;
    const me = accounts.find((a) => a.phone === state.account);
    const devs = $('devices');
    devs.textContent = '';
    for (const d of (me && me.devices) || []) {
      const row = el('div', '', 'item row');
      row.appendChild(el('span', 'device ' + d.id + (d.connected_page ? ' · online (page ' + d.connected_page + ')' : ' · offline')));
      for (const [label, fn] of [['Log out', () => api('DELETE', '/accounts/' + state.account + '/devices/' + d.id)], ['Conflict', () => api('POST', '/accounts/' + state.account + '/devices/' + d.id + '/conflict', {})], ['Drop', () => api('POST', '/accounts/' + state.account + '/devices/' + d.id + '/drop', {})]]) {
        const b = el('button', label, 'secondary');
        b.onclick = guard(async () => { await fn(); await refresh(); });
        row.appendChild(b);
      }
      devs.appendChild(row);
    }
  }

  async function loadPages() {
    const { pages } = await api('GET', '/pages');
    const box = $('pages');
    box.textContent = '';
    const waiting = pages.filter((p) => p.qr);
    if (!waiting.length) box.appendChild(el('div', 'No page is showing a QR code right now.', 'item'));
    for (const p of waiting) {
      const row = el('div', '', 'item row');
      row.appendChild(el('span', 'page ' + p.page_id + ' shows a QR'));
      const b = el('button', 'Scan QR');
      b.onclick = guard(async () => { await api('POST', '/accounts/' + state.account + '/scan', { qr: p.qr }); await refresh(); });
      row.appendChild(b);
      box.appendChild(row);
    }
  }

  async function loadMessages() {
    if (!state.account) return;
    const to = $('to').value.trim();
    const chat = to ? (to.includes('@') ? to : to + '@c.us') : '';
    const { messages } = await api('GET', '/accounts/' + state.account + '/messages' + (chat ? '?chat=' + encodeURIComponent(chat) : ''));
    const box = $('messages');
    const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 20;
    box.textContent = '';
    for (const m of messages.slice(-100)) {
      const d = el('div', '', 'msg ' + (m.id.fromMe ? 'out' : 'in'));
      d.appendChild(el('div', m.type === 'chat' ? m.body : '[' + m.type + '] ' + (m.caption || m.loc || m.pollName || m.filename || (m.type === 'revoked' ? 'message deleted' : m.body) || '')));
      const ticks = m.id.fromMe ? [' ', '✓', '✓✓', '✓✓ read', '✓✓ played'][Math.max(0, m.ack)] || '' : '';
      d.appendChild(el('div', (chat ? '' : m.id.remote + ' · ') + new Date(m.t * 1000).toLocaleTimeString() + ' ' + ticks, 'meta'));
      const r = el('button', 'Like', 'secondary');
      r.onclick = guard(() => api('POST', '/accounts/' + state.account + '/react', { id: m.id.id, text: '👍' }));
      d.appendChild(r);
      if (m.id.fromMe && m.type !== 'revoked') {
        const x = el('button', 'Revoke', 'secondary');
        x.onclick = guard(() => api('POST', '/accounts/' + state.account + '/revoke', { id: m.id.id }));
        d.appendChild(x);
      }
      box.appendChild(d);
    }
    if (atBottom) box.scrollTop = box.scrollHeight;
  }

  async function refresh() {
    await loadAccounts();
    await loadPages();
    await loadMessages();
  }

  $('account').onchange = guard(async () => { state.account = $('account').value; await refresh(); });
  $('create').onclick = guard(async () => {
    await api('POST', '/accounts', { phone: $('new-phone').value.trim(), pushname: $('new-name').value.trim() || undefined });
    state.account = $('new-phone').value.trim();
    await refresh();
  });
  $('confirm-code').onclick = guard(() => api('POST', '/accounts/' + state.account + '/pairing-code', { code: $('code').value.trim() }));
  $('send').onclick = guard(async () => {
    const to = $('to').value.trim();
    await api('POST', '/accounts/' + state.account + '/messages', { to, body: $('body').value });
    $('body').value = '';
    await loadMessages();
  });
  $('body').addEventListener('keydown', (e) => { if (e.key === 'Enter') $('send').click(); });
  $('mark-read').onclick = guard(() => api('POST', '/accounts/' + state.account + '/read', { chat: $('to').value.includes('@') ? $('to').value : $('to').value + '@c.us' }));

  guard(refresh)();
  setInterval(guard(refresh), 1500);
})();
