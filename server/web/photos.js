// An order's photos and files (docs/attachments.md), for the desk and the owner's page:
// thumbnails grouped by when they were taken against the work (before the technician arrived,
// during the work, at completion), a picture shown full size, a file saved; and adding one
// (its bytes uploaded with tus 1.0, resumed after a dropped connection, then attached).
// Downloads need the bearer token, which an <img> cannot send: the bytes are fetched and shown
// from object URLs; the latest thumbnails are kept (the bytes under a name never change), an
// original only while it is shown, and nothing once the user signs out.

import { ApiError, addStrings, api, busy, fmtTime, h, onSignedOut, session, t, toast } from '/assets/common.js';

addStrings({
  photos: ['照片与附件', 'Photos and files'], phase_before: ['维修前', 'Before the work'],
  phase_during: ['维修中', 'During the work'], phase_after: ['完工', 'At completion'],
  add_photo: ['上传照片或文件', 'Add a photo or file'], uploading: ['正在上传 {0}%', 'Uploading {0}%'],
  attached: ['已上传', 'Added'], not_uploaded_yet: ['待上传', 'Not uploaded yet'], file_label: ['文件', 'File'],
  close: ['关闭', 'Close'], photo_by_me: ['我', 'Me'], photo_of: ['{0} 的照片', 'Photo by {0}'], no_photos: ['暂无照片', 'No photos yet'],
  owner_signature: ['业主签字确认', "Owner's signature"], add_photos: ['添加照片', 'Add photos'], remove: ['移除', 'Remove'],
  uploading_n: ['正在上传第 {0}/{1} 张 {2}%', 'Uploading {0} of {1}: {2}%'], photos_failed: ['{0} 张照片未能上传({1}),请在工单 {2} 详情中重新上传', '{0} photo(s) not sent ({1}); add them again on order {2}'],
  photos_sent: ['工单 {0} 的 {1} 张照片已上传', '{1} photo(s) of order {0} sent'], too_many_photos: ['最多 9 张,多选的未加入', 'Up to 9: the rest were left out'],
  photos_hint: ['最多 9 张,工单登记后上传', 'Up to 9; sent once the order is registered'], signature_needed: ['本单完工须业主在维修人员手机上签字确认', 'Completion needs the owner to sign on the technician\'s phone'],
});

const PHASES = ['before', 'during', 'after'];
// What a saved file is called, by the type the server found its bytes to be (never the type
// the attaching device claimed).
const EXTENSIONS = { 'image/jpeg': 'jpg', 'image/png': 'png', 'image/webp': 'webp', 'application/pdf': 'pdf' };
const KEPT_THUMBNAILS = 200;
const urls = new Map(); // thumbnail path → Promise of an object URL, oldest first
onSignedOut(() => forgetPictures());

// Forgets every kept picture (the user signed out, or another signs in).
export function forgetPictures() {
  for (const url of urls.values()) url.then((u) => URL.revokeObjectURL(u), () => {});
  urls.clear();
}

