// The module registry behind `window.require(name)`: modules are registered by WhatsApp Web's
// real names; unknown names throw like Meta's module system does. Fault injection (renamed or
// removed modules) is applied at lookup time from `window.__SIM__.faults`.
(function () {
  'use strict';
  const modules = new Map();

  function define(name, exports) {
    modules.set(name, exports);
    return exports;
  }

  function renamed() {
    const f = (window.__SIM__ && window.__SIM__.faults) || {};
    return f.renamed_modules || {};
  }

  function unknown(name) {
    const err = new Error('Requiring unknown module "' + name + '"');
    err.name = 'ModuleNotFound';
    err.module = name;
    return err;
  }

  function resolve(name) {
    const map = renamed();
    if (Object.prototype.hasOwnProperty.call(map, name)) throw unknown(name);
    for (const [from, to] of Object.entries(map)) {
      if (to && to === name && modules.has(from)) return modules.get(from);
    }
    if (!modules.has(name)) throw unknown(name);
    return modules.get(name);
  }

  // A module whose members fail clearly: not part of the simulated flows.
  function stub(name, members) {
    const target = {};
    for (const [k, v] of Object.entries(members || {})) target[k] = v;
    return new Proxy(target, {
      get(t, prop) {
        if (prop in t) return t[prop];
        if (typeof prop === 'symbol' || prop === 'then' || prop === 'toJSON' || prop === '__esModule') return undefined;
        return function () {
          throw new Error('[openwa-simulator] ' + name + '.' + String(prop) + ' is not implemented (WhatsApp Web ' + (window.Debug || {}).VERSION + ')');
        };
      },
    });
  }

  window.require = function require(name) { return resolve(String(name)); };
  window.__sim = window.__sim || {};
  Object.assign(window.__sim, { define, stub, modules });
})();
