// Searching: a query (text, an indexed photo or your own) with the page's options, steering and filters sent to
// POST /search, the answer shown (results.js) and the address kept (url-state.js); only the newest search's
// answer is shown. Also what searches again: steering, a changed option or filter, "More results".

import { postSearch } from './api.js';
import { ui } from './dom.js';
import { filterFields, markInvalid, photoResultsFor, showFilters } from './filters.js';
import { clearError, describeFailure, refusedField, setStatus, showError } from './messages.js';
import { showQuery } from './query-header.js';
import { render } from './results.js';
import { page } from './state.js';
import { showSteering } from './steering.js';
import { urlFor } from './url-state.js';
import { showView } from './views.js';

// history: 'push' (a new search), 'replace' (same search, other options) or null (from the URL itself)
export async function search(query, history) {
  page.current = query;
  showView('search');
  const request = {
    query, limit: Number(ui.limit.value), modality: ui.modality.value, mode: ui.mode.value,
    parts: page.steering.slice(), fields: photoResultsFor(query) ? filterFields() : {},
  };
  if (history === 'push') window.history.pushState(null, '', urlFor(query));
  else if (history === 'replace') window.history.replaceState(null, '', urlFor(query));
  ui.sample.hidden = true;
  showQuery(query);
  showSteering();
  showFilters();
  clearError();
  markInvalid(null);
  page.paging = null;
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
  if (page.controller) page.controller.abort();
  page.controller = new AbortController();
  const mine = ++page.sequence;
  const fields = offset ? { ...request.fields, offset } : request.fields;
  let response;
  let body = null;
  try {
    ({ response, body } = await postSearch(request, page.controller.signal, fields));
  } catch (error) {
    if (error.name === 'AbortError' || mine !== page.sequence) return null;
    showError('Cannot reach the search server. Is it running? (' + error.message + ')');
    return null;
  }
  if (mine !== page.sequence) return null;
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
  if (!sameQuery(query, page.current)) page.steering = page.steering.filter((part) => part.source === 'not');
  search(query, 'push');
}

export function searchText(text) {
  const value = text.trim();
  if (!value) {
    showError('Type a description of a photo first, e.g. \u201ca cup of coffee\u201d.');
    ui.q.focus();
    return;
  }
  newQuery({ kind: 'text', value });
}

export function searchIndexedPhoto(id) {
  ui.q.value = '';
  newQuery({ kind: 'image_id', value: id });
}

// The steering changed (steering.js): the same query again, or the typed one, or only the address.
export function steer() {
  showSteering();
  if (page.current) search(page.current, 'push');
  else if (ui.q.value.trim()) searchText(ui.q.value);
  else window.history.replaceState(null, '', urlFor(null));
}

export function rerunWithOptions() {
  if (page.current) search(page.current, 'replace');
  else window.history.replaceState(null, '', urlFor(null));
}

// Filters and the order changed (filters.js): search again unless the address already says so.
export function applyFilters() {
  showFilters();
  if (page.current && urlFor(page.current) === location.pathname + location.search && !ui.error.textContent) return;
  rerunWithOptions();
}

// "More results": the next page of the same search, appended; focus goes to its first result.
export async function showMore() {
  if (!page.current || !page.paging || page.paging.next === null || ui.more.disabled) return;
  const state = page.paging;
  const before = state.strong + state.weak;
  ui.more.disabled = true;
  ui.more.textContent = 'Loading more\u2026';
  ui.results.setAttribute('aria-busy', 'true');
  const body = await fetchPage(state.request, state.next);
  if (page.paging !== state) return;  // another search started meanwhile
  ui.more.disabled = false;
  ui.more.textContent = 'More results';
  if (!body) return;
  const added = render(body, state.request, true);
  if (!added && page.paging.next !== null && body.matches.length) {  // a page of repeats only: ask for the next one
    showMore();
    return;
  }
  const target = ui.list.querySelectorAll('li[data-id]')[before];
  const button = target && target.querySelector('button');
  if (button) button.focus();
}
