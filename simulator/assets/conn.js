// The connection to the simulated network and the login state machine:
// WAWebSocketModel.Socket (state, hasSynced), WAWebConnModel.Conn (ref, pushname, platform),
// WAWebCmd.Cmd (event bus + commands), WAWebStreamModel, the "me" user, the QR key modules
// and alternate-device linking (pairing codes).
(function () {
  'use strict';
  const { define, Events, Model, LoginStore, toWid } = window.__sim;
  const SIM = window.__SIM__ || {};

  // ---- models -------------------------------------------------------------------------------
  const Socket = new Model({ state: 'OPENING', hasSynced: false, stream: 'DISCONNECTED' });
  Socket.logout = () => Net.call('logout', {});
  Socket.takeover = () => Net.call('takeover', {});
  Socket.reconnect = () => { if (Net.ws) Net.ws.close(); return Promise.resolve(); };
  Socket.poke = () => {};
  Socket.clearCredentialsAndStoredData = () => LoginStore.clear();
  const Conn = new Model({ ref: null, platform: 'android', pushname: null, wid: null, lid: null, connected: false, isBusiness: false });
  const Stream = new Model({ displayInfo: 'OPENING', mode: 'INIT', available: false, unavailable: false });
  const Cmd = new Events();
  Cmd.refreshQR = () => { Net.send({ type: 'refresh_qr' }); return Promise.resolve(); };
  Cmd.logout = () => Socket.logout();
  for (const name of ['openChatAt', 'openChatBottom', 'openChatFromUnread', 'closeChat', 'archiveChat', 'pinChat', 'muteChat', 'markChatUnread', 'clearChat']) {
    Cmd[name] = () => Promise.resolve(true);
  }

  function setState(state) {
    Socket.set({ state });
    const mode = { UNPAIRED: 'QR', UNPAIRED_IDLE: 'QR', PAIRING: 'SYNCING', CONNECTED: 'MAIN', CONFLICT: 'CONFLICT', TIMEOUT: 'MAIN' }[state] || 'INIT';
    Stream.set({ mode, displayInfo: state === 'CONNECTED' ? 'NORMAL' : state, available: state === 'CONNECTED' });
    Conn.set({ connected: state === 'CONNECTED' });
  }

  // ---- network --------------------------------------------------------------------------------
  const Net = new Events();
  Net.ws = null;
  Net.login = null;
  Net.pending = new Map();
  Net.nextReq = 1;
  Net.queue = Promise.resolve();
  Net.unloading = false;
  Net.justPaired = false;
  Net.handlers = {};

  Net.send = function (frame) {
    if (Net.ws && Net.ws.readyState === WebSocket.OPEN) { Net.ws.send(JSON.stringify(frame)); return true; }
    return false;
  };
  Net.call = function (op, args) {
    return new Promise((resolve, reject) => {
      const req = Net.nextReq++;
      if (!Net.send(Object.assign({ type: 'call', req, op }, args || {}))) {
        reject(new Error('not connected to the network (state ' + Socket.state + ')'));
        return;
      }
      Net.pending.set(req, { resolve, reject });
    });
  };
  Net.handle = function (type, fn) { Net.handlers[type] = fn; };

  Net.connect = function () {
    const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws');
    Net.ws = ws;
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: 'hello', client_id: LoginStore.clientId(), keys: LoginStore.keys(), login: Net.login }));
    };
    ws.onmessage = (e) => {
      let f;
      try { f = JSON.parse(e.data); } catch (err) { return; }
      if (f.type === 'reply') {
        const p = Net.pending.get(f.req);
        Net.pending.delete(f.req);
        if (p) { if (f.error !== undefined) p.reject(new Error(f.error)); else p.resolve(f.result); }
        return;
      }
      Net.queue = Net.queue.then(() => {
        const h = Net.handlers[f.type];
        return h ? h(f) : undefined;
      }).catch((err) => console.error('[sim] frame ' + f.type + ' failed', err));
    };
    ws.onclose = () => {
      for (const p of Net.pending.values()) p.reject(new Error('connection lost'));
      Net.pending.clear();
      if (Net.unloading || Net.ws !== ws) return;
      Net.ws = null;
      if (Socket.state !== 'DEPRECATED_VERSION') setState('TIMEOUT');
      setTimeout(Net.connect, SIM.reconnectMs || 500);
    };
  };
  window.addEventListener('pagehide', () => { Net.unloading = true; });
  window.addEventListener('beforeunload', () => { Net.unloading = true; });

  function reloadTo(url) {
    Net.unloading = true;
    if (url) location.replace(url); else location.reload();
  }
  Net.reloadTo = reloadTo;

  // ---- lifecycle frames -------------------------------------------------------------------------
  Net.handle('faults', (f) => { SIM.faults = f.faults || {}; });
  Net.handle('qr', (f) => {
    // The ref is in place before the state flips, so a client that reads Conn.ref on
    // UNPAIRED sees the code that is on screen.
    Conn.set({ ref: f.ref });
    if (Socket.state !== 'UNPAIRED') setState('UNPAIRED');
    Net.trigger('qr', f);
  });
  Net.handle('qr_idle', () => { setState('UNPAIRED_IDLE'); Net.trigger('qr_idle'); });
  Net.handle('pairing', () => setState('PAIRING'));
  Net.handle('paired', async (f) => {
    await LoginStore.save(f.login);
    Net.login = f.login;
    Net.justPaired = true;
  });
  Net.handle('ready', (f) => {
    const me = f.me;
    Conn.set({ wid: toWid(me.wid), lid: toWid(me.lid), pushname: me.pushname, platform: me.platform, ref: Conn.ref });
    Net.trigger('sync', f.sync || {});
    setState('CONNECTED');
    setTimeout(() => {
      if (Socket.state !== 'CONNECTED') return;
      if (!Socket.hasSynced) Socket.set({ hasSynced: true });
      Cmd.trigger('offline_progress_update_from_bridge', 100);
      if (Net.justPaired) {
        // Like WhatsApp Web: reload once after a fresh login (dropping a post_logout marker).
        Net.justPaired = false;
        setTimeout(() => reloadTo(location.search.includes('post_logout') ? location.pathname : undefined), 500);
      }
    }, 50);
  });
  Net.handle('conflict', () => setState('CONFLICT'));
  Net.handle('state', (f) => setState(f.state));
  Net.handle('logged_out', async () => {
    await LoginStore.clear();
    Net.login = null;
    Socket.set({ hasSynced: false });
    Cmd.trigger('logout');
    Cmd.trigger('logout_from_bridge');
    reloadTo(location.pathname + '?post_logout=1');
  });
  Net.handle('reload', () => reloadTo());

  // ---- modules --------------------------------------------------------------------------------
  const SOCKET_STATE = {};
  for (const s of ['CONFLICT', 'CONNECTED', 'DEPRECATED_VERSION', 'OPENING', 'PAIRING', 'PROXYBLOCK', 'SMB_TOS_BLOCK', 'TIMEOUT', 'TOS_BLOCK', 'UNLAUNCHED', 'UNPAIRED', 'UNPAIRED_IDLE']) SOCKET_STATE[s] = s;
  define('WAWebSocketModel', { Socket, SOCKET_STATE, SOCKET_STREAM: { DISCONNECTED: 'DISCONNECTED', CONNECTED: 'CONNECTED', SYNCING: 'SYNCING' } });
  define('WAWebConnModel', { Conn });
  define('WAWebStreamModel', { Stream, StreamMode: { QR: 'QR', MAIN: 'MAIN', SYNCING: 'SYNCING', CONFLICT: 'CONFLICT' } });
  define('WAWebCmd', { Cmd });
  define('WAWebUserPrefsMeUser', {
    getMaybeMePnUser: () => Conn.wid || null,
    getMaybeMeLidUser: () => Conn.lid || null,
    getMeUser: () => { if (!Conn.wid) throw new Error('user is not logged in'); return Conn.wid; },
    getMePNandLIDWids: () => [Conn.wid, Conn.lid].filter(Boolean),
    isMeAccount: (w) => !!w && (toWid(w).equals(Conn.wid) || toWid(w).equals(Conn.lid)),
  });

  // The QR payload parts the way clients compute them: ref,noise,identity,adv,platform.
  const b64ToBytes = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  const bytesToB64 = (b) => btoa(String.fromCharCode(...new Uint8Array(b)));
  define('WABase64', { encodeB64: bytesToB64, decodeB64: b64ToBytes, encodeB64UrlSafe: (b) => bytesToB64(b).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '') });
  define('WAWebUserPrefsInfoStore', { waNoiseInfo: { get: async () => ({ staticKeyPair: { pubKey: b64ToBytes(LoginStore.keys()[0]) } }) } });
  define('WAWebSignalStoreApi', { waSignalStore: { getRegistrationInfo: async () => ({ identityKeyPair: { pubKey: b64ToBytes(LoginStore.keys()[1]) } }) } });
  define('WAWebAdvSignatureApi', { getADVSecretKey: async () => LoginStore.keys()[2] });
  define('WAWebCompanionRegClientUtils', { DEVICE_PLATFORM: '1' });

  let pairingType = 'QR_CODE';
  define('WAWebAltDeviceLinkingApi', {
    setPairingType: (t) => { pairingType = String(t); },
    getPairingType: () => pairingType,
    initializeAltDeviceLinking: async () => true,
    initializeQRLinking: async () => true,
    startAltLinkingFlow: async (phone) => {
      const code = await Net.call('pairing_code', { phone: String(phone) });
      Net.trigger('pairing_code', code);
      return code;
    },
  });

  Object.assign(window.__sim, { Net, Socket, Conn, Cmd, setState });
})();
