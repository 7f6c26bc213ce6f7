// Cross-modal search page: text -> photos, photo -> captions, over the gateway's JSON API (no framework, no build).
// A search can be steered: "not" terms and "less like this" results are subtracted from the query (`minus`),
// "more like this" results are added to it (`plus`); matches are shown with their calibrated relevance, weak ones
// (below 50%) after a divider, dimmed.
// A photo library (photos with metadata) adds filters (dates, folder, camera, place), an order (newest first), pages
// ("More results" asks for the next page by `next_offset` and appends it) and a duplicates view (?view=duplicates).
//
// This is the page's entry module (index.html loads it as <script type="module">): it only wires. The modules under
// js/ each own one concern, named in their header: api.js (the HTTP client), search.js (searching), results.js and
// cards.js (the results grid and its cards), filters.js (the library filter bar), duplicates.js (the duplicates
// view), url-state.js (the address bar), steering.js, upload.js, home.js, stats.js, query-header.js and helpers.

import { ui } from './js/dom.js';
import { openDuplicates, bindDuplicates } from './js/duplicates.js';
import { activeFilters, bindFilters, detectLibrary, showFilters } from './js/filters.js';
import { bindHome, loadSample, showHome } from './js/home.js';
import { applyFilters, rerunWithOptions, search, searchIndexedPhoto, searchText, showMore, steer } from './js/search.js';
import { loadStats } from './js/stats.js';
import { bindSteering, steerByResult } from './js/steering.js';
import { bindUpload } from './js/upload.js';
import { applyState, readUrl, setLimit } from './js/url-state.js';

// --- events ---------------------------------------------------------------------------------------------------------

ui.form.addEventListener('submit', (event) => {
  event.preventDefault();
  searchText(ui.q.value);
});

bindUpload();

// The results' clicks: a "similar" badge opens the duplicates view, More / Less like this steers, a photo searches.
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

bindSteering(steer);
ui.more.addEventListener('click', showMore);
bindHome();

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

bindFilters(applyFilters);
bindDuplicates();

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

// --- start ----------------------------------------------------------------------------------------------------------

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
