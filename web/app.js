// Cross-modal search page: text -> photos, photo -> captions, over the gateway's JSON API (no framework, no build).
// A search can be steered: "not" terms and "less like this" results are subtracted from the query (`minus`),
// "more like this" results are added to it (`plus`); matches are shown with their calibrated relevance, weak ones
// (below 50%) after a divider, dimmed.
// A photo library (photos with metadata) adds filters (dates, folder, camera, place), an order (newest first), pages
// ("More results" asks for the next page by `next_offset` and appends it) and a duplicates view (?view=duplicates).
(function () {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const ui = {
    form: $('text-form'), q: $('q'), file: $('file'), choose: $('choose-file'), dropzone: $('dropzone'),
    modality: $('modality'), limit: $('limit'), notice: $('notice'), error: $('error'), status: $('status'),
    results: $('results'), list: $('result-list'), more: $('more'), query: $('query'),
    queryImage: $('query-image'), queryTitle: $('query-title'), queryCaption: $('query-caption'),
    queryNote: $('query-note'), stats: $('stats'), maxSize: $('max-size'), queryShows: $('query-shows'),
    queryShowsText: $('query-shows-text'), queryOther: $('query-other'),
    sample: $('sample'), sampleList: $('sample-list'), sampleMore: $('sample-more'), examples: $('examples'),
    mode: $('mode'), not: $('not'), notAdd: $('not-add'), steering: $('steering'), chips: $('chips'),
    steeringClear: $('steering-clear'), noGoodMatch: $('no-good-match'), noGoodMatchText: $('no-good-match-text'),
    sort: $('sort'), sortField: $('sort-field'), filters: $('filters'), filtersActive: $('filters-active'),
    takenAfter: $('taken-after'), takenBefore: $('taken-before'), folder: $('folder'), folderList: $('folder-list'),
    camera: $('camera'), located: $('located'), filtersClear: $('filters-clear'), filtersNote: $('filters-note'),
    moreCount: $('more-count'), nav: $('site-nav'), navSearch: $('nav-search'), navDuplicates: $('nav-duplicates'),
    duplicates: $('duplicates'), duplicatesStatus: $('duplicates-status'), duplicateGroups: $('duplicate-groups'),
    duplicatesMore: $('duplicates-more'),
  };
  const DEFAULT_LIMIT = 10;
  const FORMATS = 'JPEG, PNG, GIF, BMP, WebP or TIFF';
  const server = { max_limit: 100, max_image_bytes: 20 * 1024 * 1024, max_text_chars: 1000 };
  const MODES = ['hybrid', 'semantic', 'keyword'];
  const DEFAULT_MODE = 'hybrid';
  const WEAK_BELOW = 0.5;  // relevance under this is a weak match (the server's `no_good_match` threshold)
  const MAX_PARTS = 8;     // parts in `plus` and in `minus`, each (the server's limit)
  const SORTS = ['relevance', 'taken'];
  const DEFAULT_SORT = 'relevance';
  // The filters: the page's input, its key in the address, the request field it fills.
  const FILTERS = [
    { input: 'takenAfter', param: 'from', field: 'taken_after', label: 'From' },
    { input: 'takenBefore', param: 'to', field: 'taken_before', label: 'To' },
    { input: 'folder', param: 'folder', field: 'folder', label: 'Folder' },
    { input: 'camera', param: 'camera', field: 'camera', label: 'Camera' },
    { input: 'located', param: 'located', field: 'has_location', label: 'Place' },
  ];
  const DUPLICATE_GROUPS = 20;  // groups per page of the duplicates view

  let current = null;      // the query shown: {kind: 'text'|'image_id'|'upload', value, file, name}
  let sequence = 0;        // answers to older searches are dropped
  let controller = null;   // aborts the search in flight when a new one starts
  let objectUrl = null;    // preview of an uploaded photo
  const photos = new Map(); // indexed photo id -> {name, caption}, from results, the sample or /documents
  // What steers the search, in the order it was added: {sign: 'plus'|'minus', kind: 'image_id'|'text', value,
  // source: 'not' (typed in "Not about") | 'result' (more/less like this)}
  let steering = [];
  // The results shown, for "More results": the next page's offset, the ids shown (a page never repeats one), the
  // request it continues and how the cards shown so far were grouped.
  let paging = null;
  let library = false;   // the collection has photos with metadata: filters, order and duplicates are offered
  let captionCount = null; // captions indexed (GET /stats): without any, a photo query finds the photos like it
  let view = 'search';   // 'search' or 'duplicates'

  // --- URL state: ?q=<text> or ?image=<indexed photo id>, plus limit and modality -----------------------------

  // Steering in the address: not=<text> (a "not" term), plus=/minus= photo:<id> or text:<caption> (more/less like
  // this), each repeatable, in the order they were added.
  function readUrl() {
    const params = new URLSearchParams(location.search);
    const limit = Number.parseInt(params.get('limit') || '', 10);
    const modality = params.get('modality');
    const mode = params.get('mode');
    let query = null;
    if (params.get('q')) query = { kind: 'text', value: params.get('q') };
    else if (params.get('image')) query = { kind: 'image_id', value: params.get('image') };
    const parts = [];
    for (const [key, value] of params) {
      if (key === 'not' && value.trim()) parts.push({ sign: 'minus', kind: 'text', value, source: 'not' });
      if ((key === 'plus' || key === 'minus') && /^(photo|text):./.test(value)) {
        const photo = value.startsWith('photo:');
        parts.push({ sign: key, kind: photo ? 'image_id' : 'text', value: value.slice(photo ? 6 : 5),
                     source: 'result' });
      }
    }
    const filters = {};
    for (const filter of FILTERS) filters[filter.param] = (params.get(filter.param) || '').trim();
    if (!['yes', 'no'].includes(filters.located)) filters.located = '';
    for (const day of ['from', 'to']) if (!/^\d{4}-\d{2}-\d{2}$/.test(filters[day])) filters[day] = '';
    const sort = params.get('sort');
    return {
      query,
      limit: Number.isFinite(limit) ? clampLimit(limit) : DEFAULT_LIMIT,
      modality: modality === 'image' || modality === 'text' ? modality : '',
      mode: MODES.includes(mode) ? mode : DEFAULT_MODE,
      steering: uniqueParts(parts),
      filters,
      sort: SORTS.includes(sort) ? sort : DEFAULT_SORT,
      view: params.get('view') === 'duplicates' && !query ? 'duplicates' : 'search',
    };
  }

  // The page's controls from the address's state.
  function applyState(state) {
    setLimit(state.limit);
    ui.modality.value = state.modality;
    ui.mode.value = state.mode;
    steering = state.steering;
    for (const filter of FILTERS) ui[filter.input].value = state.filters[filter.param];
    ui.sort.value = state.sort;
    markInvalid(null);
    showSteering();
    showFilters();
  }

  // --- filters and order (photo libraries) ------------------------------------------------------------------------

  function filterValues() {
    const values = {};
    for (const filter of FILTERS) values[filter.param] = ui[filter.input].value.trim();
    return values;
  }

  function activeFilters() {
    return FILTERS.filter((filter) => filterValues()[filter.param] !== '');
  }

  // The request fields of the filters and the order (only sent when the results are photos).
  function filterFields() {
    const values = filterValues();
    const fields = {};
    if (values.from) fields.taken_after = values.from;
    if (values.to) fields.taken_before = values.to;
    if (values.folder) fields.folder = values.folder.replace(/^\/+|\/+$/g, '');
    if (values.camera) fields.camera = values.camera;
    if (values.located) fields.has_location = values.located === 'yes';
    if (ui.sort.value !== DEFAULT_SORT) fields.sort = ui.sort.value;
    return fields;
  }

  // Photos are the results of a text query (cross-modal), of any query that asks for photos, and of a photo query
  // on a collection without captions (the server answers it with the photos like it).
  function photoResultsFor(query) {
    if (ui.modality.value !== '') return ui.modality.value === 'image';
    return Boolean(query) && (query.kind === 'text' || captionCount === 0);
  }

  // Offered in a photo library; hidden otherwise (captioned datasets have no dates or folders), unless the address
  // set them: then they show, so that they can be seen and cleared.
  function showFilters() {
    const set = activeFilters().length > 0 || ui.sort.value !== DEFAULT_SORT;
    const offered = (library || set) && view === 'search';  // the duplicates view lists every group, unfiltered
    ui.filters.hidden = !offered;
    ui.sortField.hidden = !offered;
    ui.nav.hidden = !library && view !== 'duplicates';
    const count = activeFilters().length;
    ui.filtersActive.textContent = count ? '(' + count + ' on)' : '';
    ui.filtersClear.hidden = count === 0;
    const applies = !current || photoResultsFor(current);
    for (const filter of FILTERS) ui[filter.input].disabled = !applies;
    ui.sort.disabled = !applies;
    ui.filtersNote.classList.toggle('not-applied', !applies);
    ui.filtersNote.textContent = applies
      ? 'Filters and order apply to photo results: the day each photo was taken (from the camera, else the file), ' +
        'its folder, camera and GPS location.'
      : 'Filters and order apply to photo results; this search shows captions.';
  }

  // Marks the control of a refused request field (aria-invalid), or none.
  function markInvalid(field) {
    for (const filter of FILTERS) {
      if (filter.field === field) ui[filter.input].setAttribute('aria-invalid', 'true');
      else ui[filter.input].removeAttribute('aria-invalid');
    }
    if (field === 'sort') ui.sort.setAttribute('aria-invalid', 'true');
    else ui.sort.removeAttribute('aria-invalid');
  }

  // The folders seen in results (and their parents), offered while typing a folder.
  const folders = new Set();
  function learnFolders(matches) {
    let added = false;
    for (const match of matches) {
      const folder = match.metadata && match.metadata.folder;
      if (!folder) continue;
      const parts = folder.split('/');
      for (let i = 1; i <= parts.length; i += 1) {
        const prefix = parts.slice(0, i).join('/');
        if (!folders.has(prefix)) {
          folders.add(prefix);
          added = true;
        }
      }
    }
    if (added) {
      ui.folderList.replaceChildren(...[...folders].sort().map((folder) => new Option(folder, folder)));
    }
  }

  // Does the collection hold photos with metadata? A search for anything taken before the year 9999 answers: photos
  // without metadata pass no filter. Asked once, at the start.
  async function detectLibrary() {
    try {
      const response = await fetch('/search', {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ text: 'a photo', limit: 1, modality: 'image', mode: 'semantic',
                               taken_before: '9999-12-31' }),
      });
      const body = response.ok ? await response.json() : null;
      library = Boolean(body && Array.isArray(body.matches) && body.matches.length > 0);
      if (library) learnFolders(body.matches);
    } catch (error) {
      library = false;
    }
    showFilters();
  }

  function urlFor(query) {
    const params = new URLSearchParams();
    if (query && query.kind === 'text') params.set('q', query.value);
    if (query && query.kind === 'image_id') params.set('image', query.value);
    for (const part of steering) {
      if (part.source === 'not') params.append('not', part.value);
      else params.append(part.sign, (part.kind === 'image_id' ? 'photo:' : 'text:') + part.value);
    }
    if (Number(ui.limit.value) !== DEFAULT_LIMIT) params.set('limit', ui.limit.value);
    if (ui.modality.value) params.set('modality', ui.modality.value);
    if (ui.mode.value !== DEFAULT_MODE) params.set('mode', ui.mode.value);
    const values = filterValues();
    for (const filter of FILTERS) if (values[filter.param]) params.set(filter.param, values[filter.param]);
    if (ui.sort.value !== DEFAULT_SORT) params.set('sort', ui.sort.value);
    if (!query && view === 'duplicates') params.set('view', 'duplicates');
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
    const filter = FILTERS.find((known) => known.field === refusedField(status, message));
    if (filter) {
      return 'The filter \u201c' + filter.label + '\u201d was refused: ' +
             message.replace(/^invalid request: /, '').replace(new RegExp('^\'?' + filter.field + '\'?: ?'), '') + '.';
    }
    return 'The search failed: ' + message;
  }

  // The request field a 400 / 422 answer names first ("'folder': must be ...", "invalid request: camera: ..."); null
  // when it names none.
  function refusedField(status, message) {
    if (status !== 400 && status !== 422) return null;
    const found = message.match(/^(?:invalid request: )?'?([a-z_]+)'?:/);
    return found ? found[1] : null;
  }

  // --- searching ------------------------------------------------------------------------------------------------

  function readAsDataUrl(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error || new Error('the photo could not be read'));
      reader.readAsDataURL(file);
    });
  }

  function partBody(part) {
    return part.kind === 'image_id' ? { image_id: part.value } : { text: part.value };
  }

  // A photo of your own goes as a file upload, unless the search is steered: plus and minus are JSON only, so the
  // photo then goes as a data URI.
  async function requestFor(query, limit, modality, mode, parts, signal, fields) {
    if (query.kind === 'upload' && parts.length === 0) {
      const form = new FormData();
      form.append('image', query.file, query.name);
      form.append('limit', String(limit));
      if (modality) form.append('modality', modality);
      form.append('mode', mode);
      for (const [key, value] of Object.entries(fields)) form.append(key, String(value));
      return { method: 'POST', body: form, signal };
    }
    const body = { limit, mode, ...fields };
    if (query.kind === 'upload') body.image = await readAsDataUrl(query.file);
    else body[query.kind === 'text' ? 'text' : 'image_id'] = query.value;
    const plus = parts.filter((part) => part.sign === 'plus').map(partBody);
    const minus = parts.filter((part) => part.sign === 'minus').map(partBody);
    if (plus.length) body.plus = plus;
    if (minus.length) body.minus = minus;
    if (modality) body.modality = modality;
    return { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), signal };
  }

  // history: 'push' (a new search), 'replace' (same search, other options) or null (from the URL itself)
  async function search(query, history) {
    current = query;
    showView('search');
    const request = {
      query, limit: Number(ui.limit.value), modality: ui.modality.value, mode: ui.mode.value,
      parts: steering.slice(), fields: photoResultsFor(query) ? filterFields() : {},
    };
    if (history === 'push') window.history.pushState(null, '', urlFor(query));
    else if (history === 'replace') window.history.replaceState(null, '', urlFor(query));
    ui.sample.hidden = true;
    showQuery(query);
    showSteering();
    showFilters();
    clearError();
    markInvalid(null);
    paging = null;
    ui.more.hidden = true;
    ui.moreCount.hidden = true;
    setStatus('Searching\u2026', true);
    ui.results.setAttribute('aria-busy', 'true');
    const body = await fetchPage(request, 0);
    if (body) render(body, request);
  }

  // One page of the request's answer (from `offset`); null, with the error shown, when there is none. An answer to
  // a search that is no longer the current one is dropped (null).
  async function fetchPage(request, offset) {
    if (controller) controller.abort();
    controller = new AbortController();
    const mine = ++sequence;
    const fields = offset ? { ...request.fields, offset } : request.fields;
    let response;
    let body = null;
    try {
      response = await fetch('/search', await requestFor(request.query, request.limit, request.modality, request.mode,
                                                         request.parts, controller.signal, fields));
      body = await response.json().catch(() => null);
    } catch (error) {
      if (error.name === 'AbortError' || mine !== sequence) return null;
      showError('Cannot reach the search server. Is it running? (' + error.message + ')');
      return null;
    }
    if (mine !== sequence) return null;
    ui.results.removeAttribute('aria-busy');
    if (!response.ok || !body || !Array.isArray(body.matches)) {
      markInvalid(refusedField(response.status, (body && body.error && body.error.message) || ''));
      showError(describeFailure(response.status, body, request.query));
      return null;
    }
    return body;
  }

  function sameQuery(a, b) {
    return Boolean(a && b && a.kind === b.kind && (a.kind === 'upload' ? a.file === b.file : a.value === b.value));
  }

  // A new query drops the "more/less like this" steering of the previous one; the "not" terms stay.
  function newQuery(query) {
    if (!sameQuery(query, current)) steering = steering.filter((part) => part.source === 'not');
    search(query, 'push');
  }

  function searchText(text) {
    const value = text.trim();
    if (!value) {
      showError('Type a description of a photo first, e.g. \u201ca cup of coffee\u201d.');
      ui.q.focus();
      return;
    }
    newQuery({ kind: 'text', value });
  }

  function searchIndexedPhoto(id) {
    ui.q.value = '';
    newQuery({ kind: 'image_id', value: id });
  }

  // --- steering: "not" terms, more / less like this -------------------------------------------------------------

  function partKey(part) {
    return part.kind + ':' + part.value;
  }

  function uniqueParts(parts) {
    const seen = new Map();
    for (const part of parts) seen.set(partKey(part), part);  // the last word on a part wins
    return [...seen.values()];
  }

  // Adds a part (moving it from the other side if it was there); false, with a message, when a side is full.
  function addPart(part) {
    const others = steering.filter((existing) => partKey(existing) !== partKey(part));
    if (others.filter((existing) => existing.sign === part.sign).length >= MAX_PARTS) {
      showError('A search can be steered by at most ' + MAX_PARTS + ' parts each way; remove one of the chips first.');
      return false;
    }
    steering = [...others, part];
    return true;
  }

  function steer() {
    showSteering();
    if (current) search(current, 'push');
    else if (ui.q.value.trim()) searchText(ui.q.value);
    else window.history.replaceState(null, '', urlFor(null));
  }

  function addNotTerm() {
    const value = ui.not.value.trim();
    if (!value) {
      ui.not.focus();
      return;
    }
    if (!addPart({ sign: 'minus', kind: 'text', value, source: 'not' })) return;
    ui.not.value = '';
    steer();
  }

  function steerByResult(sign, part) {
    if (!addPart({ sign, kind: part.kind, value: part.value, source: 'result' })) return;
    steer();
    ui.steering.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  }

  function removePart(key) {
    steering = steering.filter((part) => partKey(part) !== key);
    steer();
  }

  function partLabel(part) {
    if (part.kind === 'image_id') {
      const info = photos.get(part.value);
      return 'photo ' + (info && info.name ? info.name : part.value);
    }
    return part.source === 'not' ? part.value : '\u201c' + part.value + '\u201d';
  }

  function chip(part) {
    const item = document.createElement('li');
    item.className = 'chip ' + part.sign + (part.source === 'not' ? ' not-term' : '');
    item.dataset.key = partKey(part);
    const sign = part.sign === 'plus' ? '+' : '\u2212';
    const words = partLabel(part);
    item.title = (part.sign === 'plus' ? 'More like ' : part.source === 'not' ? 'Not about ' : 'Less like ') + words;
    if (part.kind === 'image_id') {
      const img = document.createElement('img');
      img.src = '/images/' + encodeURIComponent(part.value) + '?size=64';
      img.alt = '';
      img.width = 24;
      img.height = 24;
      item.append(img);
    }
    const text = document.createElement('span');
    text.className = 'chip-text';
    text.textContent = sign + ' ' + words;
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.className = 'chip-remove';
    remove.textContent = '\u00d7';
    remove.setAttribute('aria-label', 'Remove \u201c' + sign + ' ' + words + '\u201d');
    remove.title = 'Remove';
    item.append(text, remove);
    return item;
  }

  function showSteering() {
    ui.chips.replaceChildren(...steering.map(chip));
    ui.steering.hidden = steering.length === 0;
    // a photo chip from the address names its photo once the page knows the file name
    const unknown = steering.filter((part) => part.kind === 'image_id' && !photos.has(part.value));
    for (const part of unknown) {
      lookUpPhoto(part.value).then((info) => {
        const shown = ui.chips.querySelector('.chip[data-key="' + CSS.escape(partKey(part)) + '"]');
        if (info && shown) shown.replaceWith(chip(part));
      });
    }
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

  // An indexed photo's file name and first caption, from what the page was told already or from /documents/{id};
  // null when it cannot be had (the search itself says what is wrong).
  const lookups = new Map();
  function lookUpPhoto(id) {
    if (photos.has(id)) return Promise.resolve(photos.get(id));
    if (!lookups.has(id)) {
      lookups.set(id, (async () => {
        try {
          const response = await fetch('/documents/' + encodeURIComponent(id));
          if (!response.ok) return null;
          const document_ = await response.json();
          const info = {
            name: fileName(document_.tags, id),
            caption: document_.captions && document_.captions.length ? document_.captions[0].text : null,
          };
          photos.set(id, info);
          return info;
        } catch (error) {
          return null;
        } finally {
          lookups.delete(id);
        }
      })());
    }
    return lookups.get(id);
  }

  async function describeIndexedPhoto(query) {
    const known = photos.get(query.value);
    showPhotoInfo(known);
    if (known) return;
    const info = await lookUpPhoto(query.value);
    if (info && current === query) showPhotoInfo(info);
  }

  function fileName(tags, fallback) {
    const pairId = (tags && tags.pair_id) || fallback || '';
    return pairId.split('/').pop();
  }

  function hasRelevance(match) {
    return typeof match.relevance === 'number';
  }

  function percent(relevance) {
    return Math.round(Math.max(0, Math.min(1, relevance)) * 100) + '%';
  }

  // The rank, the relevance (a label and a bar) when the server has a calibration, and the cosine score.
  function metaLine(match, rank) {
    const meta = document.createElement('p');
    meta.className = 'meta';
    const rankLabel = document.createElement('span');
    rankLabel.className = 'rank';
    rankLabel.textContent = '#' + rank;
    meta.append(rankLabel);
    const calibrated = hasRelevance(match);
    if (calibrated) {
      const relevance = document.createElement('span');
      relevance.className = 'relevance';
      relevance.textContent = 'relevance ' + percent(match.relevance);
      relevance.title = 'the estimated chance that this result fits the query';
      meta.append(relevance);
    }
    const bar = document.createElement('span');
    bar.className = 'bar';
    bar.setAttribute('aria-hidden', 'true');
    const fill = document.createElement('span');
    fill.style.width = Math.max(0, Math.min(1, calibrated ? match.relevance : match.score)) * 100 + '%';
    bar.append(fill);
    const value = document.createElement('span');
    value.className = 'score';
    value.textContent = match.score.toFixed(3);
    value.title = 'cosine similarity to the query (higher is closer)';
    meta.append(bar, value);
    return meta;
  }

  function escapeRegExp(text) {
    return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }

  // Fills `element` with `text`, the matched keywords (and the words they start) marked; returns whether any was.
  function highlight(element, text, keywords) {
    const words = (keywords || []).filter((word) => word && word.trim()).map((word) => escapeRegExp(word.trim()));
    if (!words.length || !text) {
      element.textContent = text || '';
      return false;
    }
    const pattern = new RegExp('(^|[^\\p{L}\\p{N}])((?:' + words.join('|') + ')[\\p{L}\\p{N}]*)', 'giu');
    let last = 0;
    let found = false;
    const nodes = [];
    for (const hit of text.matchAll(pattern)) {
      const start = hit.index + hit[1].length;
      nodes.push(text.slice(last, start));
      const mark = document.createElement('mark');
      mark.textContent = hit[2];
      nodes.push(mark);
      last = start + hit[2].length;
      found = true;
    }
    nodes.push(text.slice(last));
    element.replaceChildren(...nodes);
    return found;
  }

  // Why a result matched: the caption nearest to the query (photos, when it is not the one shown) and the query's
  // words it was found by that no text on the card shows.
  function whyLines(match, shownTexts) {
    const lines = [];
    const why = match.why || {};
    const keywords = Array.isArray(why.keywords) ? why.keywords : [];
    const texts = shownTexts.slice();
    if (why.caption && !shownTexts.includes(why.caption)) {
      const line = document.createElement('p');
      line.className = 'why why-caption';
      const label = document.createElement('span');
      label.className = 'why-label';
      label.textContent = 'Closest caption: ';
      const quote = document.createElement('q');
      highlight(quote, why.caption, keywords);
      line.append(label, quote);
      lines.push(line);
      texts.push(why.caption);
    }
    const unseen = keywords.filter((word) => !texts.some((text) => text && text.toLowerCase().includes(word.toLowerCase())));
    if (unseen.length) {
      const line = document.createElement('p');
      line.className = 'why why-words';
      line.append('Words: ');
      unseen.forEach((word, i) => {
        const mark = document.createElement('mark');
        mark.textContent = word;
        line.append(...(i ? [' ', mark] : [mark]));
      });
      line.title = 'words of the query found in this result\u2019s captions, file or folder name';
      lines.push(line);
    }
    return lines;
  }

  // "[+ More] [- Less] like this": the result added to the query's plus or minus parts, and searched again.
  function steerButtons(part, what) {
    const row = document.createElement('div');
    row.className = 'steer-row';
    for (const [sign, text, css] of [['plus', 'More', 'steer-more'], ['minus', 'Less', 'steer-less']]) {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'steer ' + css;
      button.dataset.sign = sign;
      button.dataset.kind = part.kind;
      button.dataset.value = part.value;
      button.textContent = text;
      button.title = 'Search again with ' + text.toLowerCase() + ' like ' + what;
      button.setAttribute('aria-label', text + ' like this: ' + what);
      row.append(button);
    }
    const tail = document.createElement('span');
    tail.className = 'steer-tail';
    tail.setAttribute('aria-hidden', 'true');
    tail.textContent = 'like this';
    row.append(tail);
    return row;
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

  function relevanceWords(match) {
    return hasRelevance(match) ? ', relevance ' + percent(match.relevance) : '';
  }

  function photoCard(match, rank, weak) {
    const item = document.createElement('li');
    item.className = 'card' + (weak ? ' weak' : '');
    item.dataset.id = match.id;
    const metadata = match.metadata || null;
    const name = metadata && metadata.path ? metadata.path.split('/').pop() : fileName(match.tags, match.id);
    const caption = match.caption || '';
    const keywords = match.why && match.why.keywords;
    photos.set(match.id, { name, caption: caption || null });
    item.append(thumbButton(match.id, 256, (caption ? caption + ' (' + name + ')' : 'Photo ' + name) +
                                           relevanceWords(match) + ', score ' + match.score.toFixed(3) +
                                           ': search with this photo'));
    const body = document.createElement('div');
    body.className = 'card-body';
    const what = document.createElement('p');
    what.className = caption ? 'photo-caption' : 'photo-caption no-caption';
    highlight(what, caption || name, keywords);
    body.append(metaLine(match, rank), what);
    if (caption) {
      const label = document.createElement('p');
      label.className = 'label';
      highlight(label, name, keywords);
      body.append(label);
    }
    if (metadata) body.append(photoInfo(metadata, keywords));
    if (match.duplicates > 0) body.append(similarBadge(match.duplicates));
    body.append(...whyLines(match, [caption, name, metadata && metadata.path]), steerButtons({ kind: 'image_id', value: match.id }, 'photo ' + name));
    item.append(body);
    return item;
  }

  // "14 Jul 2023" from an ISO time, read as the photo's own clock (no time zone is applied).
  function formatTaken(taken) {
    const found = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}))?/.exec(taken || '');
    if (!found) return taken || '';
    const date = new Date(Date.UTC(Number(found[1]), Number(found[2]) - 1, Number(found[3])));
    return date.toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric', timeZone: 'UTC' });
  }

  // A library photo's date and path: "14 Jul 2023 · 2023/summer/coffee.jpg"; camera, place and copies in its title.
  function photoInfo(metadata, keywords) {
    const line = document.createElement('p');
    line.className = 'photo-info';
    if (metadata.taken) {
      const time = document.createElement('time');
      time.className = 'taken';
      time.dateTime = metadata.taken;
      time.textContent = formatTaken(metadata.taken);
      time.title = 'taken ' + metadata.taken.replace('T', ' ') +
                   (metadata.taken_source === 'mtime' ? ' (the file\u2019s date: the photo has no camera date)' : '');
      line.append(time);
    }
    if (metadata.path) {
      const path = document.createElement('span');
      path.className = 'path';
      highlight(path, metadata.path, keywords);
      if (line.childNodes.length) line.append(' \u00b7 ');
      line.append(path);
    }
    const copies = (metadata.paths || []).length - 1;
    if (copies > 0) line.append(' (+' + plural(copies, 'copy', 'copies') + ')');
    const details = [];
    if (metadata.camera) details.push('camera: ' + metadata.camera);
    if (typeof metadata.lat === 'number' && typeof metadata.lon === 'number') {
      details.push('place: ' + metadata.lat.toFixed(4) + ', ' + metadata.lon.toFixed(4));
    }
    if (copies > 0) details.push('also at: ' + metadata.paths.filter((path) => path !== metadata.path).join(', '));
    if (details.length) line.title = details.join('\n');
    return line;
  }

  // "3 similar": near-duplicates of this photo folded into it by the search (they are listed under Duplicates).
  function similarBadge(count) {
    const badge = document.createElement('a');
    badge.className = 'similar-badge';
    badge.href = '/?view=duplicates';
    badge.textContent = count + ' similar';
    badge.title = plural(count, 'near-duplicate photo', 'near-duplicate photos') +
                  ' of this one, shown once; see them all under Duplicates';
    return badge;
  }

  function captionCard(match, rank, weak) {
    const item = document.createElement('li');
    item.className = 'caption-card' + (weak ? ' weak' : '');
    item.dataset.id = match.id;
    const imageId = match.tags && match.tags.image_id;
    const name = fileName(match.tags, imageId);
    const keywords = match.why && match.why.keywords;
    if (imageId) {
      item.append(thumbButton(imageId, 128, 'Photo ' + name + ' of this caption: search with this photo'));
    }
    const body = document.createElement('div');
    body.className = 'caption-body';
    const text = document.createElement('p');
    text.className = 'caption-text';
    highlight(text, match.text || '', keywords);
    const label = document.createElement('p');
    label.className = 'label';
    highlight(label, name, keywords);
    body.append(text, metaLine(match, rank), label, ...whyLines(match, [match.text, name]));
    if (match.text) body.append(steerButtons({ kind: 'text', value: match.text }, 'this caption'));
    item.append(body);
    return item;
  }

  function dividerText(count, photoResults) {
    return 'Weak matches (relevance below ' + percent(WEAK_BELOW) + '): ' +
           plural(count, photoResults ? 'photo' : 'caption', photoResults ? 'photos' : 'captions');
  }

  function divider(count, photoResults) {
    const item = document.createElement('li');
    item.className = 'weak-divider';
    item.setAttribute('role', 'separator');
    item.textContent = dividerText(count, photoResults);
    return item;
  }

  // Shows the first page of an answer (`request` is what was asked), or appends a next page (`append`): its cards
  // continue the ranks, a photo already shown is not shown again, and weak matches stay after the divider.
  function render(body, request, append) {
    const query = request.query;
    const parts = request.parts;
    const photoResults = body.modality === 'image';
    const byDate = request.fields.sort === 'taken';
    const hadFocus = ui.list.contains(document.activeElement);
    if (!append) {
      paging = { request, shown: new Set(), strong: 0, weak: 0, divider: null, photoResults, byDate };
      ui.list.className = 'result-list ' + (photoResults ? 'photos' : 'captions');
      ui.list.replaceChildren();
    }
    const matches = body.matches.filter((match) => !paging.shown.has(match.id));
    matches.forEach((match) => paging.shown.add(match.id));
    if (photoResults) learnFolders(matches);
    // The good matches first, then the weak ones, each group in the server's order (newest first: the server's
    // order alone).
    const isWeak = (match) => hasRelevance(match) && match.relevance < WEAK_BELOW;
    const strong = byDate ? matches : matches.filter((match) => !isWeak(match));
    const weak = byDate ? [] : matches.filter(isWeak);
    const card = photoResults ? photoCard : captionCard;
    const rank = paging.strong + paging.weak;
    const strongCards = strong.map((match, i) => card(match, rank + i + 1, byDate && isWeak(match)));
    const weakCards = weak.map((match, i) => card(match, rank + strong.length + i + 1, true));
    const anchor = paging.divider || (byDate ? null : ui.list.querySelector('li.weak'));
    if (anchor) anchor.before(...strongCards);
    else ui.list.append(...strongCards);
    paging.strong += strong.length;
    paging.weak += weak.length;
    if (paging.weak && paging.strong && !paging.divider) {
      paging.divider = divider(0, photoResults);
      const firstWeak = ui.list.querySelector('li.weak');
      if (firstWeak) firstWeak.before(paging.divider);
      else ui.list.append(paging.divider);
    }
    ui.list.append(...weakCards);
    if (paging.divider) paging.divider.textContent = dividerText(paging.weak, photoResults);
    paging.next = typeof body.next_offset === 'number' ? body.next_offset : null;
    paging.total = typeof body.total === 'number' ? body.total : null;
    showSteering();  // photo chips now know their file names
    const shown = paging.strong + paging.weak;
    const what = photoResults ? plural(shown, 'photo', 'photos') : plural(shown, 'caption', 'captions');
    const filtered = Object.keys(request.fields).some((key) => key !== 'sort');
    const about = (query.kind === 'text' ? ' for \u201c' + query.value + '\u201d' : ' for this photo') +
                  (parts.length ? ' (steered)' : '') + (filtered ? ' (filtered)' : '');
    if (!append) showWhatAPhotoFinds(query, photoResults, body.note);
    const noGoodMatch = body.no_good_match === true && shown > 0 && !byDate;
    ui.noGoodMatch.hidden = !noGoodMatch;
    if (noGoodMatch) {
      ui.noGoodMatchText.textContent = 'Nothing in the collection fits' +
        (query.kind === 'text' ? ' \u201c' + query.value + '\u201d' : ' this photo') + ' well. The closest ' +
        (photoResults ? 'photos' : 'captions') + ' are shown below, dimmed' +
        (query.kind === 'text' ? '; try other words.' : '.');
    }
    const relevanceNote = 'Relevance is the estimated chance that a result fits.';
    if (shown === 0) {
      let why = body.mode === 'keyword' ? ' Try \u201cmeaning\u201d instead of \u201cwords\u201d.'
                                        : ' Is anything indexed?';
      if (byDate) why = ' Newest first shows only the photos that fit the search; try \u201cbest match\u201d.';
      else if (filtered) why = ' No photo passes the filters; widen or clear them.';
      setStatus('No ' + (photoResults ? 'photos' : 'captions') + ' found' + about + '.' + why);
    } else if (byDate) {
      setStatus(what + about + ', newest first.', false, 'The photos that fit the search, by the day they were taken.');
    } else if (paging.strong && paging.weak) {
      setStatus(what + about + ': ' + plural(paging.strong, 'good match', 'good matches') + ', then ' +
                paging.weak + ' weak.', false, relevanceNote);
    } else if (paging.weak) {
      setStatus(what + about + ', all weak matches.', false, relevanceNote);
    } else if (body.matches.some(hasRelevance)) {
      setStatus(what + about + ', best first.', false, relevanceNote);
    } else {
      setStatus(what + about + ', best first.', false, 'Scores are cosine similarities (higher is closer).');
    }
    ui.more.hidden = paging.next === null;
    ui.more.disabled = false;
    ui.more.textContent = 'More results';
    const total = paging.total !== null && paging.total >= shown ? paging.total : null;
    ui.moreCount.hidden = !(shown && total !== null && (paging.next !== null || append));
    ui.moreCount.textContent = total !== null ? 'Showing ' + shown + ' of ' + total : '';
    if (hadFocus && !append) ui.results.focus({ preventScroll: true });
    return matches.length;
  }

  // A photo query says what it found (captions that describe it, or the photos like it) and offers the other,
  // where the collection has it: a photo folder without captions has only photos.
  function showWhatAPhotoFinds(query, photoResults, note) {
    ui.queryShows.hidden = query.kind === 'text';
    if (ui.queryShows.hidden) return;
    ui.queryShowsText.textContent = note ? 'No captions are indexed here, so these are the photos most like it.'
      : photoResults ? 'These are the photos most like it.' : 'These are the captions that describe it.';
    const other = photoResults ? 'text' : 'image';
    ui.queryOther.hidden = other === 'text' && !captionCount;
    ui.queryOther.textContent = other === 'text' ? 'Show captions instead' : 'Show photos like it instead';
    ui.queryOther.dataset.modality = other;
  }

  // "More results": the next page of the same search, appended; focus goes to its first result.
  async function showMore() {
    if (!current || !paging || paging.next === null || ui.more.disabled) return;
    const state = paging;
    const before = state.strong + state.weak;
    ui.more.disabled = true;
    ui.more.textContent = 'Loading more\u2026';
    ui.results.setAttribute('aria-busy', 'true');
    const body = await fetchPage(state.request, state.next);
    if (paging !== state) return;  // another search started meanwhile
    ui.more.disabled = false;
    ui.more.textContent = 'More results';
    if (!body) return;
    const added = render(body, state.request, true);
    if (!added && paging.next !== null && body.matches.length) {  // a page of repeats only: ask for the next one
      showMore();
      return;
    }
    const target = ui.list.querySelectorAll('li[data-id]')[before];
    const button = target && target.querySelector('button');
    if (button) button.focus();
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
    const badge = event.target.closest('a.similar-badge');
    if (badge && !event.ctrlKey && !event.metaKey && !event.shiftKey) {
      event.preventDefault();
      openDuplicates('push');
      return;
    }
    const steerButton = event.target.closest('button.steer');
    if (steerButton) {
      steerByResult(steerButton.dataset.sign, { kind: steerButton.dataset.kind, value: steerButton.dataset.value });
      return;
    }
    const button = event.target.closest('button.thumb');
    if (button && button.dataset.imageId) {
      searchIndexedPhoto(button.dataset.imageId);
      window.scrollTo({ top: 0, behavior: 'smooth' });
    }
  });

  ui.notAdd.addEventListener('click', addNotTerm);
  ui.not.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      event.preventDefault();  // not the search form's submit
      addNotTerm();
    }
  });
  ui.chips.addEventListener('click', (event) => {
    const button = event.target.closest('button.chip-remove');
    if (button) removePart(button.closest('.chip').dataset.key);
  });
  ui.steeringClear.addEventListener('click', () => {
    steering = [];
    steer();
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
  ui.modality.addEventListener('change', () => {
    showFilters();
    rerunWithOptions();
  });
  ui.mode.addEventListener('change', rerunWithOptions);
  ui.queryOther.addEventListener('click', () => {
    ui.modality.value = ui.queryOther.dataset.modality;
    showFilters();
    rerunWithOptions();
  });

  // Filters and the order: a change searches again (a typed folder or camera on Enter or on leaving the box).
  function applyFilters() {
    showFilters();
    if (current && urlFor(current) === location.pathname + location.search && !ui.error.textContent) return;
    rerunWithOptions();
  }
  for (const filter of FILTERS) {
    const input = ui[filter.input];
    if (input.type === 'date') {
      // Typing a year fires a change at each digit (0002, 0020, 0202, 2024): a year below 1000 waits for the rest,
      // or for the box to be left.
      input.addEventListener('change', () => {
        if (!/^0/.test(input.value)) applyFilters();
      });
      input.addEventListener('blur', applyFilters);
      continue;
    }
    input.addEventListener('change', applyFilters);
    if (input.tagName === 'INPUT' && input.type === 'text') {
      input.addEventListener('keydown', (event) => {
        if (event.key === 'Enter') {
          event.preventDefault();
          applyFilters();
        }
      });
    }
  }
  ui.sort.addEventListener('change', applyFilters);
  ui.filtersClear.addEventListener('click', () => {
    for (const filter of FILTERS) ui[filter.input].value = '';
    markInvalid(null);
    applyFilters();
  });

  ui.navDuplicates.addEventListener('click', (event) => {
    if (event.ctrlKey || event.metaKey || event.shiftKey) return;  // a new tab or window: the browser's way
    event.preventDefault();
    openDuplicates('push');
  });
  ui.duplicatesMore.addEventListener('click', () => loadDuplicates(duplicatesPage && duplicatesPage.next));

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
    applyState(state);
    if (state.query) search(state.query, null);
    else if (state.view === 'duplicates') openDuplicates(null);
    else showHome();
  });

  // --- the duplicates view (?view=duplicates): groups of near-duplicate photos, GET /duplicates -------------------

  let duplicatesPage = null;  // {next: the next page's offset or null, request: sequence number}

  function showView(name) {
    view = name;
    const duplicates = name === 'duplicates';
    ui.duplicates.hidden = !duplicates;
    ui.results.hidden = duplicates;
    if (duplicates) ui.navDuplicates.setAttribute('aria-current', 'page');
    else ui.navDuplicates.removeAttribute('aria-current');
    if (duplicates) ui.navSearch.removeAttribute('aria-current');
    else ui.navSearch.setAttribute('aria-current', 'page');
    ui.nav.hidden = !library && !duplicates;
  }

  function openDuplicates(history) {
    current = null;
    sequence += 1;
    if (controller) controller.abort();
    paging = null;
    showView('duplicates');
    if (history === 'push') window.history.pushState(null, '', urlFor(null));
    ui.q.value = '';
    ui.query.hidden = true;
    ui.sample.hidden = true;
    ui.list.replaceChildren();
    ui.more.hidden = true;
    ui.moreCount.hidden = true;
    ui.noGoodMatch.hidden = true;
    setStatus('');
    clearError();
    showFilters();
    ui.duplicateGroups.replaceChildren();
    duplicatesPage = null;
    loadDuplicates(0);
    if (history === 'push') ui.duplicates.focus({ preventScroll: true });
  }

  function duplicateMember(member, index) {
    const item = document.createElement('li');
    item.className = 'duplicate-member';
    item.dataset.id = member.id;
    const metadata = member.metadata || {};
    const name = metadata.path || fileName(member.tags, member.id);
    const link = document.createElement('a');
    link.className = 'member-photo';
    link.href = member.uri || member.image_url || '/images/' + encodeURIComponent(member.id);
    link.target = '_blank';
    link.rel = 'noopener';
    link.title = 'Open this photo';
    link.setAttribute('aria-label', 'Open ' + name + (index === 0 ? ' (the best of the group)' : ''));
    const img = document.createElement('img');
    img.src = '/images/' + encodeURIComponent(member.id) + '?size=256';
    img.alt = '';
    img.loading = 'lazy';
    img.decoding = 'async';
    link.append(img);
    const path = document.createElement('p');
    path.className = 'member-path';
    path.textContent = name;
    item.append(link, path);
    const details = [];
    if (metadata.taken) details.push(formatTaken(metadata.taken));
    if (metadata.width && metadata.height) details.push(metadata.width + '\u00d7' + metadata.height);
    if (metadata.size_bytes) details.push(formatBytes(metadata.size_bytes));
    if (details.length) {
      const line = document.createElement('p');
      line.className = 'member-details';
      line.textContent = details.join(' \u00b7 ');
      item.append(line);
    }
    const similarity = document.createElement('p');
    similarity.className = 'member-similarity';
    if (index === 0) {
      similarity.textContent = 'best of the group';
      similarity.title = 'the most pixels, then the most bytes';
    } else if (typeof member.similarity === 'number') {
      // rounded down: a copy that is not the same photo never reads 1.0000
      similarity.textContent = 'similarity ' + (Math.floor(member.similarity * 1e4) / 1e4).toFixed(4);
      similarity.title = 'cosine similarity to the best of the group';
    }
    if (similarity.textContent) item.append(similarity);
    return item;
  }

  function duplicateGroup(group) {
    const item = document.createElement('li');
    item.className = 'duplicate-group';
    item.dataset.id = group.id;
    const members = Array.isArray(group.members) ? group.members : [];
    const size = group.size || members.length;
    const heading = document.createElement('h3');
    heading.className = 'group-title';
    heading.id = 'group-' + group.id;
    const first = members[0] && members[0].metadata && members[0].metadata.path;
    heading.textContent = plural(size, 'photo', 'photos') + (first ? ' like ' + first.split('/').pop() : '');
    const list = document.createElement('ul');
    list.className = 'duplicate-members';
    list.setAttribute('aria-labelledby', heading.id);
    list.append(...members.map(duplicateMember));
    item.append(heading, list);
    return item;
  }

  async function loadDuplicates(offset) {
    if (offset === null || offset === undefined) return;
    const mine = sequence;
    ui.duplicatesMore.disabled = true;
    ui.duplicates.setAttribute('aria-busy', 'true');
    if (!offset) ui.duplicatesStatus.textContent = 'Looking for duplicates\u2026';
    let response;
    let body = null;
    try {
      response = await fetch('/duplicates?limit=' + DUPLICATE_GROUPS + '&offset=' + offset);
      body = await response.json().catch(() => null);
    } catch (error) {
      if (mine !== sequence) return;
      ui.duplicates.removeAttribute('aria-busy');
      ui.duplicatesStatus.textContent = '';
      showError('Cannot reach the search server. Is it running? (' + error.message + ')');
      return;
    }
    if (mine !== sequence || view !== 'duplicates') return;
    ui.duplicates.removeAttribute('aria-busy');
    ui.duplicatesMore.disabled = false;
    if (!response.ok || !body || !Array.isArray(body.groups)) {
      ui.duplicatesStatus.textContent = '';
      ui.duplicatesMore.hidden = true;
      const message = body && body.error && body.error.message ? body.error.message : 'HTTP ' + response.status;
      showError(response.status === 404 && !(body && body.error && /duplicat/.test(body.error.message))
        ? 'This server does not list duplicates (GET /duplicates: ' + message + ').'
        : 'The duplicates could not be listed: ' + message);
      return;
    }
    const before = ui.duplicateGroups.children.length;
    const known = new Set([...ui.duplicateGroups.children].map((group) => group.dataset.id));
    ui.duplicateGroups.append(...body.groups.filter((group) => !known.has(group.id)).map(duplicateGroup));
    duplicatesPage = { next: typeof body.next_offset === 'number' ? body.next_offset : null };
    ui.duplicatesMore.hidden = duplicatesPage.next === null;
    const shown = ui.duplicateGroups.children.length;
    // A pair is a near-duplicate by its similarity alone (the threshold) or by matching pixel fingerprints.
    const threshold = typeof body.threshold === 'number'
      ? ' (similarity at least ' + body.threshold + ', or the same picture by its pixel fingerprint)' : '';
    const total = typeof body.total === 'number' ? body.total : shown;
    ui.duplicatesStatus.textContent = total === 0
      ? 'No near-duplicates in the collection' + threshold + '.'
      : (shown < total ? shown + ' of ' : '') + plural(total, 'group', 'groups') + ' of near-duplicate photos' +
        threshold + '.';
    if (offset && shown > before) {
      const link = ui.duplicateGroups.children[before].querySelector('a');
      if (link) link.focus();
    }
  }

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
    captionCount = stats.captions;
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
    if (mine !== sampleRequest || current || view !== 'search') return;  // a search or a view started meanwhile
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
    paging = null;
    showView('search');
    showFilters();
    sequence += 1;
    if (controller) controller.abort();
    ui.q.value = '';
    ui.query.hidden = true;
    ui.list.replaceChildren();
    ui.noGoodMatch.hidden = true;
    ui.more.hidden = true;
    ui.moreCount.hidden = true;
    ui.results.removeAttribute('aria-busy');
    setStatus('');
    clearError();
    loadSample();
  }

  async function start() {
    const state = readUrl();
    applyState(state);
    const ready = await loadStats();
    setLimit(state.limit);
    ui.filters.open = window.matchMedia('(min-width: 601px)').matches || activeFilters().length > 0;
    if (ready) detectLibrary();
    if (state.query) {
      search(state.query, null);
    } else if (state.view === 'duplicates') {
      openDuplicates(null);
    } else {
      if (ready) loadSample();
      // Not on a touch screen: there, focus would open the keyboard over the sample.
      if (window.matchMedia('(pointer: fine)').matches) ui.q.focus();
    }
  }

  start();
}());
