// Boot: restore the login record, connect to the network, then announce the version the way
// WhatsApp Web does (window.Debug.VERSION appearing is the sign the app booted).
(function () {
  'use strict';
  const { Net, LoginStore, render } = window.__sim;
  const SIM = window.__SIM__ || {};
  window.Debug = window.Debug || {};

  (async function boot() {
    let login = null;
    try { login = await LoginStore.load(); } catch (e) { login = null; }
    Net.login = login;
    window.Debug.VERSION = SIM.version || '2.3000.0';
    render();
    if (SIM.faults && SIM.faults.reload_loop) {
      setTimeout(() => Net.reloadTo(), 300);
      return;
    }
    Net.connect();
  })();
})();
