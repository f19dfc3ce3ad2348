// The visible page: state line, the QR code on a <canvas> (matrix rendered by the server from
// the real payload), the pairing code, and a small chat list once connected.
(function () {
  'use strict';
  const { Net, Socket, Conn, Chat } = window.__sim;
  const $ = (id) => document.getElementById(id);

  function drawQr(modules) {
    const canvas = $('qr');
    if (!canvas) return;
    const ctx = canvas.getContext('2d');
    const n = modules.length;
    const quiet = 4;
    const scale = Math.max(1, Math.floor(canvas.width / (n + 2 * quiet)));
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = '#000';
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) {
        if (modules[y][x] === '1') ctx.fillRect((x + quiet) * scale, (y + quiet) * scale, scale, scale);
      }
    }
    canvas.dataset.payload = Net.lastPayload || '';
    canvas.style.display = 'block';
  }

  Net.on('qr', (f) => { Net.lastPayload = f.payload; drawQr(f.modules || []); });
  Net.on('qr_idle', () => { const c = $('qr'); if (c) c.style.opacity = '0.2'; });
  Net.on('pairing_code', (code) => { const el = $('pairing-code'); if (el) el.textContent = String(code).slice(0, 4) + '-' + String(code).slice(4); });

  function render() {
    const st = $('status');
    if (st) {
      const who = Conn.pushname ? ' as ' + Conn.pushname + ' (' + (Conn.wid ? Conn.wid.user : '') + ')' : '';
      st.textContent = Socket.state + (Socket.hasSynced ? ' · synced' : '') + who;
      st.dataset.state = Socket.state;
    }
    const qr = $('qr');
    if (qr && !['UNPAIRED', 'UNPAIRED_IDLE'].includes(Socket.state)) qr.style.display = 'none';
    if (qr && Socket.state === 'UNPAIRED') qr.style.opacity = '1';
  }
  Socket.on('change:state change:hasSynced', render);
  Conn.on('change:pushname', render);

  let pending = false;
  function renderChats() {
    if (pending) return;
    pending = true;
    setTimeout(() => {
      pending = false;
      const ul = $('chats');
      if (!ul) return;
      ul.textContent = '';
      for (const c of Chat.getModelsArray().sort((a, b) => (b.t || 0) - (a.t || 0)).slice(0, 50)) {
        const li = document.createElement('li');
        const last = c.msgs.last();
        li.textContent = (c.name || c.id.user) + (c.unreadCount > 0 ? ' (' + c.unreadCount + ')' : '') + (last ? ': ' + (last.body || last.caption || '[' + last.type + ']') : '');
        ul.appendChild(li);
      }
    }, 100);
  }
  Chat.on('add change', renderChats);
  window.__sim.render = render;
})();
