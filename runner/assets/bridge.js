// openwa bridge: runs inside WhatsApp Web (injected on every new document by the runner's
// Chromium engine) and connects the app's in-page module surface to the gateway.
//
// - Events go to Rust through the CDP binding `__openwaEmit(json)`; each is `{type, ...}`.
// - Rust calls `window.__openwa.call(op, args)` (awaited, returned by value); every answer is
//   `{ok: true, value}` or `{ok: false, error: {kind, message, module?, member?}}`.
// - Every module lookup goes through `need()` and the table `MODULES` below, so a WhatsApp Web
//   update that renames or reshapes a module is reported once, by name, with `Debug.VERSION`.
//
// Written against shared/wa-web-surface.md (the real app's surface), not against the simulator.
(function () {
  'use strict';
  if (window.__openwa) return; // injected twice into one document (new-document script + eval)
  if (window.top !== window) return; // iframes: WhatsApp Web runs in the top document

  const CONFIG = window.__openwaConfig || {};
  const BINDING = '__openwaEmit';
  const QR_ROTATE_HINT_MS = 20000;
  const PAIRING_REFRESH_MS = 180000;
  const ACK_CATCH_UP_S = 3600;

  // ---- events to Rust -------------------------------------------------------------------------
  const backlog = [];
  function emit(type, data) {
    const frame = JSON.stringify(Object.assign({ type }, data || {}));
    const send = window[BINDING];
    if (typeof send !== 'function') { backlog.push(frame); return; }
    while (backlog.length) send(backlog.shift());
    send(frame);
  }

  // ---- the module table: the one place that knows WhatsApp Web's module names ----------------
  // `group`: `core` is resolved at boot (missing => the session fails with surface_changed),
  // `qr` when a login is needed, `feature` when an operation needs it (missing => that call
  // fails with a surface error, the session goes on).
  const MODULES = {
    Socket: { module: 'WAWebSocketModel', member: 'Socket', group: 'core' },
    Conn: { module: 'WAWebConnModel', member: 'Conn', group: 'core' },
    Cmd: { module: 'WAWebCmd', member: 'Cmd', group: 'core' },
    Collections: { module: 'WAWebCollections', member: null, group: 'core', check: ['Msg', 'Chat', 'Contact'] },
    MsgKey: { module: 'WAWebMsgKey', member: null, group: 'core', fn: true },
    WidFactory: { module: 'WAWebWidFactory', member: null, group: 'core', check: ['createWid'] },
    MeUser: { module: 'WAWebUserPrefsMeUser', member: null, group: 'core', check: ['getMaybeMePnUser'] },
    FindChat: { module: 'WAWebFindChatAction', member: null, group: 'core', check: ['findOrCreateLatestChat'] },
    SendMsg: { module: 'WAWebSendMsgChatAction', member: null, group: 'core', check: ['addAndSendMsgToChat'] },
    NoiseInfo: { module: 'WAWebUserPrefsInfoStore', member: 'waNoiseInfo', group: 'qr' },
    SignalStore: { module: 'WAWebSignalStoreApi', member: 'waSignalStore', group: 'qr' },
    AdvSecret: { module: 'WAWebAdvSignatureApi', member: null, group: 'qr', check: ['getADVSecretKey'] },
    RegUtils: { module: 'WAWebCompanionRegClientUtils', member: null, group: 'qr', check: ['DEVICE_PLATFORM'] },
    AltLinking: { module: 'WAWebAltDeviceLinkingApi', member: null, group: 'feature', check: ['setPairingType', 'initializeAltDeviceLinking', 'startAltLinkingFlow'] },
    QueryExists: { module: 'WAWebQueryExistsJob', member: null, group: 'feature', check: ['queryWidExists'] },
    Unread: { module: 'WAWebUpdateUnreadChatAction', member: null, group: 'feature', check: ['sendSeen'] },
    Reaction: { module: 'WAWebSendReactionMsgAction', member: null, group: 'feature', check: ['sendReactionToMsg'] },
    OpaqueData: { module: 'WAWebMediaOpaqueData', member: null, group: 'feature', check: ['createFromData'] },
    PrepRawMedia: { module: 'WAWebPrepRawMedia', member: null, group: 'feature', check: ['prepRawMedia'] },
    MediaStorage: { module: 'WAWebMediaStorage', member: null, group: 'feature', check: ['getOrCreateMediaObject'] },
    MediaTypes: { module: 'WAWebMmsMediaTypes', member: null, group: 'feature', check: ['msgToMediaType'] },
    MediaUpload: { module: 'WAWebMediaMmsV4Upload', member: null, group: 'feature', check: ['uploadMedia'] },
    Download: { module: 'WAWebDownloadManager', member: 'downloadManager', group: 'feature' },
    Ephemeral: { module: 'WAWebGetEphemeralFieldsMsgActionsUtils', member: null, group: 'feature', check: ['getEphemeralFields'] },
  };

  class SurfaceError extends Error {
    constructor(module, member, detail) {
      super('WhatsApp Web ' + version() + ': ' + module + (member ? '.' + member : '') + ' ' + detail);
      this.module = module;
      this.member = member;
      this.detail = detail;
    }
  }

  function version() { return String((window.Debug && window.Debug.VERSION) || 'unknown'); }

  const resolved = {};
  // The module (or the member named in the table) for `key`, or a SurfaceError.
  function need(key) {
    if (resolved[key]) return resolved[key];
    const e = MODULES[key];
    let mod;
    try {
      mod = window.require(e.module);
    } catch (err) {
      throw new SurfaceError(e.module, null, 'cannot be required (' + String(err && err.message) + ')');
    }
    if (!mod) throw new SurfaceError(e.module, null, 'resolved to nothing');
    if (mod.default && e.fn && typeof mod !== 'function') mod = mod.default;
    let out = mod;
    if (e.member) {
      out = mod[e.member];
      if (out === undefined || out === null) throw new SurfaceError(e.module, e.member, 'is missing');
    }
    if (e.fn && typeof out !== 'function') throw new SurfaceError(e.module, e.member, 'is not a constructor');
    for (const m of e.check || []) {
      if (out[m] === undefined || out[m] === null) throw new SurfaceError(e.module, m, 'is missing');
    }
    resolved[key] = out;
    return out;
  }
  function needGroup(group) { for (const k of Object.keys(MODULES)) if (MODULES[k].group === group) need(k); }

  function surfaceFailed(err) {
    emit('surface_changed', { version: version(), module: err.module || 'unknown', member: err.member || null, detail: String(err.detail || err.message) });
  }

  // ---- small helpers --------------------------------------------------------------------------
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const ser = (w) => (w === null || w === undefined ? null : typeof w === 'string' ? w : w._serialized || String(w));
  const wid = (s) => need('WidFactory').createWid(String(s));
  async function waitFor(pred, timeoutMs, what) {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const v = pred();
      if (v) return v;
      if (Date.now() > until) throw Object.assign(new Error('timed out waiting for ' + what), { kind: 'timeout' });
      await sleep(100);
    }
  }
  function fail(kind, message) { return Object.assign(new Error(message), { kind }); }

  // ---- login state ----------------------------------------------------------------------------
  const st = { booted: false, lastState: null, authenticated: false, ready: false, qrWatch: false, pairingTimer: null, loggedOut: false };
  const WAITING = ['OPENING', 'UNLAUNCHED', 'PAIRING'];
  const UNPAIRED = ['UNPAIRED', 'UNPAIRED_IDLE'];

  async function emitQr() {
    const Conn = need('Conn');
    const ref = Conn.ref;
    if (!ref || !UNPAIRED.includes(need('Socket').state)) return;
    try {
      needGroup('qr');
      const noise = await need('NoiseInfo').get();
      const reg = await need('SignalStore').getRegistrationInfo();
      const adv = await need('AdvSecret').getADVSecretKey();
      const b64 = (k) => (typeof k === 'string' ? k : btoa(String.fromCharCode(...new Uint8Array(k))));
      const platform = need('RegUtils').DEVICE_PLATFORM;
      if (Conn.ref !== ref) return; // rotated while we computed; the next change:ref emits
      const payload = [ref, b64(noise.staticKeyPair.pubKey), b64(reg.identityKeyPair.pubKey), adv, platform].join(',');
      emit('qr', { payload, rotate_ms: QR_ROTATE_HINT_MS });
    } catch (err) {
      if (err instanceof SurfaceError) surfaceFailed(err);
      else emit('log', { level: 'warn', message: 'QR payload failed: ' + String(err && err.message) });
    }
  }

  function markReady() {
    if (st.ready) return;
    const Socket = need('Socket');
    if (!Socket.hasSynced) return;
    if (!st.authenticated) { st.authenticated = true; emit('authenticated', {}); }
    st.ready = true;
    stopPairingRefresh();
    const MeUser = need('MeUser');
    const pn = MeUser.getMaybeMePnUser();
    const lid = typeof MeUser.getMaybeMeLidUser === 'function' ? MeUser.getMaybeMeLidUser() : null;
    const Conn = need('Conn');
    emit('ready', { me: { jid: ser(pn), lid: ser(lid), pushname: Conn.pushname || null, platform: Conn.platform || null } });
  }

  function onState(state) {
    if (state === st.lastState) return;
    st.lastState = state;
    emit('state', { state });
    const Socket = need('Socket');
    if (WAITING.includes(state)) {
      if (state === 'PAIRING' && !st.authenticated) { st.authenticated = true; emit('authenticated', {}); }
      return;
    }
    if (UNPAIRED.includes(state)) {
      st.ready = false;
      st.authenticated = false;
      if (!st.qrWatch) { st.qrWatch = true; need('Conn').on('change:ref', () => { emitQr(); }); }
      if (state === 'UNPAIRED_IDLE') { Promise.resolve(need('Cmd').refreshQR()).catch(() => {}); return; }
      emitQr();
      return;
    }
    if (state === 'CONFLICT' || state === 'TIMEOUT') st.ready = false;
    if (state === 'CONFLICT') {
      if (CONFIG.takeover_on_conflict) Promise.resolve(Socket.takeover()).catch((e) => emit('log', { level: 'warn', message: 'takeover failed: ' + e }));
      return;
    }
    if (state === 'CONNECTED') markReady();
  }

  function loggedOut(why) {
    if (st.loggedOut) return;
    st.loggedOut = true;
    st.ready = false;
    emit('logged_out', { reason: why });
  }

  // ---- messages -------------------------------------------------------------------------------
  const sentByUs = new Set();
  const announced = new Set();

  function quotedId(m) {
    if (!m.quotedStanzaID) return null;
    const me = ser(need('MeUser').getMaybeMePnUser());
    const lid = typeof need('MeUser').getMaybeMeLidUser === 'function' ? ser(need('MeUser').getMaybeMeLidUser()) : null;
    const qp = ser(m.quotedParticipant);
    const fromMe = !!qp && (qp === me || qp === lid);
    const remote = ser(m.quotedRemoteJid) || ser(m.id.remote);
    const group = remote.endsWith('@g.us');
    return fromMe + '_' + remote + '_' + m.quotedStanzaID + (group && !fromMe && qp ? '_' + qp : '');
  }

  function msgView(m) {
    let raw = {};
    try { raw = m.serialize(); } catch (e) { raw = {}; }
    for (const k of Object.keys(raw)) if (typeof raw[k] === 'string' && raw[k].length > 4096 && k !== 'body') delete raw[k];
    return {
      id: ser(m.id),
      chat: ser(m.id.remote),
      author: ser(m.author) || ser(m.id.participant),
      from_me: !!m.id.fromMe,
      t: m.t || 0,
      kind: m.type,
      subtype: m.subtype || null,
      body: typeof m.body === 'string' ? m.body : null,
      caption: m.caption || null,
      lat: m.lat === undefined ? null : m.lat,
      lng: m.lng === undefined ? null : m.lng,
      loc: m.loc || null,
      quoted: quotedId(m),
      mentions: (m.mentionedJidList || []).map(ser),
      is_forwarded: !!m.isForwarded,
      mimetype: m.mimetype || null,
      filename: m.filename || null,
      raw,
    };
  }

  async function mediaOf(m) {
    if (!m.directPath) return null;
    try {
      const buf = await need('Download').downloadAndMaybeDecrypt({
        directPath: m.directPath, encFilehash: m.encFilehash, filehash: m.filehash, mediaKey: m.mediaKey,
        mediaKeyTimestamp: m.mediaKeyTimestamp, type: m.type, signal: new AbortController().signal,
      });
      const bytes = new Uint8Array(buf);
      let bin = '';
      for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
      return { data: btoa(bin), mimetype: m.mimetype || 'application/octet-stream', filename: m.filename || null };
    } catch (err) {
      emit('log', { level: 'warn', message: 'media download failed for ' + ser(m.id) + ': ' + String(err && err.message) });
      return null;
    }
  }

  function watchMessages() {
    const { Msg } = need('Collections');
    const onAdd = async (m) => {
      if (!m || !m.isNewMsg || !m.id) return;
      const id = ser(m.id);
      if ((m.id.fromMe && sentByUs.has(id)) || announced.has(id)) return;
      announced.add(id);
      const view = msgView(m);
      if (m.type === 'gp2') { emit('group', { msg: view, recipients: (m.recipients || []).map(ser) }); return; }
      view.media = await mediaOf(m);
      emit('message', { msg: view });
    };
    Msg.on('add', onAdd);
    // Messages that arrived between the app's boot and ours (we poll for Debug.VERSION):
    // new ones are still flagged isNewMsg; ones loaded from storage are not.
    for (const m of Msg.getModelsArray()) if (m && m.id && !m.id.fromMe) onAdd(m);
    // Acks that landed while the page reloaded: re-announce recent own messages' levels
    // (acks only rise, so a repeated level is harmless to the gateway).
    const recent = Date.now() / 1000 - ACK_CATCH_UP_S;
    for (const m of Msg.getModelsArray()) {
      if (m && m.id && m.id.fromMe && m.t >= recent && m.ack > 0) emit('ack', { id: ser(m.id), ack: m.ack });
    }
    Msg.on('change:ack', (m, ack) => {
      if (m && m.id && m.id.fromMe) emit('ack', { id: ser(m.id), ack: typeof ack === 'number' ? ack : m.ack });
    });
    Msg.on('change:type', (m, type) => {
      if (m && m.id && (type === 'revoked' || type === 'revoke')) emit('revoked', { id: ser(m.id) });
    });
    Msg.on('change:body', (m, body) => {
      if (m && m.id && m.type !== 'revoked' && typeof body === 'string' && body !== '') emit('edited', { id: ser(m.id), body });
    });
    Msg.on('change:caption', (m, caption) => {
      if (m && m.id && typeof caption === 'string') emit('edited', { id: ser(m.id), body: caption });
    });
    const Reactions = need('Collections').Reactions;
    if (Reactions && typeof Reactions.on === 'function') {
      Reactions.on('add', (r) => {
        emit('reaction', { target: ser(r.parentMsgKey), sender: ser(r.senderUserJid), emoji: r.reactionText || '' });
      });
    }
  }

  // ---- boot -----------------------------------------------------------------------------------
  async function boot() {
    await waitFor(() => window.Debug && window.Debug.VERSION, 24 * 3600 * 1000, 'Debug.VERSION');
    emit('boot', { version: version(), url: location.href });
    try {
      needGroup('core');
    } catch (err) {
      if (err instanceof SurfaceError) { surfaceFailed(err); return; }
      throw err;
    }
    if (/[?&]post_logout=1/.test(location.search)) loggedOut('post_logout');
    const Socket = need('Socket');
    const Cmd = need('Cmd');
    Cmd.on('logout', () => loggedOut('logout'));
    Cmd.on('logout_from_bridge', () => loggedOut('logout'));
    Socket.on('change:state', (_m, state) => onState(state === undefined ? Socket.state : state));
    Socket.on('change:hasSynced', () => { if (Socket.hasSynced && !WAITING.includes(Socket.state) && !UNPAIRED.includes(Socket.state)) markReady(); });
    watchMessages();
    st.booted = true;
    resolveBooted();
    onState(Socket.state);
  }

  let resolveBooted;
  const booted = new Promise((r) => { resolveBooted = r; });

  // ---- operations (called from Rust) ----------------------------------------------------------
  async function untilReady(ms) {
    await booted;
    if (st.loggedOut) throw fail('not_ready', 'logged out');
    await waitFor(() => st.ready, ms, 'the session to be ready').catch(() => { throw fail('not_ready', 'session is not ready (state ' + need('Socket').state + ')'); });
  }

  function findMsg(key, chat) {
    const { Msg } = need('Collections');
    const s = ser(key);
    let m = Msg.get(key) || Msg.get(s);
    if (!m && chat && chat.msgs && typeof chat.msgs.get === 'function') m = chat.msgs.get(key) || chat.msgs.get(s);
    return m || null;
  }

  // Messages not loaded into memory (WhatsApp Web loads chats lazily): the collection's
  // storage lookup, where this version has one (feature-detected, not part of the table).
  async function findStored(ids) {
    const { Msg } = need('Collections');
    if (typeof Msg.getMessagesById !== 'function') return null;
    try {
      const r = await Msg.getMessagesById(ids);
      return ((r && r.messages) || []).find(Boolean) || null;
    } catch (err) {
      return null;
    }
  }

  // Any message by serialized id: in memory, else from storage.
  async function findAny(id, chat) {
    return findMsg(id, chat) || (await findStored([ser(id)]));
  }

  // Our own message with inner id `key.id` in the key's chat, whichever way the app
  // serializes own group keys (with or without the participant), in memory or stored.
  async function findOwn(key, chat) {
    const direct = findMsg(key, chat);
    if (direct) return direct;
    const remote = ser(key.remote);
    const same = (x) => x && x.id && x.id.fromMe && x.id.id === key.id && ser(x.id.remote) === remote;
    const inChat = chat && chat.msgs && typeof chat.msgs.getModelsArray === 'function' ? chat.msgs.getModelsArray().find(same) : null;
    const loaded = inChat || need('Collections').Msg.getModelsArray().find(same);
    return loaded || (await findStored([ser(key), 'true_' + remote + '_' + key.id]));
  }

  function b64ToBlob(data, mimetype, filename) {
    const bin = atob(data);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return filename ? new File([bytes], filename, { type: mimetype }) : new Blob([bytes], { type: mimetype });
  }

  // Media: opaque data -> prepared media -> media object -> upload; the props WhatsApp Web
  // sends for a media message.
  async function mediaProps(media, opts) {
    const blob = b64ToBlob(media.data, media.mimetype, media.filename);
    const opaque = await need('OpaqueData').createFromData(blob, media.mimetype);
    const prep = need('PrepRawMedia').prepRawMedia(opaque, { asDocument: !!opts.asDocument, asSticker: !!opts.asSticker, isPtt: !!opts.asVoice, asPtt: !!opts.asVoice, filename: media.filename });
    const mediaData = await prep.waitForPrep();
    const mediaObject = need('MediaStorage').getOrCreateMediaObject(mediaData.filehash);
    const mediaType = need('MediaTypes').msgToMediaType({ type: mediaData.type, isGif: mediaData.isGif });
    const up = await need('MediaUpload').uploadMedia({ mimetype: mediaData.mimetype, mediaObject, mediaType });
    const entry = up.mediaEntry || up;
    const attrs = typeof mediaData.serialize === 'function' ? mediaData.serialize() : Object.assign({}, mediaData);
    delete attrs.mediaBlob;
    return Object.assign(attrs, {
      type: mediaData.type, mimetype: mediaData.mimetype, filename: media.filename || attrs.filename, size: entry.size || attrs.size,
      filehash: entry.filehash || attrs.filehash, encFilehash: entry.encFilehash, mediaKey: entry.mediaKey,
      mediaKeyTimestamp: entry.mediaKeyTimestamp, directPath: entry.directPath, deprecatedMms3Url: entry.deprecatedMms3Url || entry.mmsUrl,
      clientUrl: entry.mmsUrl, uploadhash: entry.uploadHash,
    });
  }

  function vcard(c) {
    const digits = String(c.phone).replace(/\D/g, '');
    return 'BEGIN:VCARD\nVERSION:3.0\nFN:' + c.name + '\nTEL;type=CELL;type=VOICE;waid=' + digits + ':+' + digits + '\nEND:VCARD';
  }

  async function contentProps(c, media) {
    switch (c.type) {
      case 'text': return { type: 'chat', body: c.body };
      case 'location': {
        const loc = [c.name, c.address].filter(Boolean).join('\n');
        return { type: 'location', lat: c.latitude, lng: c.longitude, loc: loc || undefined };
      }
      case 'contact':
        if (c.contacts.length === 1) return { type: 'vcard', body: vcard(c.contacts[0]), vcardFormattedName: c.contacts[0].name };
        return { type: 'multi_vcard', vcardList: c.contacts.map((x) => ({ displayName: x.name, vcard: vcard(x) })), body: undefined };
      case 'poll':
        return { type: 'poll_creation', pollName: c.name, pollOptions: c.options.map((name, localId) => ({ name, localId })), pollSelectableOptionsCount: c.selectable_count, body: c.name };
      case 'image': case 'video': case 'audio': case 'voice': case 'document': case 'sticker': {
        if (!media) throw fail('rejected', c.type + ' needs media bytes');
        const p = await mediaProps(media, { asDocument: c.type === 'document', asSticker: c.type === 'sticker', asVoice: c.type === 'voice' });
        if (c.caption) p.caption = c.caption;
        return p;
      }
      default: throw fail('rejected', 'unsupported content type ' + c.type);
    }
  }

  const ops = {
    async status() { return { booted: st.booted, ready: st.ready, state: st.booted ? need('Socket').state : null, version: version() }; },

    async send(a) {
      await untilReady(a.ready_timeout_ms || 30000);
      const MsgKey = need('MsgKey');
      const me = need('MeUser').getMaybeMePnUser();
      const chatWid = wid(a.chat);
      if (a.content.type === 'reaction') {
        const target = await findAny(a.content.message_id, null);
        if (!target) throw fail('recipient', 'message to react to not found: ' + a.content.message_id);
        await need('Reaction').sendReactionToMsg(target, a.content.emoji);
        return { id: new MsgKey({ from: me, to: chatWid, id: a.wa_key, selfDir: 'out' })._serialized, already_sent: false };
      }
      const participant = chatWid.isGroup && chatWid.isGroup() ? me : undefined;
      const key = new MsgKey({ from: me, to: chatWid, id: a.wa_key, participant, selfDir: 'out' });
      const existing = await findOwn(key, null);
      if (existing) return { id: ser(existing.id), already_sent: true, ack: existing.ack };
      const found = await need('FindChat').findOrCreateLatestChat(chatWid);
      const chat = found && found.chat ? found.chat : found;
      if (!chat) throw fail('recipient', 'chat not found: ' + a.chat);
      const again = await findOwn(key, chat);
      if (again) return { id: ser(again.id), already_sent: true, ack: again.ack };
      const props = await contentProps(a.content, a.media);
      if (a.reply_to) {
        const q = await findAny(a.reply_to, chat);
        if (!q) throw fail('recipient', 'quoted message not found: ' + a.reply_to);
        const ctx = typeof q.msgContextInfo === 'function' ? q.msgContextInfo(chat)
          : { quotedMsg: q, quotedStanzaID: q.id.id, quotedParticipant: q.author || q.from, quotedRemoteJid: q.id.remote };
        Object.assign(props, ctx);
      }
      if (a.mentions && a.mentions.length) props.mentionedJidList = a.mentions.map(wid);
      // Disappearing-message settings of the chat, as WhatsApp Web adds them to every message.
      try { Object.assign(props, need('Ephemeral').getEphemeralFields(chat) || {}); } catch (err) {
        emit('log', { level: 'warn', message: 'no ephemeral fields: ' + String(err && err.message) });
      }
      Object.assign(props, { id: key, from: me, to: chatWid, t: Math.floor(Date.now() / 1000), self: 'out', isNewMsg: true, local: true, ack: 0 });
      sentByUs.add(key._serialized);
      const res = need('SendMsg').addAndSendMsgToChat(chat, props);
      const [added, sent] = Array.isArray(res) ? res : [res, res];
      await added;
      const r = await sent;
      const result = r && (r.messageSendResult || r.status);
      if (result && result !== 'OK' && result !== 200) throw fail('rejected', 'send failed: ' + String(r.error || result));
      return { id: key._serialized, already_sent: false };
    },

    async pairing_code(a) {
      await booted;
      const state = need('Socket').state;
      if (!UNPAIRED.includes(state)) throw fail('not_ready', 'pairing codes are only available while unpaired (state ' + state + ')');
      const Alt = need('AltLinking');
      const request = async () => {
        Alt.setPairingType('ALT_DEVICE_LINKING');
        await Alt.initializeAltDeviceLinking();
        return String(await Alt.startAltLinkingFlow(a.phone, true));
      };
      const code = await request();
      emit('pairing_code', { code });
      stopPairingRefresh();
      st.pairingTimer = setInterval(async () => {
        if (!UNPAIRED.includes(need('Socket').state)) { stopPairingRefresh(); return; }
        try { emit('pairing_code', { code: await request() }); } catch (e) { emit('log', { level: 'warn', message: 'pairing code refresh failed: ' + e }); }
      }, PAIRING_REFRESH_MS);
      return code;
    },

    async check_number(a) {
      await untilReady(a.ready_timeout_ms || 30000);
      const r = await need('QueryExists').queryWidExists(wid(a.phone));
      return r && r.wid ? ser(r.wid) : null;
    },

    async mark_read(a) {
      await untilReady(a.ready_timeout_ms || 30000);
      const chat = need('Collections').Chat.get(a.chat) || (await need('FindChat').findOrCreateLatestChat(wid(a.chat))).chat;
      await need('Unread').sendSeen({ chat, threadId: undefined });
      return true;
    },

    async logout() {
      await booted;
      await need('Socket').logout();
      return true;
    },

    async find_message(a) {
      await booted;
      const m = await findAny(a.id, null);
      return m ? msgView(m) : null;
    },
  };

  function stopPairingRefresh() { if (st.pairingTimer) { clearInterval(st.pairingTimer); st.pairingTimer = null; } }

  async function call(op, args) {
    try {
      const fn = ops[op];
      if (!fn) throw fail('rejected', 'unknown bridge operation ' + op);
      return { ok: true, value: await fn(args || {}) };
    } catch (err) {
      if (err instanceof SurfaceError) return { ok: false, error: { kind: 'surface', message: err.message, module: err.module, member: err.member, version: version() } };
      return { ok: false, error: { kind: (err && err.kind) || 'rejected', message: String((err && err.message) || err) } };
    }
  }

  Object.defineProperty(window, '__openwa', { value: Object.freeze({ call, version }), enumerable: false });
  boot().catch((err) => emit('log', { level: 'error', message: 'bridge boot failed: ' + String(err && err.stack || err) }));
})();
