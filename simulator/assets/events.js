// Backbone-like events, models and collections, as WhatsApp Web's models behave:
// `get`/`set`, attributes readable as properties, `on/off/once/trigger`, `change:<attr>` events
// that collections re-emit, and `serialize()`.
(function () {
  'use strict';

  class Events {
    on(name, fn, ctx) {
      if (typeof fn !== 'function') return this;
      this._ev = this._ev || {};
      for (const n of String(name).split(/\s+/)) (this._ev[n] = this._ev[n] || []).push({ fn, ctx });
      return this;
    }
    once(name, fn, ctx) {
      const wrap = (...args) => { this.off(name, wrap); fn.apply(ctx || this, args); };
      wrap._orig = fn;
      return this.on(name, wrap, ctx);
    }
    off(name, fn) {
      if (!this._ev) return this;
      if (name === undefined) { this._ev = {}; return this; }
      for (const n of String(name).split(/\s+/)) {
        if (!fn) { delete this._ev[n]; continue; }
        this._ev[n] = (this._ev[n] || []).filter((h) => h.fn !== fn && h.fn._orig !== fn);
      }
      return this;
    }
    listenTo(other, name, fn) { other.on(name, fn, this); return this; }
    stopListening(other, name, fn) { if (other) other.off(name, fn); return this; }
    trigger(name, ...args) {
      const run = (list, a) => {
        for (const h of (list || []).slice()) {
          try { h.fn.apply(h.ctx || this, a); } catch (e) { console.error('[sim] listener of ' + name + ' failed', e); }
        }
      };
      if (this._ev) {
        run(this._ev[name], args);
        if (name !== 'all') run(this._ev.all, [name, ...args]);
      }
      return this;
    }
    emit(name, ...args) { return this.trigger(name, ...args); }
  }

  // Plain-data copy of a value for serialize(): Wids and MsgKeys keep their shape, models nest.
  function plain(v, depth) {
    if (v === null || v === undefined || typeof v !== 'object') return v;
    if (depth > 4) return undefined;
    if (v instanceof Model) return v.serialize(depth + 1);
    if (v instanceof Collection) return undefined;
    if (Array.isArray(v)) return v.map((x) => plain(x, depth + 1));
    if (typeof v.toJSON === 'function') return v.toJSON();
    if (v instanceof Blob || v instanceof ArrayBuffer) return undefined;
    const o = {};
    for (const k of Object.keys(v)) o[k] = plain(v[k], depth + 1);
    return o;
  }

  class Model extends Events {
    constructor(attrs, opts) {
      super();
      Object.defineProperty(this, 'attributes', { value: {}, enumerable: false, writable: true });
      Object.defineProperty(this, '_ev', { value: {}, enumerable: false, writable: true });
      Object.defineProperty(this, 'collections', { value: new Set(), enumerable: false, writable: true });
      const defaults = typeof this.defaults === 'function' ? this.defaults() : this.defaults;
      this.set(Object.assign({}, defaults || {}, attrs || {}), { silent: true });
      if (opts && opts.collection) this.collections.add(opts.collection);
    }
    get(k) { return this.attributes[k]; }
    has(k) { return this.attributes[k] !== undefined && this.attributes[k] !== null; }
    set(key, val, opts) {
      let attrs;
      if (typeof key === 'object' && key !== null) { attrs = key; opts = val; } else { attrs = { [key]: val }; }
      opts = opts || {};
      const changed = [];
      for (const k of Object.keys(attrs)) {
        if (!(k in this.attributes) && !Object.prototype.hasOwnProperty.call(this, k)) this._defineAttr(k);
        if (this.attributes[k] !== attrs[k]) { this.attributes[k] = attrs[k]; changed.push(k); }
      }
      if (!opts.silent && changed.length) {
        for (const k of changed) this.trigger('change:' + k, this, this.attributes[k], opts);
        this.trigger('change', this, opts);
      }
      return this;
    }
    unset(k) { return this.set(k, undefined); }
    _defineAttr(k) {
      if (k in Object.getPrototypeOf(this) || k === 'constructor') return;
      Object.defineProperty(this, k, {
        get() { return this.attributes[k]; },
        set(v) { this.set(k, v); },
        enumerable: true,
        configurable: true,
      });
    }
    serialize(depth) {
      const o = {};
      for (const k of Object.keys(this.attributes)) {
        const v = plain(this.attributes[k], depth || 0);
        if (v !== undefined) o[k] = v;
      }
      return o;
    }
    toJSON() { return this.serialize(); }
    trigger(name, ...args) {
      super.trigger(name, ...args);
      for (const c of this.collections) c._onModelEvent(name, this, args);
      return this;
    }
  }

  function keyOf(id) {
    if (id === null || id === undefined) return undefined;
    if (typeof id === 'object') return id._serialized || (typeof id.toString === 'function' ? id.toString() : undefined);
    return String(id);
  }

  class Collection extends Events {
    constructor(models, opts) {
      super();
      this.models = [];
      this._byId = new Map();
      this.model = (opts && opts.model) || this.model || Model;
      if (models) this.add(models, { silent: true });
    }
    get length() { return this.models.length; }
    _ref(m) { return keyOf(m instanceof Model ? m.attributes.id : m && m.id); }
    get(id) {
      if (id instanceof Model) id = id.attributes.id;
      return this._byId.get(keyOf(id));
    }
    add(items, opts) {
      opts = opts || {};
      const single = !Array.isArray(items);
      const out = [];
      for (const item of single ? [items] : items) {
        if (!item) continue;
        const k = this._ref(item);
        const existing = k !== undefined ? this._byId.get(k) : undefined;
        if (existing) {
          if (opts.merge !== false && !(item instanceof Model)) existing.set(item);
          out.push(existing);
          continue;
        }
        const m = item instanceof Model ? item : new this.model(item, { collection: this });
        m.collections.add(this);
        this.models.push(m);
        if (k !== undefined) this._byId.set(k, m);
        out.push(m);
        if (!opts.silent) this.trigger('add', m, this, opts);
      }
      return single ? out[0] : out;
    }
    remove(items, opts) {
      const single = !Array.isArray(items);
      const out = [];
      for (const item of single ? [items] : items) {
        // A model, an id (string, Wid or MsgKey) or attributes carrying an id.
        const plainAttrs = item && typeof item === 'object' && !(item instanceof Model) && !item._serialized && item.id;
        const m = this.get(plainAttrs ? item.id : item);
        if (!m) continue;
        this.models = this.models.filter((x) => x !== m);
        this._byId.delete(this._ref(m));
        m.collections.delete(this);
        out.push(m);
        if (!(opts && opts.silent)) this.trigger('remove', m, this, opts || {});
      }
      return single ? out[0] : out;
    }
    reset(models) {
      for (const m of this.models) m.collections.delete(this);
      this.models = [];
      this._byId.clear();
      if (models) this.add(models, { silent: true });
      this.trigger('reset', this);
      return this;
    }
    _onModelEvent(name, model, args) {
      if (name === 'add' || name === 'remove') return;
      this.trigger(name, ...args);
    }
    getModelsArray() { return this.models.slice(); }
    toArray() { return this.models.slice(); }
    at(i) { return this.models[i < 0 ? this.models.length + i : i]; }
    last() { return this.models[this.models.length - 1]; }
    forEach(fn) { this.models.slice().forEach(fn); }
    map(fn) { return this.models.map(fn); }
    filter(fn) { return this.models.filter(fn); }
    find(fn) { return this.models.find(fn); }
    some(fn) { return this.models.some(fn); }
    where(attrs) { return this.models.filter((m) => Object.keys(attrs).every((k) => m.get(k) === attrs[k])); }
    findFirst(fn) { return this.models.find(fn); }
    serialize() { return this.models.map((m) => m.serialize()); }
    [Symbol.iterator]() { return this.models[Symbol.iterator](); }
  }

  window.__sim = window.__sim || {};
  Object.assign(window.__sim, { Events, Model, Collection, keyOf });
})();
