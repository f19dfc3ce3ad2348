// Sending: WAWebSendMsgChatAction.addAndSendMsgToChat (ack 0 -> 1 -> 2 -> 3/4 as the network
// confirms), reactions, read receipts (seen), edits, revokes, poll votes, forwarding.
(function () {
  'use strict';
  const { define, Net, Conn, Cmd, MsgKey, Wid, Model, Collection, toWid, addMsg, Msg, Chat, byInner } = window.__sim;
  const SIM = window.__SIM__ || {};

  // A value as it travels to the network: Wids and keys become strings, models and blobs drop.
  function wire(v, depth) {
    if (v === null || v === undefined) return v;
    if (typeof v === 'function') return undefined;
    if (typeof v !== 'object') return v;
    if (depth > 5) return undefined;
    if (v instanceof Wid) return v._serialized;
    if (v instanceof MsgKey) return v._serialized;
    if (v instanceof Model) return wire(v.serialize(), depth + 1);
    if (v instanceof Collection || v instanceof Blob || v instanceof ArrayBuffer || ArrayBuffer.isView(v)) return undefined;
    if (Array.isArray(v)) return v.map((x) => wire(x, depth + 1));
    const o = {};
    for (const k of Object.keys(v)) { const w = wire(v[k], depth + 1); if (w !== undefined) o[k] = w; }
    return o;
  }

  function toKey(id, chat) {
    if (id instanceof MsgKey) return id;
    if (id && typeof id === 'object') return new MsgKey(Object.assign({ from: Conn.wid, to: chat.id }, id));
    if (typeof id === 'string' && id.includes('_')) return MsgKey.fromString(id);
    return new MsgKey({ fromMe: true, remote: chat.id, id: id || MsgKey.newId() });
  }

  function addAndSendMsgToChat(chat, props) {
    if (SIM.faults && SIM.faults.reload_on_send) setTimeout(() => Net.reloadTo(), 0);
    const key = toKey(props.id, chat);
    const attrs = Object.assign({}, props, {
      id: key,
      from: props.from ? toWid(props.from) : Conn.wid,
      to: toWid(chat.id),
      ack: 0,
      t: props.t || Math.floor(Date.now() / 1000),
      self: 'out',
      isNewMsg: true,
      local: true,
      type: props.type || 'chat',
    });
    if (attrs.quotedMsg && !attrs.quotedStanzaID) {
      const q = attrs.quotedMsg;
      const qid = q.id || (q.get && q.get('id'));
      if (qid) attrs.quotedStanzaID = qid.id || MsgKey.from(qid).id;
    }
    const msg = addMsg(attrs, {});
    const out = wire(Object.assign({}, attrs, { quotedMsg: undefined, mediaData: undefined, mediaObject: undefined }), 0);
    out.id = key.id;
    out.to = toWid(chat.id)._serialized;
    const added = Promise.resolve(msg);
    const sent = Net.call('send', { msg: out }).then(
      (r) => {
        if ((msg.ack || 0) < r.ack) msg.set({ ack: r.ack });
        return { messageSendResult: 'OK', t: r.t, id: key };
      },
      (e) => {
        msg.set({ ack: -1 });
        return { messageSendResult: 'ERROR', error: e.message };
      },
    );
    return [added, sent];
  }

  define('WAWebSendMsgChatAction', {
    addAndSendMsgToChat,
    sendMsgToChat: (chat, props) => addAndSendMsgToChat(chat, props)[1],
  });
  define('WAWebChatSendMessages', {
    sendTextMsgToChat: (chat, body, opts) => addAndSendMsgToChat(chat, Object.assign({ type: 'chat', body }, opts || {}))[1],
  });

  const msgOf = (m) => (m instanceof Model ? m : Msg.get(m) || Msg.get(MsgKey.from(m)));
  const innerOf = (m) => { const x = msgOf(m); return x ? x.id.id : MsgKey.from(m).id; };

  define('WAWebSendReactionMsgAction', {
    sendReactionToMsg: async (msg, reactionText) => {
      await Net.call('react', { msg_id: innerOf(msg), text: reactionText || '' });
      return { messageSendResult: 'OK' };
    },
  });
  const Reactions = window.require('WAWebCollections').Reactions;
  Net.handle('reaction', (f) => {
    const r = f.reaction;
    Reactions.add({ id: r.id, msgKey: r.id, parentMsgKey: MsgKey.fromString(r.parentMsgKey), reactionText: r.reactionText, senderUserJid: r.senderUserJid, timestamp: r.timestamp, orphan: 0, read: false });
    for (const m of byInner.get(r.msgId) || []) m.set({ hasReaction: true });
  });

  async function sendSeen(arg) {
    const chat = arg && arg.chat ? arg.chat : arg;
    const id = toWid(chat.id || chat);
    await Net.call('seen', { chat: id._serialized });
    const c = Chat.get(id);
    if (c) c.set({ unreadCount: 0 });
    return true;
  }
  define('WAWebUpdateUnreadChatAction', {
    sendSeen,
    markSeen: sendSeen,
    markUnread: async (chat, unread) => { const c = Chat.get(chat.id || chat); if (c) c.set({ unreadCount: unread ? -1 : 0 }); return true; },
  });

  define('WAWebSendMessageEditAction', {
    sendMessageEdit: async (msg, newBody) => {
      await Net.call('edit', { msg_id: innerOf(msg), body: String(newBody) });
      return { messageSendResult: 'OK' };
    },
  });

  // Revoke / delete live on Cmd in WhatsApp Web.
  Cmd.sendRevokeMsgs = async (chat, data) => {
    const list = Array.isArray(data) ? data : (data && data.list) || [];
    for (const m of list) await Net.call('revoke', { msg_id: innerOf(m) });
    return true;
  };
  Cmd.sendDeleteMsgs = async (chat, data) => {
    const list = Array.isArray(data) ? data : (data && data.list) || [];
    for (const m of list) { const x = msgOf(m); if (x) { Msg.remove(x); const c = Chat.get(x.id.remote); if (c) c.msgs.remove(x); } }
    return true;
  };

  define('WAWebPollsSendVoteMsgAction', {
    sendVote: async (pollMsg, selectedOptions) => {
      const names = (selectedOptions || []).map((o) => (typeof o === 'string' ? o : o.name));
      await Net.call('poll_vote', { msg_id: innerOf(pollMsg), selected: names });
      return { messageSendResult: 'OK' };
    },
  });

  define('WAWebChatForwardMessage', {
    forwardMessages: async (chat, msgs) => {
      const results = [];
      for (const m of msgs) {
        const src = msgOf(m).serialize();
        for (const k of ['id', 'from', 'to', 'author', 't', 'ack', 'isNewMsg', 'self', 'notifyName']) delete src[k];
        results.push(await addAndSendMsgToChat(chat, Object.assign(src, { isForwarded: true, forwardingScore: 1 }))[1]);
      }
      return results;
    },
  });

  define('WAWebMsgReply', { getQuotedMsgObj: (m) => m });
  define('WAWebQuotedMsgModelUtils', { getQuotedMsgObj: (m) => m, canReplyMsg: () => true });
  define('WAWebMsgActionCapability', { canEditText: (m) => !!(m && m.id && m.id.fromMe), canReactToMessage: () => true, canForwardMsg: () => true });
  define('WAWebGetEphemeralFieldsMsgActionsUtils', { getEphemeralFields: () => ({}) });
  define('WAWebPresenceChatAction', { sendPresenceAvailable: async () => true, sendPresenceUnavailable: async () => true });
  define('WAWebChatStateBridge', { sendChatStateComposing: async () => true, sendChatStateRecording: async () => true, sendChatStatePaused: async () => true });
  define('WAWebMsgDataFromModel', { msgDataFromMsgModel: (m) => msgOf(m).serialize() });

  Object.assign(window.__sim, { addAndSendMsgToChat, wire });
})();
