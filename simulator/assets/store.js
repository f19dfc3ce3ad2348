// The login record, kept where WhatsApp Web keeps it: IndexedDB (database `wawc`, store
// `user`) plus Local Storage (`last-wid-md`, the client id and the QR keys). A login is only
// restored when both halves are present and agree, so copying just one of the two profile
// directories does not restore a session.
(function () {
  'use strict';
  const DB = 'wawc';
  const STORE = 'user';
  const LS_WID = 'last-wid-md';
  const LS_CLIENT = 'WAWebClientId';
  const LS_KEYS = 'WAWebNoiseInfo';

  function openDb() {
    return new Promise((resolve, reject) => {
      const req = indexedDB.open(DB, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }

  async function tx(mode, fn) {
    const db = await openDb();
    try {
      return await new Promise((resolve, reject) => {
        const t = db.transaction(STORE, mode);
        const out = fn(t.objectStore(STORE));
        t.oncomplete = () => resolve(out && out.result);
        t.onerror = () => reject(t.error);
        t.onabort = () => reject(t.error);
      });
    } finally {
      db.close();
    }
  }

  function b64(bytes) {
    const a = new Uint8Array(bytes);
    crypto.getRandomValues(a);
    return btoa(String.fromCharCode(...a));
  }

  const LoginStore = {
    // Stable per browser profile.
    clientId() {
      let id = localStorage.getItem(LS_CLIENT);
      if (!id) { id = b64(16); localStorage.setItem(LS_CLIENT, id); }
      return id;
    },
    // Public keys shown in the QR payload: noise, identity, adv secret.
    keys() {
      let k = null;
      try { k = JSON.parse(localStorage.getItem(LS_KEYS) || 'null'); } catch (e) { k = null; }
      if (!Array.isArray(k) || k.length !== 3) { k = [b64(32), b64(32), b64(32)]; localStorage.setItem(LS_KEYS, JSON.stringify(k)); }
      return k;
    },
    async load() {
      const wid = localStorage.getItem(LS_WID);
      if (!wid) return null;
      let rec = null;
      try { rec = await tx('readonly', (s) => s.get('login')); } catch (e) { rec = null; }
      if (!rec || !rec.phone || !(rec.secret instanceof ArrayBuffer)) return null;
      if (wid !== rec.phone + ':' + rec.device + '@c.us') return null;
      const token = btoa(String.fromCharCode(...new Uint8Array(rec.secret)));
      return { phone: rec.phone, device: rec.device, token };
    },
    async save(login) {
      // Like WhatsApp Web's key material, the secret is stored as bytes (an ArrayBuffer): a
      // profile copy keeps it, a naive JSON dump/restore of IndexedDB does not.
      const secret = Uint8Array.from(atob(login.token), (c) => c.charCodeAt(0)).buffer;
      const rec = { phone: login.phone, device: login.device, secret, savedAt: Date.now() };
      await tx('readwrite', (s) => s.put(rec, 'login'));
      localStorage.setItem(LS_WID, login.phone + ':' + login.device + '@c.us');
    },
    async clear() {
      localStorage.removeItem(LS_WID);
      try { await tx('readwrite', (s) => s.delete('login')); } catch (e) { /* nothing stored */ }
    },
  };
  window.__sim.LoginStore = LoginStore;
})();
