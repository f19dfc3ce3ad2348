// Dump and restore of one origin's login state (context mode): every IndexedDB database
// (object stores with keyPath, autoIncrement and indexes, every record) and Local Storage.
//
// Values go through a tagged encoding, because a JSON round trip loses what WhatsApp Web keeps
// as bytes: primitives stay JSON (strings, booleans, null, finite numbers), arrays stay arrays,
// everything else becomes an object with a `$` tag:
//   obj {v}  plain object          ab {b}   ArrayBuffer (base64)    ta {c, b}  typed array
//   dv {b}   DataView              date {v} Date (ms, or "NaN")     blob {t, b} Blob
//   file {n, m, t, b} File          map {v}  Map (entry pairs)       set {v}    Set
//   num {v}  NaN, ±Infinity, -0    bigint {v}                       undef      undefined
//   re {s, f} RegExp               err {n, m} Error                 key {...}  extractable CryptoKey (JWK)
// A non-extractable CryptoKey cannot leave the browser: the dump fails and names the database
// and object store that hold it. Cycles fail the dump too (WhatsApp Web stores none).
//
// This file is one expression: it evaluates to `{ dump, restore }` without leaving globals.
(() => {
  'use strict';

  const CHUNK = 0x8000;
  function b64(bytes) {
    let s = '';
    for (let i = 0; i < bytes.length; i += CHUNK) {
      s += String.fromCharCode.apply(null, bytes.subarray(i, i + CHUNK));
    }
    return btoa(s);
  }
  function unb64(s) {
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  const VIEWS = {};
  for (const name of ['Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array',
    'Int32Array', 'Uint32Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array']) {
    if (typeof globalThis[name] === 'function') VIEWS[name] = globalThis[name];
  }
  const isKey = (v) => typeof CryptoKey !== 'undefined' && v instanceof CryptoKey;

  async function enc(v, where, seen) {
    switch (typeof v) {
      case 'string': case 'boolean': return v;
      case 'number':
        if (Number.isFinite(v) && !Object.is(v, -0)) return v;
        return { $: 'num', v: Object.is(v, -0) ? '-0' : String(v) };
      case 'undefined': return { $: 'undef' };
      case 'bigint': return { $: 'bigint', v: v.toString() };
      case 'object': break;
      default: throw new Error(where + ': holds a ' + typeof v + ', which cannot be stored');
    }
    if (v === null) return null;
    if (v instanceof ArrayBuffer) return { $: 'ab', b: b64(new Uint8Array(v)) };
    if (ArrayBuffer.isView(v)) {
      const b = b64(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
      if (v instanceof DataView) return { $: 'dv', b };
      return { $: 'ta', c: v.constructor.name, b };
    }
    if (v instanceof Date) {
      const t = v.getTime();
      return { $: 'date', v: Number.isNaN(t) ? 'NaN' : t };
    }
    if (v instanceof RegExp) return { $: 're', s: v.source, f: v.flags };
    if (typeof File !== 'undefined' && v instanceof File) {
      const b = b64(new Uint8Array(await v.arrayBuffer()));
      return { $: 'file', n: v.name, m: v.lastModified, t: v.type, b };
    }
    if (v instanceof Blob) return { $: 'blob', t: v.type, b: b64(new Uint8Array(await v.arrayBuffer())) };
    if (isKey(v)) {
      if (!v.extractable) {
        throw new Error(where + ': holds a non-extractable CryptoKey (' + v.algorithm.name + ', ' + v.type +
          '), which cannot be exported; this login cannot be moved into another browser context');
      }
      const jwk = await crypto.subtle.exportKey('jwk', v);
      return { $: 'key', jwk, alg: await enc(v.algorithm, where, seen), usages: v.usages };
    }
    if (v instanceof Error) return { $: 'err', n: v.name, m: v.message };
    if (seen.has(v)) throw new Error(where + ': holds a circular reference, which the dump does not support');
    seen.add(v);
    try {
      if (Array.isArray(v)) {
        const out = [];
        for (let i = 0; i < v.length; i++) out.push(await enc(v[i], where, seen));
        return out;
      }
      if (v instanceof Map) {
        const out = [];
        for (const [k, x] of v) out.push([await enc(k, where, seen), await enc(x, where, seen)]);
        return { $: 'map', v: out };
      }
      if (v instanceof Set) {
        const out = [];
        for (const x of v) out.push(await enc(x, where, seen));
        return { $: 'set', v: out };
      }
      const out = {};
      for (const k of Object.keys(v)) out[k] = await enc(v[k], where, seen);
      return { $: 'obj', v: out };
    } finally {
      seen.delete(v);
    }
  }

  async function dec(x) {
    if (x === null || typeof x !== 'object') return x;
    if (Array.isArray(x)) {
      const out = [];
      for (const i of x) out.push(await dec(i));
      return out;
    }
    switch (x.$) {
      case 'obj': {
        const out = {};
        for (const k of Object.keys(x.v)) out[k] = await dec(x.v[k]);
        return out;
      }
      case 'ab': return unb64(x.b).buffer;
      case 'ta': {
        const View = VIEWS[x.c];
        if (!View) throw new Error('unknown typed array ' + x.c);
        const bytes = unb64(x.b);
        return new View(bytes.buffer, 0, bytes.byteLength / View.BYTES_PER_ELEMENT);
      }
      case 'dv': return new DataView(unb64(x.b).buffer);
      case 'date': return new Date(x.v === 'NaN' ? NaN : x.v);
      case 're': return new RegExp(x.s, x.f);
      case 'file': return new File([unb64(x.b)], x.n, { type: x.t, lastModified: x.m });
      case 'blob': return new Blob([unb64(x.b)], { type: x.t });
      case 'key': return crypto.subtle.importKey('jwk', x.jwk, await dec(x.alg), true, x.usages);
      case 'err': { const e = new Error(x.m); e.name = x.n; return e; }
      case 'map': {
        const out = new Map();
        for (const [k, v] of x.v) out.set(await dec(k), await dec(v));
        return out;
      }
      case 'set': {
        const out = new Set();
        for (const v of x.v) out.add(await dec(v));
        return out;
      }
      case 'num': return x.v === '-0' ? -0 : Number(x.v);
      case 'bigint': return BigInt(x.v);
      case 'undef': return undefined;
      default: throw new Error('unknown tag ' + JSON.stringify(x.$));
    }
  }

  function request(req) {
    return new Promise((resolve, reject) => {
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }

  function done(tx) {
    return new Promise((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error || new Error('transaction aborted'));
    });
  }

  // Reads every store of one database in one read-only transaction (all requests issued at
  // once, so the transaction cannot commit between them), then encodes outside it.
  async function dumpDatabase(name) {
    const open = indexedDB.open(name);
    let vanished = false;
    open.onupgradeneeded = () => { vanished = true; open.transaction.abort(); };
    let db;
    try {
      db = await request(open);
    } catch (e) {
      if (vanished) return null;
      throw new Error('IndexedDB database "' + name + '": cannot open: ' + e);
    }
    try {
      const names = Array.from(db.objectStoreNames);
      const raw = [];
      if (names.length) {
        const tx = db.transaction(names, 'readonly');
        for (const s of names) {
          const st = tx.objectStore(s);
          const indexes = Array.from(st.indexNames).map((i) => {
            const ix = st.index(i);
            return { name: ix.name, keyPath: ix.keyPath, unique: ix.unique, multiEntry: ix.multiEntry };
          });
          raw.push({
            name: s, keyPath: st.keyPath, autoIncrement: st.autoIncrement, indexes,
            keys: request(st.getAllKeys()), values: request(st.getAll()),
          });
        }
        await done(tx);
      }
      const stores = [];
      for (const r of raw) {
        const where = 'IndexedDB database "' + name + '", object store "' + r.name + '"';
        const [keys, values] = [await r.keys, await r.values];
        const records = [];
        const seen = new Set();
        for (let i = 0; i < values.length; i++) {
          records.push([r.keyPath === null ? await enc(keys[i], where, seen) : null, await enc(values[i], where, seen)]);
        }
        stores.push({ name: r.name, keyPath: r.keyPath, autoIncrement: r.autoIncrement, indexes: r.indexes, records });
      }
      return { name, version: db.version, stores };
    } finally {
      db.close();
    }
  }

  async function dump() {
    const databases = [];
    for (const info of await indexedDB.databases()) {
      const d = await dumpDatabase(info.name);
      if (d) databases.push(d);
    }
    const local = {};
    for (let i = 0; i < localStorage.length; i++) {
      const k = localStorage.key(i);
      local[k] = localStorage.getItem(k);
    }
    return JSON.stringify({ format: 1, origin: location.origin, indexedDB: databases, localStorage: local });
  }

  async function restoreDatabase(d) {
    // Decode first: a transaction would commit while an import awaits.
    const stores = [];
    for (const s of d.stores) {
      const records = [];
      for (const [k, v] of s.records) records.push([k === null ? null : await dec(k), await dec(v)]);
      stores.push({ ...s, records });
    }
    const open = indexedDB.open(d.name, d.version);
    open.onupgradeneeded = () => {
      const db = open.result;
      for (const s of d.stores) {
        if (db.objectStoreNames.contains(s.name)) db.deleteObjectStore(s.name);
        const st = db.createObjectStore(s.name, { keyPath: s.keyPath, autoIncrement: s.autoIncrement });
        for (const ix of s.indexes) st.createIndex(ix.name, ix.keyPath, { unique: ix.unique, multiEntry: ix.multiEntry });
      }
    };
    const db = await request(open);
    try {
      let count = 0;
      if (stores.length) {
        const tx = db.transaction(stores.map((s) => s.name), 'readwrite');
        for (const s of stores) {
          const st = tx.objectStore(s.name);
          st.clear();
          for (const [k, v] of s.records) {
            if (s.keyPath === null) st.put(v, k); else st.put(v);
            count++;
          }
        }
        await done(tx);
      }
      return count;
    } finally {
      db.close();
    }
  }

  async function restore(text) {
    const state = JSON.parse(text);
    if (!state || state.format !== 1) throw new Error('unknown dump format ' + JSON.stringify(state && state.format));
    if (state.origin !== location.origin) {
      throw new Error('the dump is of ' + state.origin + ', this page is ' + location.origin);
    }
    let records = 0;
    for (const d of state.indexedDB) {
      try {
        records += await restoreDatabase(d);
      } catch (e) {
        throw new Error('IndexedDB database "' + d.name + '": ' + e);
      }
    }
    localStorage.clear();
    for (const k of Object.keys(state.localStorage)) localStorage.setItem(k, state.localStorage[k]);
    return { databases: state.indexedDB.length, records, localStorage: Object.keys(state.localStorage).length };
  }

  return { dump, restore, encode: (v) => enc(v, 'value', new Set()), decode: dec };
})()
