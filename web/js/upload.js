// A photo of your own as the query: "Choose a photo…", a file or a result photo dropped anywhere on the page, a
// photo pasted from the clipboard. Checks the file (type, size) before searching with it. Owns #dropzone and #file.

import { FORMATS, server } from './config.js';
import { ui } from './dom.js';
import { formatBytes } from './format.js';
import { showError } from './messages.js';
import { search, searchIndexedPhoto, searchText } from './search.js';

export function searchFile(file) {
  if (!file) return;
  const name = file.name || 'pasted image';
  if (file.type && !file.type.startsWith('image/')) {
    showError('\u201c' + name + '\u201d is not a photo (' + file.type + '). Choose a ' + FORMATS + ' file.');
    return;
  }
  if (file.size === 0) {
    showError('\u201c' + name + '\u201d is empty.');
    return;
  }
  if (file.size > server.max_image_bytes) {
    showError('\u201c' + name + '\u201d is too large (' + formatBytes(file.size) + '); photos up to ' +
              formatBytes(server.max_image_bytes) + ' can be searched.');
    return;
  }
  ui.q.value = '';
  // An uploaded photo cannot live in the address: the URL keeps the options only.
  search({ kind: 'upload', file, name }, 'push');
}

export function bindUpload() {
  ui.choose.addEventListener('click', () => ui.file.click());
  ui.file.addEventListener('change', () => {
    const file = ui.file.files && ui.file.files[0];
    searchFile(file);
    ui.file.value = '';  // choosing the same file again still searches
  });

  // Drag and drop: anywhere on the page; a photo file, or one of this page's result photos.
  let dragDepth = 0;
  document.addEventListener('dragenter', (event) => {
    event.preventDefault();
    dragDepth += 1;
    ui.dropzone.classList.add('dragging');
  });
  document.addEventListener('dragover', (event) => event.preventDefault());
  document.addEventListener('dragleave', () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (dragDepth === 0) ui.dropzone.classList.remove('dragging');
  });
  document.addEventListener('drop', (event) => {
    event.preventDefault();
    dragDepth = 0;
    ui.dropzone.classList.remove('dragging');
    const transfer = event.dataTransfer;
    if (!transfer) return;
    if (transfer.files && transfer.files.length) {
      searchFile(transfer.files[0]);
      return;
    }
    const dropped = transfer.getData('text/uri-list') || transfer.getData('text/plain') || '';
    const indexed = dropped.match(/\/images\/([A-Za-z0-9_.:-]+)/);
    if (indexed) searchIndexedPhoto(decodeURIComponent(indexed[1]));
    else if (dropped.trim()) searchText(dropped);
  });

  // Paste: a photo from the clipboard searches by photo; pasted text goes where it is pasted.
  document.addEventListener('paste', (event) => {
    const files = event.clipboardData ? [...event.clipboardData.files] : [];
    const image = files.find((file) => file.type.startsWith('image/')) || files[0];
    if (image) {
      event.preventDefault();
      searchFile(image);
    }
  });
}
