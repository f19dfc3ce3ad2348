// WAWebCollections: Msg, Chat, Contact, GroupMetadata, Label, Reactions, ... and how network
// frames (sync, msg, ack, update, reaction, group, contact) land in them.
(function () {
  'use strict';
  const { define, Model, Collection, Net, Conn, MsgKey, toWid } = window.__sim;

  const wid = (v) => (v ? toWid(v) : undefined);

  class MsgModel extends Model {
    get mediaData() { return this.attributes.mediaData; }
    getChat() { return Chat.get(this.id.remote); }
    isMedia() { return ['image', 'video', 'audio', 'ptt', 'document', 'sticker'].includes(this.type); }
    async downloadMedia() { return true; }
  }
  class ChatModel extends Model {
    constructor(attrs, opts) {
      super(attrs, opts);
      this.msgs = new Collection([], { model: MsgModel });
    }
    getLastReceivedKey() {
      const last = this.msgs.filter((m) => !m.id.fromMe).pop();
      return last ? last.id : undefined;
    }
  }
  class GroupMetadataModel extends Model {
    constructor(attrs, opts) {
      super(attrs, opts);
      if (!(this.participants instanceof Collection)) this.set({ participants: new Collection(this.participants || []) }, { silent: true });
    }
  }

  const Msg = new Collection([], { model: MsgModel });
  const Chat = new Collection([], { model: ChatModel });
  const Contact = new Collection([], { model: Model });
  const GroupMetadata = new Collection([], { model: GroupMetadataModel });
  const byInner = new Map();

  function contactAttrs(c) {
    return Object.assign({}, c, { id: wid(c.id), lid: wid(c.lid) });
  }

  // A network message view -> Msg model attributes with WhatsApp Web's value types.
  function msgAttrs(v) {
    const a = Object.assign({}, v);
    a.id = new MsgKey({ fromMe: v.id.fromMe, remote: v.id.remote, id: v.id.id, participant: v.id.participant || undefined });
    a.from = wid(v.from);
    a.to = wid(v.to);
    if (v.author) a.author = wid(v.author);
    if (v.quotedParticipant) a.quotedParticipant = wid(v.quotedParticipant);
    if (Array.isArray(v.mentionedJidList)) a.mentionedJidList = v.mentionedJidList.map(wid);
    if (a.isNewMsg === undefined) a.isNewMsg = false;
    if (v.directPath) {
      a.mediaData = new Model({ mediaStage: 'RESOLVED', type: v.type, mimetype: v.mimetype, filehash: v.filehash, size: v.size, directPath: v.directPath, filename: v.filename });
      a.clientUrl = a.deprecatedMms3Url = location.origin + v.directPath;
    }
    return a;
  }

  function ensureChat(chatId, attrs) {
    const id = wid(chatId);
    let chat = Chat.get(id);
    if (!chat) {
      const isGroup = id.isGroup();
      const contact = Contact.get(id);
      chat = Chat.add(Object.assign({ id, name: contact ? contact.name : undefined, t: 0, unreadCount: 0, isGroup, archive: false, pin: 0, muteExpiration: 0, isReadOnly: false }, attrs || {}));
      if (isGroup) chat.set({ groupMetadata: GroupMetadata.get(id) }, { silent: true });
    } else if (attrs) {
      chat.set(attrs);
    }
    return chat;
  }

  function indexMsg(m) {
    const list = byInner.get(m.id.id) || [];
    if (!list.includes(m)) list.push(m);
    byInner.set(m.id.id, list);
  }

  // Add a message to Msg and to its chat. Returns the model.
  function addMsg(attrs, opts) {
    const chat = ensureChat(attrs.id.remote);
    const existing = Msg.get(attrs.id);
    if (existing) { existing.set(attrs); return existing; }
    const m = new MsgModel(attrs);
    indexMsg(m);
    chat.msgs.add(m, { silent: true });
    const t = Math.max(chat.t || 0, attrs.t || 0);
    const unread = !attrs.id.fromMe && attrs.isNewMsg ? (chat.unreadCount || 0) + 1 : chat.unreadCount;
    chat.set({ t, unreadCount: unread });
    Msg.add(m, opts);
    return m;
  }

  Net.on('sync', (s) => {
    for (const c of s.contacts || []) Contact.add(contactAttrs(c));
    for (const g of s.groups || []) upsertGroup(g);
    for (const c of s.chats || []) ensureChat(c.id, { name: c.name || undefined, t: c.t, unreadCount: c.unreadCount, isGroup: c.isGroup });
    for (const v of s.messages || []) {
      if (!Msg.get(v.id._serialized)) addMsg(msgAttrs(Object.assign({}, v, { isNewMsg: false })), {});
    }
  });
  Net.handle('msg', (f) => {
    const attrs = msgAttrs(f.msg);
    if (!Contact.get(attrs.id.participant || attrs.from) && !attrs.id.fromMe && f.msg.notifyName) {
      const from = attrs.id.participant || attrs.from;
      Contact.add({ id: from, pushname: f.msg.notifyName, isUser: true, isGroup: false, isMyContact: false });
    }
    addMsg(attrs, {});
  });
  Net.handle('ack', (f) => {
    for (const m of byInner.get(f.id) || []) if (m.id.fromMe && (m.ack || 0) < f.ack) m.set({ ack: f.ack });
  });
  Net.handle('update', (f) => {
    for (const m of byInner.get(f.id) || []) m.set(f.changes);
  });
  Net.handle('contact', (f) => Contact.add(contactAttrs(f.contact)));

  function upsertGroup(g) {
    const id = wid(g.id);
    const participants = g.participants.map((p) => ({ id: wid(p.id), isAdmin: p.isAdmin, isSuperAdmin: p.isSuperAdmin }));
    let meta = GroupMetadata.get(id);
    if (!meta) {
      meta = GroupMetadata.add({ id, subject: g.subject, owner: wid(g.owner), creation: g.creation, participants: new Collection(participants) });
    } else {
      meta.participants.reset(participants);
      meta.set({ subject: g.subject, owner: wid(g.owner) });
    }
    const chat = ensureChat(id, { name: g.subject });
    chat.set({ groupMetadata: meta }, { silent: true });
    return meta;
  }
  window.__sim.upsertGroup = upsertGroup;

  Object.assign(window.__sim, { Msg, Chat, Contact, GroupMetadata, addMsg, msgAttrs, ensureChat, byInner, MsgModel });

  const plain = (name) => Object.assign(new Collection(), { _name: name });
  define('WAWebCollections', {
    Msg, Chat, Contact, GroupMetadata,
    Label: plain('Label'), Reactions: plain('Reactions'), Presence: plain('Presence'),
    Blocklist: plain('Blocklist'), Call: plain('Call'), StatusV3: plain('StatusV3'),
    Sticker: plain('Sticker'), StickerPack: plain('StickerPack'), ProfilePicThumb: plain('ProfilePicThumb'),
    BusinessProfile: plain('BusinessProfile'), NewsletterMetadata: plain('NewsletterMetadata'),
    PinInChat: plain('PinInChat'), PollVote: plain('PollVote'), Order: plain('Order'),
    ChatPreference: plain('ChatPreference'), QuickReply: plain('QuickReply'),
  });
  define('WAWebContactCollection', { ContactCollection: Contact });
  define('WAWebChatGetters', {
    getIsGroup: (c) => !!(c && c.id && toWid(c.id).isGroup()),
    getIsUser: (c) => !!(c && c.id && toWid(c.id).isUser()),
    getIsNewsletter: (c) => !!(c && c.id && toWid(c.id).isNewsletter()),
    getName: (c) => c && c.name,
  });
  const getters = {
    getName: (c) => c && c.name, getPushname: (c) => c && c.pushname, getIsMyContact: (c) => !!(c && c.isMyContact),
    getIsUser: (c) => !!(c && c.isUser), getIsGroup: (c) => !!(c && c.isGroup), getIsBusiness: (c) => !!(c && c.isBusiness),
    getFormattedName: (c) => c && (c.name || c.pushname || (c.id && c.id.user)), getUserid: (c) => c && c.id && c.id.user,
    getPhoneNumber: (c) => c && c.id, getIsMe: (c) => !!(c && Conn.wid && toWid(c.id).equals(Conn.wid)),
  };
  define('WAWebContactGetters', getters);
  define('WAWebFrontendContactGetters', getters);
  define('WAWebFindChatAction', {
    findOrCreateLatestChat: async (w) => {
      const id = toWid(w);
      const created = !Chat.get(id);
      return { chat: ensureChat(id), created };
    },
    findChat: async (w) => ensureChat(toWid(w)),
  });
  const digitsOf = (w) => (typeof w === 'object' && w ? toWid(w).user : String(w).split('@')[0]).replace(/\D/g, '');
  define('WAWebSaveContactAction', {
    saveContactAction: async (user, lid, firstName, lastName) => {
      const name = [firstName, lastName].filter(Boolean).join(' ');
      return Net.call('save_contact', { phone: digitsOf(user), name });
    },
  });
  define('WAWebDeleteContactAction', { deleteContactAction: async (user) => Net.call('delete_contact', { phone: digitsOf(user) }) });
  define('WAWebFindCommonGroupsContactAction', {
    findCommonGroups: async (contact) => {
      const id = toWid(contact.id || contact);
      return GroupMetadata.filter((g) => g.participants.get(id) && Conn.wid && g.participants.get(Conn.wid)).map((g) => Chat.get(g.id) || ensureChat(g.id));
    },
  });
  define('WAWebContactStatusBridge', { getStatus: async (w) => ({ id: toWid(w), status: '' }) });
  define('WAWebChatLoadMessages', { loadEarlierMsgs: async () => [], loadRecentMsgs: async () => [] });
  define('WAWebQueryExistsJob', {
    queryWidExists: async (w) => {
      const r = await Net.call('exists', { jid: toWid(w)._serialized });
      return r.exists ? { wid: toWid(r.jid), lid: toWid(r.lid) } : null;
    },
    queryExists: async (w) => {
      const r = await Net.call('exists', { jid: toWid(w)._serialized });
      return r.exists ? { wid: toWid(r.jid) } : null;
    },
  });
})();
