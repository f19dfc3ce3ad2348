// Media: preparing raw media (WAWebMediaOpaqueData, WAWebPrepRawMedia), media objects
// (WAWebMediaStorage), types (WAWebMmsMediaTypes), uploading to the simulator over HTTP
// (WAWebMediaMmsV4Upload, WAWebUploadManager) and downloading (WAWebDownloadManager).
(function () {
  'use strict';
  const { define, Model } = window.__sim;

  const blobs = new Map(); // filehash -> Blob

  async function sha256b64(blob) {
    const digest = await crypto.subtle.digest('SHA-256', await blob.arrayBuffer());
    return btoa(String.fromCharCode(...new Uint8Array(digest)));
  }

  // The WhatsApp message type for a mimetype (sticker and voice are chosen by params).
  function typeFor(mimetype, params) {
    const p = params || {};
    if (p.isSticker || p.asSticker) return 'sticker';
    if (p.asDocument || p.isDocument) return 'document';
    const m = String(mimetype || '').toLowerCase();
    if (m.startsWith('image/')) return m === 'image/webp' && p.asSticker !== false && p.isSticker ? 'sticker' : 'image';
    if (m.startsWith('video/')) return 'video';
    if (m.startsWith('audio/')) return p.isPtt || p.asPtt || p.asVoice ? 'ptt' : 'audio';
    return 'document';
  }

  class OpaqueData {
    constructor(blob, type) { this._blob = blob; this.type = type || blob.type; }
    static async createFromData(data, type) {
      const blob = data instanceof Blob ? data : new Blob([data], { type: type || '' });
      return new OpaqueData(blob, type || blob.type);
    }
    static createFromBase64Jpeg(b64) {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      return OpaqueData.createFromData(new Blob([bytes], { type: 'image/jpeg' }), 'image/jpeg');
    }
    formData() { return this._blob; }
    size() { return this._blob.size; }
    url() { return URL.createObjectURL(this._blob); }
    async arrayBuffer() { return this._blob.arrayBuffer(); }
    autorelease() {}
    retain() { return this; }
  }
  define('WAWebMediaOpaqueData', Object.assign(OpaqueData, { default: OpaqueData }));

  function prepRawMedia(opaque, params) {
    const blob = opaque instanceof OpaqueData ? opaque._blob : opaque;
    const p = params || {};
    const ready = (async () => {
      const filehash = await sha256b64(blob);
      blobs.set(filehash, blob);
      const mimetype = blob.type || opaque.type || 'application/octet-stream';
      return new Model({
        type: typeFor(mimetype, p), mimetype, filename: blob.name || p.filename, size: blob.size, filehash,
        mediaBlob: opaque, isGif: !!p.isGif, isPtt: !!(p.isPtt || p.asPtt), mediaStage: 'PREPARED',
        fullHeight: undefined, fullWidth: undefined, duration: p.duration,
      });
    })();
    return { waitForPrep: () => ready };
  }
  define('WAWebPrepRawMedia', { prepRawMedia });

  const objects = new Map();
  function getOrCreateMediaObject(filehash) {
    let o = objects.get(filehash);
    if (!o) {
      o = new Model({ filehash, mediaBlob: null, size: blobs.get(filehash) ? blobs.get(filehash).size : 0, consolidated: false });
      o.consolidate = (attrs) => o.set(attrs || {});
      objects.set(filehash, o);
    }
    return o;
  }
  define('WAWebMediaStorage', { getOrCreateMediaObject, mediaObjects: objects });

  const MEDIA_TYPES = { IMAGE: 'image', VIDEO: 'video', AUDIO: 'audio', PTT: 'ptt', DOCUMENT: 'document', STICKER: 'sticker', GIF: 'gif' };
  define('WAWebMmsMediaTypes', {
    MEDIA_TYPES,
    msgToMediaType: ({ type, isGif }) => (isGif ? 'gif' : type === 'ptt' ? 'ptt' : type),
  });

  async function uploadMedia(o) {
    const hash = o.mediaObject ? o.mediaObject.filehash : o.filehash;
    const blob = blobs.get(hash);
    if (!blob) throw new Error('WAWebMediaMmsV4Upload.uploadMedia: no prepared media for ' + hash);
    const res = await fetch('/media', { method: 'POST', headers: { 'content-type': o.mimetype || blob.type || 'application/octet-stream' }, body: blob });
    if (!res.ok) throw new Error('media upload failed: HTTP ' + res.status);
    const e = await res.json();
    const mediaEntry = {
      directPath: e.directPath, mediaKey: e.mediaKey, mediaKeyTimestamp: Math.floor(Date.now() / 1000),
      encFilehash: e.encFilehash, filehash: e.filehash, uploadHash: e.filehash, mmsUrl: location.origin + e.directPath,
      deprecatedMms3Url: location.origin + e.directPath, size: e.size, sidecar: undefined, firstFrameSidecar: undefined,
    };
    if (o.mediaObject) o.mediaObject.set({ consolidated: true, size: e.size });
    return { mediaEntry, mediaKey: e.mediaKey, directPath: e.directPath };
  }
  define('WAWebMediaMmsV4Upload', { uploadMedia });
  define('WAWebUploadManager', { uploadManager: { upload: uploadMedia }, uploadMedia });
  define('WAWebStartMediaUploadQpl', { startMediaUploadQpl: () => ({ end: () => {}, addPoint: () => {} }) });
  define('WAWebMediaDataUtils', {
    getMediaDataType: (mimetype, params) => typeFor(mimetype, params),
    isMediaType: (t) => ['image', 'video', 'audio', 'ptt', 'document', 'sticker'].includes(t),
  });
  define('WAWebMediaUpdateMsg', { updateMsgWithMediaData: (msg, mediaData) => msg.set(mediaData.serialize ? mediaData.serialize() : mediaData) });
  define('WAMediaCalculateFilehash', { calculateFilehash: sha256b64, default: sha256b64 });
  define('WAWebMediaInMemoryBlobCache', { InMemoryMediaBlobCache: { get: (h) => blobs.get(h), put: (h, b) => blobs.set(h, b), has: (h) => blobs.has(h) } });

  async function downloadAndMaybeDecrypt(o) {
    const path = o.directPath || (o.url && new URL(o.url).pathname);
    if (!path) throw new Error('WAWebDownloadManager: no directPath');
    const res = await fetch(path);
    if (!res.ok) throw new Error('media download failed: HTTP ' + res.status);
    return res.arrayBuffer();
  }
  define('WAWebDownloadManager', { downloadManager: { downloadAndMaybeDecrypt, downloadAndDecrypt: downloadAndMaybeDecrypt } });
  define('WAWebImageUtils', { rotateAndResize: async (b) => b, resizeImage: async (b) => b });
  define('WAWebAddWebpMetadata', { addWebpMetadata: async (b) => b });
})();