function authorized(extra = {}) {
  const token = session.get()?.token;
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

async function refusal(res) {
  const body = await res.json().catch(() => null);
  return new ApiError(res.status, body?.error);
}

// The bytes at a download path, as a new object URL (the caller revokes it).
async function fetchUrl(path) {
  const res = await fetch(path, { headers: authorized() });
  if (!res.ok) throw await refusal(res);
  return URL.createObjectURL(await res.blob());
}

// A thumbnail's object URL, kept among the latest KEPT_THUMBNAILS (live repaints do not fetch
// again).
function thumbnailUrl(path) {
  let url = urls.get(path);
  if (url) {
    urls.delete(path); // most recent last
  } else {
    url = fetchUrl(path);
    url.catch(() => urls.delete(path));
  }
  urls.set(path, url);
  while (urls.size > KEPT_THUMBNAILS) {
    const [oldest, gone] = urls.entries().next().value;
    urls.delete(oldest);
    gone.then((u) => URL.revokeObjectURL(u), () => {});
  }
  return url;
}

// A thumbnail that loads itself; a placeholder until then, or when there is none.
function thumb(path, alt) {
  const img = h('img', { alt, loading: 'lazy', decoding: 'async' });
  thumbnailUrl(path).then((u) => { img.src = u; }, () => img.classList.add('broken'));
  return img;
}

// A picture full size, over the page, closed by a tap outside, Escape, the button or leaving
// the view (Back on a phone); focus goes to it and comes back after.
async function showFull(path, caption) {
  const img = h('img', { alt: caption });
  const before = document.activeElement;
  let url = null;
  const close = () => {
    dialog.remove();
    document.removeEventListener('keydown', onKey, true);
    window.removeEventListener('hashchange', close);
    if (url) URL.revokeObjectURL(url);
    before?.focus?.();
  };
  const onKey = (e) => {
    // The page's own shortcuts wait while the picture is shown.
    e.stopPropagation();
    if (e.key === 'Escape') close();
  };
  const button = h('button', { type: 'button', class: 'close', 'data-testid': 'photo-close', onclick: close }, t('close'));
  const dialog = h('div', { class: 'lightbox', role: 'dialog', 'aria-modal': 'true', 'aria-label': caption, 'data-testid': 'photo-full', onclick: (e) => { if (e.target === dialog) close(); } },
    h('figure', {}, img, h('figcaption', {}, caption)), button);
  document.addEventListener('keydown', onKey, true);
  window.addEventListener('hashchange', close);
  document.body.append(dialog);
  button.focus();
  try {
    url = await fetchUrl(path);
    if (dialog.isConnected) img.src = url; else URL.revokeObjectURL(url);
  } catch (e) { close(); throw e; }
}

async function saveFile(path, name) {
  const url = await fetchUrl(path);
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// The attachments card: `who(a)` names an attachment's author; `onChanged(detail)` takes the
// order's detail after one was added.
export function attachmentsCard(d, { who, onChanged, testid = 'detail-photos' }) {
  const files = d.attachments ?? [];
  const base = `/api/v1/orders/${encodeURIComponent(d.id)}/attachments`;
  const item = (a) => {
    const path = `${base}/${a.sha256}`;
    const by = who(a);
    const signature = a.kind === 'signature';
    const caption = `${signature ? t('owner_signature') : t('photo_of', by)} · ${fmtTime(a.at)}`;
    // What the bytes are, as the server found them.
    const type = a.stored_type ?? a.mime;
    const picture = ['image/jpeg', 'image/png', 'image/webp'].includes(type);
    const body = !a.uploaded ? h('span', { class: 'pending' }, t('not_uploaded_yet'))
      : picture && a.thumbnail ? thumb(`${path}/thumbnail`, caption)
        : h('span', { class: 'file' }, picture ? '🖼' : '📄', h('small', {}, picture ? (EXTENSIONS[type] ?? '').toUpperCase() : t('file_label')));
    const open = (e) => busy(e.currentTarget, () => (picture ? showFull(path, caption) : saveFile(path, `${a.sha256.slice(0, 12)}.${EXTENSIONS[type] ?? 'bin'}`)));
    return h('li', { 'data-testid': signature ? 'signature' : 'photo', 'data-phase': a.phase, 'data-uploaded': String(a.uploaded) },
      h('button', { type: 'button', class: signature ? 'thumb signature' : 'thumb', title: caption, 'aria-label': caption, disabled: !a.uploaded, onclick: open }, body),
      h('div', { class: 'muted' }, signature ? t('owner_signature') : by, h('br'), fmtTime(a.at)));
  };
  // The owner's signatures apart, last: what confirms the work, not a picture of it.
  const photos = files.filter((a) => a.kind !== 'signature');
  const signatures = files.filter((a) => a.kind === 'signature');
  const groups = PHASES.map((phase) => [t(`phase_${phase}`), photos.filter((a) => a.phase === phase)])
    .concat([[t('owner_signature'), signatures]]).filter(([, list]) => list.length);
  const open = !['awaiting_confirmation', 'confirmed', 'auto_confirmed', 'return_visited', 'closed', 'cancelled'].includes(d.status);
  if (!files.length && !d.may_attach && !(d.signature_required && open)) return null;
  return h('section', { class: 'card photos', 'data-testid': testid },
    h('h3', {}, t('photos')),
    d.signature_required && open && h('p', { class: 'muted', 'data-testid': 'signature-needed' }, '✍ ', t('signature_needed')),
    !files.length && h('p', { class: 'muted' }, t('no_photos')),
    groups.map(([title, list]) => [h('h4', {}, title), h('ul', { class: 'gallery' }, list.map(item))]),
    d.may_attach && addForm(base, onChanged));
}

// Photos chosen while registering or reporting, sent once the order exists (the order never
// waits for its photos): a file input for several at once, previews of the choice (each can be
// removed), and `send(orderId, number)`, which takes the choice (the picker is empty and free
// again at once), uploads each and attaches it in the background, and says when they are all
// sent, or which were not (to add again on the order).
export const MAX_PICKED = 9;
export function photoPicker({ testid = 'photo-pick' } = {}) {
  let chosen = [];
  let previews = [];
  const input = h('input', { type: 'file', multiple: true, accept: 'image/jpeg,image/png,image/webp,application/pdf', 'data-testid': `${testid}-input`, 'aria-label': t('add_photos') });
  const list = h('ul', { class: 'gallery', 'data-testid': `${testid}-list` });
  const progress = h('span', { class: 'muted', 'data-testid': `${testid}-progress`, 'aria-live': 'polite' });
  const button = h('button', { type: 'button', 'data-testid': `${testid}-add` }, t('add_photos'));
  const paint = () => {
    for (const url of previews) if (url) URL.revokeObjectURL(url);
    previews = chosen.map((f) => (f.type.startsWith('image/') ? URL.createObjectURL(f) : null));
    // Shown once: the object URL goes as soon as the preview has drawn.
    list.replaceChildren(...chosen.map((f, i) => h('li', { 'data-testid': `${testid}-item` },
      h('span', { class: 'thumb' }, previews[i] ? h('img', { src: previews[i], alt: f.name, onload: () => URL.revokeObjectURL(previews[i]), onerror: () => URL.revokeObjectURL(previews[i]) }) : h('span', { class: 'file' }, '📄', h('small', {}, f.name))),
      h('button', { type: 'button', class: 'link', 'aria-label': `${t('remove')} ${f.name}`, onclick: () => { chosen.splice(i, 1); paint(); } }, t('remove')))));
    button.disabled = chosen.length >= MAX_PICKED;
  };
  button.addEventListener('click', () => input.click());
  input.addEventListener('change', () => {
    const all = chosen.concat([...input.files]);
    if (all.length > MAX_PICKED) toast(t('too_many_photos'), 'error');
    chosen = all.slice(0, MAX_PICKED);
    input.value = '';
    paint();
  });
  // A group, not a <label>: a tap on a preview must not open the file chooser.
  const hint = h('span', { class: 'muted', id: `${testid}-hint` }, t('photos_hint'));
  button.setAttribute('aria-describedby', hint.id);
  const node = h('div', { class: 'field wide photos picker', role: 'group', 'aria-label': t('photos'), 'data-testid': testid },
    h('span', {}, t('photos')),
    h('div', { class: 'row-actions' }, button, input, hint, progress), list);
  return {
    node,
    count: () => chosen.length,
    clear() { chosen = []; paint(); },
    async send(orderId, number) {
      const files = chosen;
      chosen = [];
      paint();
      const failed = [];
      for (const [i, file] of files.entries()) {
        try {
          const sha256 = await upload(file, (done) => { progress.textContent = t('uploading_n', i + 1, files.length, Math.round(done * 100)); });
          await api(`/api/v1/orders/${encodeURIComponent(orderId)}/attachments`, { method: 'POST', body: { sha256 } });
        } catch {
          failed.push(file.name);
        }
      }
      progress.textContent = '';
      if (failed.length) toast(t('photos_failed', failed.length, failed.join('、'), number), 'error');
      else if (files.length) toast(t('photos_sent', number, files.length));
      return { sent: files.length - failed.length, failed };
    },
  };
}

function addForm(base, onChanged) {
  const input = h('input', { type: 'file', accept: 'image/jpeg,image/png,image/webp,application/pdf', 'data-testid': 'photo-input', 'aria-label': t('add_photo') });
  const progress = h('span', { class: 'muted', 'data-testid': 'photo-progress', 'aria-live': 'polite' });
  const button = h('button', { type: 'button', 'data-testid': 'photo-add' }, t('add_photo'));
  button.addEventListener('click', () => input.click());
  input.addEventListener('change', () => {
    const [file] = input.files;
    if (!file) return;
    busy(button, async () => {
      try {
        const sha256 = await upload(file, (done) => { progress.textContent = t('uploading', Math.round(done * 100)); });
        const detail = await api(base, { method: 'POST', body: { sha256 } });
        toast(t('attached'));
        onChanged(detail);
      } finally {
        progress.textContent = '';
        input.value = '';
      }
    });
  });
  return h('div', { class: 'row-actions' }, button, input, progress);
}

// Uploads a file's bytes (tus 1.0: create, then 1 MiB parts from the offset the server holds):
// the bytes' SHA-256. A part that fails (the network, a timeout, the server busy or failing) is
// followed by a pause and a HEAD asking what the server holds, and sending goes on from there;
// only refusals, or 8 failures in a row without progress, end it.
async function upload(file, onProgress) {
  const type = file.type;
  if (!['image/jpeg', 'image/png', 'image/webp', 'application/pdf'].includes(type)) {
    throw new ApiError(415, { code: 'unsupported_type', message: 'JPEG, PNG, WebP or PDF only', message_zh: '仅支持 JPEG、PNG、WebP 图片或 PDF 文件' });
  }
  const bytes = new Uint8Array(await file.arrayBuffer());
  const sha256 = await sha256Hex(bytes);
  const kind = type.startsWith('image/') ? 'photo' : 'file';
  const tus = (extra) => authorized({ 'Tus-Resumable': '1.0.0', ...extra });
  const created = await fetch('/api/v1/uploads', {
    method: 'POST',
    headers: tus({ 'Upload-Length': String(bytes.length), 'Upload-Metadata': `sha256 ${btoa(sha256)},kind ${btoa(kind)}` }),
  });
  if (!created.ok) throw await refusal(created);
  const location = created.headers.get('Location');
  let offset = Number(created.headers.get('Upload-Offset'));
  let failures = 0;
  const retryable = (status) => status === 423 || status === 408 || status >= 500;
  while (offset < bytes.length) {
    onProgress(offset / bytes.length);
    const part = bytes.subarray(offset, Math.min(bytes.length, offset + (1 << 20)));
    try {
      const res = await fetch(location, {
        method: 'PATCH',
        headers: tus({ 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(offset) }),
        body: part,
        signal: AbortSignal.timeout(60_000),
      });
      if (res.ok || res.status === 409) {
        const next = Number(res.headers.get('Upload-Offset'));
        if (next > offset) failures = 0;
        offset = next;
        continue;
      }
      if (!retryable(res.status)) throw await refusal(res);
    } catch (e) {
      if (e instanceof ApiError) throw e;
    }
    // Failed: wait, ask what the server holds, go on from there.
    if (++failures > 8) throw new ApiError(503, { code: 'upload_stalled', message: 'the upload makes no progress: try again later', message_zh: '上传无进展,请稍后重试' });
    await new Promise((resolve) => setTimeout(resolve, Math.min(30_000, 500 * 2 ** failures)));
    try {
      const held = await fetch(location, { method: 'HEAD', headers: tus(), signal: AbortSignal.timeout(30_000) });
      if (held.ok) offset = Number(held.headers.get('Upload-Offset'));
      else if (!retryable(held.status)) throw await refusal(held);
    } catch (e) {
      if (e instanceof ApiError) throw e;
    }
  }
  onProgress(1);
  return sha256;
}

// SHA-256 as lowercase hex: the browser's own where it has one (secure pages: https, localhost),
// else FIPS 180-4 here (a desk on the intranet over plain http).
export async function sha256Hex(bytes) {
  if (globalThis.crypto?.subtle) {
    const digest = await crypto.subtle.digest('SHA-256', bytes);
    return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
  }
  return sha256Fallback(bytes);
}

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
  0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

export function sha256Fallback(bytes) {
  const total = Math.ceil((bytes.length + 9) / 64) * 64;
  const padded = new Uint8Array(total);
  padded.set(bytes);
  padded[bytes.length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(total - 8, Math.floor(bytes.length / 0x20000000));
  view.setUint32(total - 4, (bytes.length << 3) >>> 0);
  const hash = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const w = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let block = 0; block < total; block += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(block + i * 4);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    // Plain locals: no array is made per round (a 40 MiB photo is 650,000 blocks).
    let a = hash[0], b = hash[1], c = hash[2], d = hash[3], e = hash[4], f = hash[5], g = hash[6], hh = hash[7];
    for (let i = 0; i < 64; i++) {
      const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    hash[0] += a; hash[1] += b; hash[2] += c; hash[3] += d; hash[4] += e; hash[5] += f; hash[6] += g; hash[7] += hh;
  }
  return Array.from(hash, (x) => x.toString(16).padStart(8, '0')).join('');
}
