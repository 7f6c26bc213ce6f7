// Cross-modal search page: text -> photos, photo -> captions, over the gateway's JSON API (no framework, no build).
(function () {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const ui = {
    form: $('text-form'), q: $('q'), file: $('file'), choose: $('choose-file'), dropzone: $('dropzone'),
    modality: $('modality'), limit: $('limit'), notice: $('notice'), error: $('error'), status: $('status'),
    results: $('results'), list: $('result-list'), more: $('more'), query: $('query'),
    queryImage: $('query-image'), queryTitle: $('query-title'), queryCaption: $('query-caption'),
    queryNote: $('query-note'), stats: $('stats'), maxSize: $('max-size'),
    sample: $('sample'), sampleList: $('sample-list'), sampleMore: $('sample-more'), examples: $('examples'),
  };
  const LIMIT_STEPS = [10, 20, 50, 100];
  const DEFAULT_LIMIT = 10;
  const FORMATS = 'JPEG, PNG, GIF, BMP, WebP or TIFF';
  const server = { max_limit: 100, max_image_bytes: 20 * 1024 * 1024, max_text_chars: 1000 };

  let current = null;      // the query shown: {kind: 'text'|'image_id'|'upload', value, file, name}
  let sequence = 0;        // answers to older searches are dropped
  let controller = null;   // aborts the search in flight when a new one starts
  let objectUrl = null;    // preview of an uploaded photo
  const photos = new Map(); // indexed photo id -> {name, caption}, from results, the sample or /documents

  // --- URL state: ?q=<text> or ?image=<indexed photo id>, plus limit and modality -----------------------------

  function readUrl() {
    const params = new URLSearchParams(location.search);
    const limit = Number.parseInt(params.get('limit') || '', 10);
    const modality = params.get('modality');
    let query = null;
    if (params.get('q')) query = { kind: 'text', value: params.get('q') };
    else if (params.get('image')) query = { kind: 'image_id', value: params.get('image') };
    return {
      query,
      limit: Number.isFinite(limit) ? clampLimit(limit) : DEFAULT_LIMIT,
      modality: modality === 'image' || modality === 'text' ? modality : '',
    };
  }

  function urlFor(query) {
    const params = new URLSearchParams();
    if (query && query.kind === 'text') params.set('q', query.value);
    if (query && query.kind === 'image_id') params.set('image', query.value);
    if (Number(ui.limit.value) !== DEFAULT_LIMIT) params.set('limit', ui.limit.value);
    if (ui.modality.value) params.set('modality', ui.modality.value);
    const search = params.toString();
    return location.pathname + (search ? '?' + search : '');
  }

  function clampLimit(limit) {
    return Math.max(1, Math.min(limit, server.max_limit));
  }

  function setLimit(limit) {
    const value = String(clampLimit(limit));
    if (![...ui.limit.options].some((option) => option.value === value)) {
      const option = new Option(value, value);
      ui.limit.add(option);
      [...ui.limit.options].sort((a, b) => a.value - b.value).forEach((o) => ui.limit.add(o));
    }
    ui.limit.value = value;
  }

  // --- messages -------------------------------------------------------------------------------------------------

  function showError(message) {
    ui.error.textContent = message;
    ui.error.hidden = false;
    setStatus('');
    ui.results.removeAttribute('aria-busy');
  }

  function clearError() {
    ui.error.hidden = true;
    ui.error.textContent = '';
  }

  function setStatus(text, loading, more) {
    ui.status.textContent = text;
    if (more) {
      const extra = document.createElement('span');
      extra.className = 'status-more';
      extra.textContent = ' ' + more;
      ui.status.append(extra);
    }
    ui.status.classList.toggle('loading', Boolean(loading));
  }

  function formatBytes(bytes) {
    if (bytes >= 1024 * 1024) return (bytes / (1024 * 1024)).toFixed(bytes >= 10 * 1024 * 1024 ? 0 : 1) + ' MB';
    if (bytes >= 1024) return Math.round(bytes / 1024) + ' KB';
    return bytes + ' bytes';
  }

  function plural(count, one, many) {
    return count + ' ' + (count === 1 ? one : many);
  }

  function describeFailure(status, body, query) {
    const message = body && body.error && body.error.message ? body.error.message : 'HTTP ' + status;
    if (status === 502 || status === 503 || status === 504) {
      return 'The search service is not ready yet; try again in a moment. (' + message + ')';
    }
    if (query.kind === 'upload' && status === 413) {
      const reason = /^'[^']*' (is not a usable image: )?/.test(message)
        ? message.replace(/^'[^']*' (is not a usable image: )?/, '') : 'is too large to search (' + message + ')';
      return '\u201c' + query.name + '\u201d ' + reason + '.';
    }
    if (query.kind === 'upload' && status === 400) {
      const reason = message.replace(/^'[^']*' is not a usable image: /, '');
      return '\u201c' + query.name + '\u201d could not be read as a photo: ' + reason + '.';
    }
    if (query.kind === 'image_id' && status === 404) {
      return 'That photo is not in the index (any more). ' + message;
    }
    return 'The search failed: ' + message;
  }

  // --- searching ------------------------------------------------------------------------------------------------

  function requestFor(query, limit, modality, signal) {
    if (query.kind === 'upload') {
      const form = new FormData();
      form.append('image', query.file, query.name);
      form.append('limit', String(limit));
      if (modality) form.append('modality', modality);
      return { method: 'POST', body: form, signal };
    }
    const body = { limit };
    body[query.kind === 'text' ? 'text' : 'image_id'] = query.value;
    if (modality) body.modality = modality;
    return { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), signal };
  }

  // history: 'push' (a new search), 'replace' (same search, other options) or null (from the URL itself)
  async function search(query, history) {
    current = query;
    const limit = Number(ui.limit.value);
    const modality = ui.modality.value;
    if (history === 'push') window.history.pushState(null, '', urlFor(query));
    else if (history === 'replace') window.history.replaceState(null, '', urlFor(query));
    ui.sample.hidden = true;
    showQuery(query);
    clearError();
    setStatus('Searching\u2026', true);
    ui.results.setAttribute('aria-busy', 'true');
    if (controller) controller.abort();
    controller = new AbortController();
    const mine = ++sequence;
    let response;
    let body = null;
    try {
      response = await fetch('/search', requestFor(query, limit, modality, controller.signal));
      body = await response.json().catch(() => null);
    } catch (error) {
      if (error.name === 'AbortError' || mine !== sequence) return;
      showError('Cannot reach the search server. Is it running? (' + error.message + ')');
      return;
    }
    if (mine !== sequence) return;
    ui.results.removeAttribute('aria-busy');
    if (!response.ok || !body || !Array.isArray(body.matches)) {
      showError(describeFailure(response.status, body, query));
      return;
    }
    render(body, query, limit);
  }

  function searchText(text) {
    const value = text.trim();
    if (!value) {
      showError('Type a description of a photo first, e.g. \u201ca cup of coffee\u201d.');
      ui.q.focus();
      return;
    }
    search({ kind: 'text', value }, 'push');
  }

  function searchIndexedPhoto(id) {
    ui.q.value = '';
    search({ kind: 'image_id', value: id }, 'push');
  }

  function searchFile(file) {
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

  // --- rendering ------------------------------------------------------------------------------------------------

  function showQuery(query) {
    if (query.kind === 'text') {
      ui.q.value = query.value;
      ui.query.hidden = true;
      return;
    }
    if (objectUrl && !(query.kind === 'upload' && query.url === objectUrl)) {
      URL.revokeObjectURL(objectUrl);
      objectUrl = null;
    }
    if (query.kind === 'upload') {
      if (!query.url) query.url = URL.createObjectURL(query.file);
      objectUrl = query.url;
      ui.queryImage.src = query.url;
      ui.queryTitle.textContent = 'Your photo: ' + query.name;
      ui.queryNote.textContent = 'Searches with your own photo are not kept in the page address.';
      ui.queryCaption.hidden = true;
    } else {
      ui.queryImage.src = '/images/' + encodeURIComponent(query.value) + '?size=256';
      ui.queryNote.textContent = 'Share or reload this page to repeat the search.';
      describeIndexedPhoto(query);
    }
    ui.queryImage.alt = 'The photo searched with';
    ui.query.hidden = false;
  }

  // The heading of a search by an indexed photo: its file name and first caption (never its id).
  function showPhotoInfo(info) {
    ui.queryTitle.textContent = 'Photo ' + (info && info.name ? info.name : 'from the collection');
    const caption = info && info.caption;
    ui.queryCaption.textContent = caption ? '\u201c' + caption + '\u201d' : '';
    ui.queryCaption.hidden = !caption;
  }

  async function describeIndexedPhoto(query) {
    const known = photos.get(query.value);
    showPhotoInfo(known);
    if (known) return;
    let document_ = null;
    try {
      const response = await fetch('/documents/' + encodeURIComponent(query.value));
      if (response.ok) document_ = await response.json();
    } catch (error) {
      return;  // the search itself says what is wrong
    }
    if (!document_ || current !== query) return;
    const info = {
      name: fileName(document_.tags, query.value),
      caption: document_.captions && document_.captions.length ? document_.captions[0].text : null,
    };
    photos.set(query.value, info);
    showPhotoInfo(info);
  }

  function fileName(tags, fallback) {
    const pairId = (tags && tags.pair_id) || fallback || '';
    return pairId.split('/').pop();
  }

  function scoreParts(score) {
    const meta = document.createElement('p');
    meta.className = 'meta';
    const value = document.createElement('span');
    value.className = 'score';
    value.textContent = score.toFixed(3);
    value.title = 'cosine similarity to the query (higher is closer)';
    const bar = document.createElement('span');
    bar.className = 'bar';
    bar.setAttribute('aria-hidden', 'true');
    const fill = document.createElement('span');
    fill.style.width = Math.max(0, Math.min(1, score)) * 100 + '%';
    bar.append(fill);
    return { meta, value, bar };
  }

  function thumbButton(imageId, size, label) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'thumb';
    button.dataset.imageId = imageId;
    button.setAttribute('aria-label', label);
    button.title = 'Search with this photo';
    const img = document.createElement('img');
    img.src = '/images/' + encodeURIComponent(imageId) + '?size=' + size;
    img.alt = '';
    img.loading = 'lazy';
    img.decoding = 'async';
    img.addEventListener('error', () => {
      const broken = document.createElement('span');
      broken.className = 'broken';
      broken.textContent = 'photo unavailable';
      img.replaceWith(broken);
    }, { once: true });
    button.append(img);
    return button;
  }

  function photoCard(match, rank) {
    const item = document.createElement('li');
    item.className = 'card';
    item.dataset.id = match.id;
    const name = fileName(match.tags, match.id);
    const caption = match.caption || '';
    photos.set(match.id, { name, caption: caption || null });
    item.append(thumbButton(match.id, 256, (caption ? caption + ' (' + name + ')' : 'Photo ' + name) +
                                           ', score ' + match.score.toFixed(3) + ': search with this photo'));
    const body = document.createElement('div');
    body.className = 'card-body';
    const { meta, value, bar } = scoreParts(match.score);
    const rankLabel = document.createElement('span');
    rankLabel.className = 'rank';
    rankLabel.textContent = '#' + rank;
    meta.append(rankLabel, value, bar);
    const what = document.createElement('p');
    what.className = caption ? 'photo-caption' : 'photo-caption no-caption';
    what.textContent = caption || name;
    body.append(meta, what);
    if (caption) {
      const label = document.createElement('p');
      label.className = 'label';
      label.textContent = name;
      body.append(label);
    }
    item.append(body);
    return item;
  }

  function captionCard(match, rank) {
    const item = document.createElement('li');
    item.className = 'caption-card';
    item.dataset.id = match.id;
    const imageId = match.tags && match.tags.image_id;
    const name = fileName(match.tags, imageId);
    if (imageId) {
      item.append(thumbButton(imageId, 128, 'Photo ' + name + ' of this caption: search with this photo'));
    }
    const body = document.createElement('div');
    body.className = 'caption-body';
    const text = document.createElement('p');
    text.className = 'caption-text';
    text.textContent = match.text || '';
    const { meta, value, bar } = scoreParts(match.score);
    const rankLabel = document.createElement('span');
    rankLabel.className = 'rank';
    rankLabel.textContent = '#' + rank;
    meta.append(rankLabel, value, bar);
    const label = document.createElement('p');
    label.className = 'label';
    label.textContent = name;
    body.append(text, meta, label);
    item.append(body);
    return item;
  }

  function render(body, query, limit) {
    const matches = body.matches;
    const photos = body.modality === 'image';
    const hadFocus = ui.list.contains(document.activeElement);
    ui.list.className = 'result-list ' + (photos ? 'photos' : 'captions');
    ui.list.replaceChildren(...matches.map((match, i) => (photos ? photoCard(match, i + 1) : captionCard(match, i + 1))));
    const what = photos ? plural(matches.length, 'photo', 'photos') : plural(matches.length, 'caption', 'captions');
    const about = query.kind === 'text' ? ' for \u201c' + query.value + '\u201d' : ' for this photo';
    if (matches.length === 0) {
      setStatus('No ' + (photos ? 'photos' : 'captions') + ' found' + about + '. Is anything indexed?');
    } else {
      setStatus(what + about + ', best first.', false,
                'Scores are cosine similarities (higher is closer).');
    }
    ui.more.hidden = !(matches.length >= limit && limit < server.max_limit);
    if (hadFocus) ui.results.focus({ preventScroll: true });
  }

  function showMore() {
    if (!current) return;
    const now = Number(ui.limit.value);
    const next = LIMIT_STEPS.find((step) => step > now) || server.max_limit;
    setLimit(next);
    const focusIndex = now;
    search(current, 'replace').then(() => {
      const target = ui.list.children[focusIndex];
      const button = target && target.querySelector('button');
      if (button) button.focus();
    });
  }

  // --- events ---------------------------------------------------------------------------------------------------

  ui.form.addEventListener('submit', (event) => {
    event.preventDefault();
    searchText(ui.q.value);
  });

  ui.choose.addEventListener('click', () => ui.file.click());
  ui.file.addEventListener('change', () => {
    const file = ui.file.files && ui.file.files[0];
    searchFile(file);
    ui.file.value = '';  // choosing the same file again still searches
  });

  ui.list.addEventListener('click', (event) => {
    const button = event.target.closest('button.thumb');
    if (button && button.dataset.imageId) {
      searchIndexedPhoto(button.dataset.imageId);
      window.scrollTo({ top: 0, behavior: 'smooth' });
    }
  });

  ui.more.addEventListener('click', showMore);

  ui.sampleList.addEventListener('click', (event) => {
    const button = event.target.closest('button.thumb');
    if (button && button.dataset.imageId) searchIndexedPhoto(button.dataset.imageId);
  });
  ui.examples.addEventListener('click', (event) => {
    const button = event.target.closest('button.example');
    if (button) searchText(button.dataset.text);
  });
  ui.sampleMore.addEventListener('click', () => loadSample());

  function rerunWithOptions() {
    if (current) search(current, 'replace');
    else window.history.replaceState(null, '', urlFor(null));
  }
  ui.limit.addEventListener('change', rerunWithOptions);
  ui.modality.addEventListener('change', rerunWithOptions);

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

  // "/" jumps to the search box.
  document.addEventListener('keydown', (event) => {
    const typing = event.target.closest('input, select, textarea, [contenteditable="true"]');
    if (event.key === '/' && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      ui.q.focus();
      ui.q.select();
    }
  });

  window.addEventListener('popstate', () => {
    const state = readUrl();
    setLimit(state.limit);
    ui.modality.value = state.modality;
    if (state.query) search(state.query, null);
    else showHome();
  });

  // --- start ----------------------------------------------------------------------------------------------------

  async function loadStats() {
    let response;
    try {
      response = await fetch('/stats');
    } catch (error) {
      showError('Cannot reach the search server. Is it running? (' + error.message + ')');
      return false;
    }
    const stats = await response.json().catch(() => null);
    if (!response.ok || !stats) {
      const message = stats && stats.error ? stats.error.message : 'HTTP ' + response.status;
      showError('The search service is not ready yet; reload in a moment. (' + message + ')');
      return false;
    }
    Object.assign(server, stats.limits || {});
    ui.maxSize.textContent = formatBytes(server.max_image_bytes);
    ui.q.maxLength = server.max_text_chars;
    const model = stats.model ? ' \u00b7 model ' + stats.model + (stats.dim ? ' (' + stats.dim + '-d)' : '') : '';
    ui.stats.textContent = plural(stats.images, 'photo', 'photos') + ' and ' +
                           plural(stats.captions, 'caption', 'captions') + ' indexed' + model;
    if (!stats.images && !stats.captions) {
      ui.notice.textContent = 'Nothing is indexed yet: run \u201cpython app.py -t index\u201d, then reload this page.';
      ui.notice.hidden = false;
    }
    return true;
  }

  // --- the home page: a sample of the collection -----------------------------------------------------------

  function sampleItem(photo) {
    const item = document.createElement('li');
    item.className = 'sample-item';
    item.dataset.id = photo.id;
    const caption = photo.caption || '';
    photos.set(photo.id, { name: photo.name, caption: caption || null });
    item.append(thumbButton(photo.id, 256, 'Search with this photo: ' + (caption || photo.name)));
    const text = document.createElement('p');
    text.className = 'sample-caption';
    text.textContent = caption || photo.name;
    text.title = (caption ? caption + ' \u2014 ' : '') + photo.name;
    item.append(text);
    return item;
  }

  function exampleItem(text) {
    const item = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'example';
    button.dataset.text = text;
    button.textContent = text;
    button.title = 'Search with this description';
    item.append(button);
    return item;
  }

  let sampleRequest = 0;
  async function loadSample() {
    const mine = ++sampleRequest;
    let body = null;
    try {
      const response = await fetch('/sample?limit=8');
      if (response.ok) body = await response.json();
    } catch (error) {
      body = null;
    }
    if (mine !== sampleRequest || current) return;  // a search started meanwhile
    const sample = body && Array.isArray(body.photos) ? body.photos : [];
    if (!sample.length) {
      ui.sample.hidden = true;
      return;
    }
    ui.sampleList.replaceChildren(...sample.map(sampleItem));
    const examples = sample.map((photo) => photo.caption).filter(Boolean).slice(0, 3);
    ui.examples.replaceChildren(...examples.map(exampleItem));
    $('examples-block').hidden = examples.length === 0;
    ui.sample.hidden = false;
  }

  function showHome() {
    current = null;
    sequence += 1;
    if (controller) controller.abort();
    ui.q.value = '';
    ui.query.hidden = true;
    ui.list.replaceChildren();
    ui.more.hidden = true;
    ui.results.removeAttribute('aria-busy');
    setStatus('');
    clearError();
    loadSample();
  }

  async function start() {
    const state = readUrl();
    setLimit(state.limit);
    ui.modality.value = state.modality;
    const ready = await loadStats();
    setLimit(state.limit);
    if (state.query) {
      search(state.query, null);
    } else {
      if (ready) loadSample();
      // Not on a touch screen: there, focus would open the keyboard over the sample.
      if (window.matchMedia('(pointer: fine)').matches) ui.q.focus();
    }
  }

  start();
}());
