// Identifiers: Wid (`user@server`), the Wid factory, MsgKey (message keys with the serialized
// form `<fromMe>_<remote>_<id>[_<participant>]`) and jid <-> wid helpers.
(function () {
  'use strict';
  const { define } = window.__sim;

  class Wid {
    constructor(str) {
      const s = String(str);
      const at = s.indexOf('@');
      if (at < 0) throw new Error('invalid wid: ' + s);
      let user = s.slice(0, at);
      let server = s.slice(at + 1);
      if (server === 's.whatsapp.net') server = 'c.us';
      let device;
      const colon = user.indexOf(':');
      if (colon >= 0 && server !== 'g.us') { device = Number(user.slice(colon + 1)); user = user.slice(0, colon); }
      this.server = server;
      this.user = user;
      if (device !== undefined) this.device = device;
      this._serialized = user + '@' + server;
    }
    isUser() { return this.server === 'c.us' || this.server === 'lid'; }
    isGroup() { return this.server === 'g.us'; }
    isLid() { return this.server === 'lid'; }
    isBroadcast() { return this.server === 'broadcast'; }
    isStatusV3() { return this._serialized === 'status@broadcast'; }
    isNewsletter() { return this.server === 'newsletter'; }
    isServer() { return this.server === 'c.us' && this.user === 'server'; }
    isCompanion() { return this.device !== undefined && this.device !== 0; }
    equals(o) { return !!o && (o._serialized || String(o)) === this._serialized; }
    toString() { return this._serialized; }
    toJid() { return this.server === 'c.us' ? this.user + '@s.whatsapp.net' : this._serialized; }
    static isWid(o) { return o instanceof Wid; }
    static isUser(o) { return toWid(o).isUser(); }
    static isGroup(o) { return toWid(o).isGroup(); }
    static isLid(o) { return toWid(o).isLid(); }
  }

  function toWid(o) {
    if (o instanceof Wid) return o;
    if (o && typeof o === 'object' && o._serialized) return new Wid(o._serialized);
    return new Wid(o);
  }

  const WidFactory = {
    createWid: (s) => toWid(s),
    createWidFromWidLike: (s) => toWid(s),
    createUserWid: (user, server) => new Wid(String(user).replace(/\D/g, '') + '@' + (server || 'c.us')),
    createUserWidOrThrow: (user, server) => new Wid(String(user).replace(/\D/g, '') + '@' + (server || 'c.us')),
    createDeviceWid: (s) => toWid(s),
    isWidlike: (o) => !!o && (o instanceof Wid || typeof o._serialized === 'string'),
    toUserWid: (w) => new Wid(toWid(w).user + '@' + toWid(w).server),
    toUserWidOrThrow: (w) => new Wid(toWid(w).user + '@' + toWid(w).server),
    asUserWidOrThrow: (w) => toWid(w),
  };

  function randomHex(bytes) {
    const a = new Uint8Array(bytes);
    crypto.getRandomValues(a);
    return Array.from(a, (b) => b.toString(16).padStart(2, '0')).join('').toUpperCase();
  }

  class MsgKey {
    constructor(o) {
      o = o || {};
      const fromMe = o.fromMe !== undefined ? !!o.fromMe : o.selfDir === 'out';
      let remote = o.remote;
      if (!remote) remote = fromMe ? o.to : o.from;
      this.fromMe = fromMe;
      this.remote = toWid(remote);
      this.id = String(o.id);
      this.participant = o.participant ? toWid(o.participant) : undefined;
      this._serialized = fromMe + '_' + this.remote._serialized + '_' + this.id + (this.participant ? '_' + this.participant._serialized : '');
    }
    toString() { return this._serialized; }
    equals(o) { return !!o && (o._serialized || String(o)) === this._serialized; }
    clone() { return new MsgKey({ fromMe: this.fromMe, remote: this.remote, id: this.id, participant: this.participant }); }
    toJSON() {
      return { fromMe: this.fromMe, remote: this.remote._serialized, id: this.id, participant: this.participant ? this.participant._serialized : undefined, _serialized: this._serialized };
    }
    static newId() { return randomHex(10); }
    static newId_DEPRECATED() { return randomHex(10); }
    static fromString(s) {
      const parts = String(s).split('_');
      return new MsgKey({ fromMe: parts[0] === 'true', remote: parts[1], id: parts[2], participant: parts[3] });
    }
    static from(o) { return o instanceof MsgKey ? o : typeof o === 'string' ? MsgKey.fromString(o) : new MsgKey(o); }
  }

  define('WAWebWid', Object.assign(Wid, { default: Wid, Wid }));
  define('WAWebWidFactory', WidFactory);
  define('WAWebMsgKey', Object.assign(MsgKey, { default: MsgKey }));
  define('WAWebWidToJid', {
    widToUserJid: (w) => toWid(w).toJid(),
    widToChatJid: (w) => toWid(w).toJid(),
    widToGroupJid: (w) => toWid(w).toJid(),
    widToDeviceJid: (w) => toWid(w).toJid(),
  });
  define('WAWebJidToWid', {
    userJidToUserWid: (j) => toWid(j),
    chatJidToChatWid: (j) => toWid(j),
    groupJidToWid: (j) => toWid(j),
    lidUserJidToUserLid: (j) => toWid(j),
    deviceJidToDeviceWid: (j) => toWid(j),
  });
  Object.assign(window.__sim, { Wid, MsgKey, toWid, randomHex });
})();
