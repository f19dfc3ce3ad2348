// Groups: create, participants (add/remove/promote/demote), subject, leave; group frames from
// the network update GroupMetadata and add `gp2` notification messages like WhatsApp Web does.
(function () {
  'use strict';
  const { define, Net, Conn, MsgKey, toWid, addMsg, upsertGroup, Chat } = window.__sim;

  const jids = (list) => (list || []).map((p) => toWid(p.id || p)._serialized);
  const gid = (g) => toWid((g && g.id) || g)._serialized;

  Net.handle('group', (f) => {
    const g = f.group;
    const meta = upsertGroup(g);
    const change = g.change || {};
    const subtype = { create: 'create', add: 'add', remove: 'remove', promote: 'promote', demote: 'demote', leave: 'leave', subject: 'subject' }[f.event] || f.event;
    const author = change.by ? toWid(change.by) : undefined;
    const recipients = (change.participants || []).map(toWid);
    const meLeft = Conn.wid && (subtype === 'remove' || subtype === 'leave') && recipients.some((r) => r.equals(Conn.wid));
    addMsg({
      id: new MsgKey({ fromMe: !!(author && Conn.wid && author.equals(Conn.wid)), remote: g.id, id: MsgKey.newId(), participant: author }),
      type: 'gp2', subtype, t: Math.floor(Date.now() / 1000), from: toWid(g.id), to: Conn.wid, author,
      recipients, body: change.subject || '', isNewMsg: true, ack: 0,
    }, {});
    if (meLeft) {
      const chat = Chat.get(g.id);
      if (chat) chat.set({ isReadOnly: true });
    }
    return meta;
  });

  define('WAWebGroupCreateJob', {
    createGroup: async (opts, participants) => {
      const subject = typeof opts === 'string' ? opts : opts.title || opts.subject;
      const g = await Net.call('group_create', { subject, participants: jids(participants) });
      return { wid: toWid(g.id), gid: toWid(g.id), participants: g.participants.map((p) => ({ wid: toWid(p.id), error: null })) };
    },
  });
  const modify = (action) => async (group, participants) => {
    await Net.call('group_participants', { group: gid(group), action, participants: jids(participants) });
    return jids(participants).map((p) => ({ wid: toWid(p), code: 200 }));
  };
  define('WAWebModifyParticipantsGroupAction', {
    addParticipants: modify('add'),
    removeParticipants: modify('remove'),
    promoteParticipants: modify('promote'),
    demoteParticipants: modify('demote'),
  });
  define('WAWebExitGroupAction', { sendExitGroup: async (chat) => { await Net.call('group_leave', { group: gid(chat) }); return true; } });
  define('WAWebGroupModifyInfoJob', {
    setGroupSubject: async (group, subject) => { await Net.call('group_subject', { group: gid(group), subject }); return true; },
    setGroupDescription: async () => true,
  });
  define('WAWebSetPropertyGroupAction', { setGroupProperty: async () => true });
  define('WAWebGroupQueryJob', {
    queryGroupInfo: async (group) => window.require('WAWebCollections').GroupMetadata.get(gid(group)),
    queryAndUpdateGroupMetadataById: async ({ id }) => window.require('WAWebCollections').GroupMetadata.get(gid(id)),
  });
})();
