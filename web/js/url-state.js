// The address-bar state: ?q=<text> or ?image=<indexed photo id>, the options (limit, modality, mode), the steering
// (not=, plus=, minus=), the filters and order, and ?view=duplicates. Reads the address into a state, puts a state
// on the page's controls, and writes the address of what is shown. Owns the #limit choices.

import { DEFAULT_LIMIT, DEFAULT_MODE, DEFAULT_SORT, FILTERS, MODES, SORTS, server } from './config.js';
import { ui } from './dom.js';
import { filterValues, markInvalid, showFilters } from './filters.js';
import { page } from './state.js';
import { showSteering, uniqueParts } from './steering.js';

// Steering in the address: not=<text> (a "not" term), plus=/minus= photo:<id> or text:<caption> (more/less like
// this), each repeatable, in the order they were added.
export function readUrl() {
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
export function applyState(state) {
  setLimit(state.limit);
  ui.modality.value = state.modality;
  ui.mode.value = state.mode;
  page.steering = state.steering;
  for (const filter of FILTERS) ui[filter.input].value = state.filters[filter.param];
  ui.sort.value = state.sort;
  markInvalid(null);
  showSteering();
  showFilters();
}

// The address of `query` (or of no query) with the page's steering, options, filters and view.
export function urlFor(query) {
  const params = new URLSearchParams();
  if (query && query.kind === 'text') params.set('q', query.value);
  if (query && query.kind === 'image_id') params.set('image', query.value);
  for (const part of page.steering) {
    if (part.source === 'not') params.append('not', part.value);
    else params.append(part.sign, (part.kind === 'image_id' ? 'photo:' : 'text:') + part.value);
  }
  if (Number(ui.limit.value) !== DEFAULT_LIMIT) params.set('limit', ui.limit.value);
  if (ui.modality.value) params.set('modality', ui.modality.value);
  if (ui.mode.value !== DEFAULT_MODE) params.set('mode', ui.mode.value);
  const values = filterValues();
  for (const filter of FILTERS) if (values[filter.param]) params.set(filter.param, values[filter.param]);
  if (ui.sort.value !== DEFAULT_SORT) params.set('sort', ui.sort.value);
  if (!query && page.view === 'duplicates') params.set('view', 'duplicates');
  const search = params.toString();
  return location.pathname + (search ? '?' + search : '');
}

export function clampLimit(limit) {
  return Math.max(1, Math.min(limit, server.max_limit));
}

export function setLimit(limit) {
  const value = String(clampLimit(limit));
  if (![...ui.limit.options].some((option) => option.value === value)) {
    const option = new Option(value, value);
    ui.limit.add(option);
    [...ui.limit.options].sort((a, b) => a.value - b.value).forEach((o) => ui.limit.add(o));
  }
  ui.limit.value = value;
}
