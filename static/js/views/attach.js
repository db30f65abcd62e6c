// Attachments in the composer: files picked (the paperclip), pasted or dropped on the room are uploaded at
// once (`POST /v1.0/media`, multipart, with the conversation's id first so end users' tokens
// may upload too) and shown as chips — an image preview or the file's name and size, a
// progress bar while uploading, a remove button, and an error that says what was wrong (too
// big for its kind, a type the server refuses). Sending takes the uploaded ones as
// `{media_id}`. The upload uses XMLHttpRequest rather than the client's fetch because only it
// reports upload progress.

import { $, h, setChildren } from './dom.js';

const MAX_FILES = 10;

/** Human size: "12 KB", "3.4 MB". */
export function size(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${Math.round(n / 1024)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** What an upload's refusal means for the person who picked the file. */
function reason(status, body, file) {
  const err = (body && body.error) || {};
  if (status === 413) return `${file.name} is too large (${size(file.size)}). ${err.message || ''}`.trim();
  if (status === 415) return `${file.name}: this type of file is not accepted.`;
  if (status === 0) return `${file.name}: the server could not be reached.`;
  return `${file.name}: ${err.message || `upload failed (${status})`}`;
}

export class Attachments {
  constructor({ store, chat, onChange }) {
    this.store = store;
    this.chat = chat;
    this.onChange = onChange;
    this.roomId = null;
    this.items = []; // {id, file, state: uploading|done|failed, progress, media, error, preview, xhr}
    this.seq = 0;
    this.ul = $('#files');
    $('#attach').onchange = (ev) => {
      this.add([...ev.target.files]);
      ev.target.value = '';
    };
    $('#composer-text').addEventListener('paste', (ev) => {
      const files = [...(ev.clipboardData ? ev.clipboardData.files : [])];
      if (files.length) {
        ev.preventDefault();
        this.add(files);
      }
    });
    const room = $('#room');
    room.addEventListener('dragover', (ev) => {
      if (!ev.dataTransfer || ![...ev.dataTransfer.types].includes('Files')) return;
      ev.preventDefault();
      room.classList.add('dropping');
    });
    room.addEventListener('dragleave', (ev) => {
      if (ev.target === room || !room.contains(ev.relatedTarget)) room.classList.remove('dropping');
    });
    room.addEventListener('drop', (ev) => {
      room.classList.remove('dropping');
      if (!ev.dataTransfer || !ev.dataTransfer.files.length) return;
      ev.preventDefault();
      this.add([...ev.dataTransfer.files]);
    });
  }

  reset(roomId) {
    this.clear();
    this.roomId = roomId;
  }

  /** Forgets every chip (after sending, or in another room); running uploads are cancelled. */
  clear() {
    for (const it of this.items) {
      if (it.xhr && it.state === 'uploading') it.xhr.abort();
      if (it.preview) URL.revokeObjectURL(it.preview);
    }
    this.items = [];
    this.render();
  }

  busy() {
    return this.items.some((it) => it.state === 'uploading');
  }

  /** The uploaded medias, for the message. */
  ready() {
    return this.items.filter((it) => it.state === 'done').map((it) => it.media);
  }

  add(files) {
    for (const file of files) {
      if (this.items.length >= MAX_FILES) {
        this.store.setNotice(`At most ${MAX_FILES} files per message.`);
        break;
      }
      const it = { id: ++this.seq, file, state: 'uploading', progress: 0, media: null, error: '', preview: null, xhr: null };
      if (file.type.startsWith('image/') && file.type !== 'image/svg+xml') it.preview = URL.createObjectURL(file);
      this.items.push(it);
      this.upload(it);
    }
    this.render();
  }

  upload(it) {
    const xhr = new XMLHttpRequest();
    it.xhr = xhr;
    xhr.open('POST', '/v1.0/media');
    const token = this.chat.client.token;
    if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    xhr.upload.onprogress = (ev) => {
      if (!ev.lengthComputable) return;
      it.progress = ev.loaded / ev.total;
      this.render();
    };
    xhr.onload = () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status === 201 && body) {
        it.state = 'done';
        it.progress = 1;
        it.media = { id: body.id, url: body.url, content_type: body.content_type, size: body.size, name: body.name || it.file.name };
      } else {
        it.state = 'failed';
        it.error = reason(xhr.status, body, it.file);
      }
      this.render();
    };
    xhr.onerror = () => {
      it.state = 'failed';
      it.error = reason(0, null, it.file);
      this.render();
    };
    const form = new FormData();
    form.append('conversation_id', this.roomId);
    form.append('file', it.file, it.file.name || 'pasted');
    xhr.send(form);
  }

  remove(it) {
    if (it.xhr && it.state === 'uploading') it.xhr.abort();
    if (it.preview) URL.revokeObjectURL(it.preview);
    this.items = this.items.filter((x) => x !== it);
    this.render();
    $('#composer-text').focus();
  }

  render() {
    this.ul.hidden = !this.items.length;
    setChildren(
      this.ul,
      this.items.map((it) =>
        h(
          'li',
          { class: `chip ${it.state}` },
          it.preview ? h('img', { src: it.preview, alt: '', class: 'thumb' }) : h('span', { class: 'file-icon', 'aria-hidden': 'true' }, (it.file.name.split('.').pop() || 'file').slice(0, 4).toUpperCase()),
          h(
            'span',
            { class: 'chip-body' },
            h('span', { class: 'name', dir: 'auto' }, it.file.name || 'pasted file'),
            h('span', { class: 'muted small' }, size(it.file.size)),
            it.state === 'uploading'
              ? h('progress', { max: '1', value: String(it.progress), 'aria-label': `Uploading ${it.file.name}` })
              : null,
            it.error ? h('span', { class: 'error', role: 'alert' }, it.error) : null,
          ),
          h('button', { type: 'button', class: 'icon', 'aria-label': `Remove ${it.file.name || 'file'}`, onclick: () => this.remove(it) }, '×'),
        ),
      ),
    );
    this.onChange();
  }
}
