// The library filter bar and the order (photo libraries only): the filters' values and the request fields they
// fill, whether they apply to the search shown, the folders offered while typing one, the check at the start
// whether the collection is a library at all, and the bar's own events. Owns #filters and #sort.

import { probeLibrary } from './api.js';
import { DEFAULT_SORT, FILTERS } from './config.js';
import { ui } from './dom.js';
import { page } from './state.js';

export function filterValues() {
  const values = {};
  for (const filter of FILTERS) values[filter.param] = ui[filter.input].value.trim();
  return values;
}

export function activeFilters() {
  return FILTERS.filter((filter) => filterValues()[filter.param] !== '');
}

// The request fields of the filters and the order (only sent when the results are photos).
export function filterFields() {
  const values = filterValues();
  const fields = {};
  if (values.from) fields.taken_after = values.from;
  if (values.to) fields.taken_before = values.to;
  if (values.folder) fields.folder = values.folder.replace(/^\/+|\/+$/g, '');
  if (values.camera) fields.camera = values.camera;
  if (values.place) fields.place = values.place;
  if (values.located) fields.has_location = values.located === 'yes';
  if (ui.sort.value !== DEFAULT_SORT) fields.sort = ui.sort.value;
  return fields;
}

// Photos are the results of a text query (cross-modal), of any query that asks for photos, and of a photo query
// on a collection without captions (the server answers it with the photos like it).
export function photoResultsFor(query) {
  if (ui.modality.value !== '') return ui.modality.value === 'image';
  return Boolean(query) && (query.kind === 'text' || page.captionCount === 0);
}

// Offered in a photo library; hidden otherwise (captioned datasets have no dates or folders), unless the address
// set them: then they show, so that they can be seen and cleared.
export function showFilters() {
  const set = activeFilters().length > 0 || ui.sort.value !== DEFAULT_SORT;
  const offered = (page.library || set) && page.view === 'search';  // the duplicates view lists every group
  ui.filters.hidden = !offered;
  ui.sortField.hidden = !offered;
  ui.nav.hidden = !page.library && page.view !== 'duplicates';
  const count = activeFilters().length;
  ui.filtersActive.textContent = count ? '(' + count + ' on)' : '';
  ui.filtersClear.hidden = count === 0;
  const applies = !page.current || photoResultsFor(page.current);
  for (const filter of FILTERS) ui[filter.input].disabled = !applies;
  ui.sort.disabled = !applies;
  ui.filtersNote.classList.toggle('not-applied', !applies);
  ui.filtersNote.textContent = applies
    ? 'Filters and order apply to photo results: the day each photo was taken (from the camera, else the file), ' +
      'its folder, camera, place (city, region or country, named from its GPS location) and whether it has one.'
    : 'Filters and order apply to photo results; this search shows captions.';
}

// Marks the control of a refused request field (aria-invalid), or none.
export function markInvalid(field) {
  for (const filter of FILTERS) {
    if (filter.field === field) ui[filter.input].setAttribute('aria-invalid', 'true');
    else ui[filter.input].removeAttribute('aria-invalid');
  }
  if (field === 'sort') ui.sort.setAttribute('aria-invalid', 'true');
  else ui.sort.removeAttribute('aria-invalid');
}

// The folders seen in results (and their parents), offered while typing a folder; the places seen, while typing a
// place.
const folders = new Set();
const places = new Set();
export function learnFolders(matches) {
  let added = false;
  let placed = false;
  for (const match of matches) {
    const place = match.metadata && match.metadata.place;
    for (const name of place ? [place.city, place.region, place.country] : []) {
      if (name && !places.has(name)) {
        places.add(name);
        placed = true;
      }
    }
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
  if (placed) ui.placeList.replaceChildren(...[...places].sort().map((name) => new Option(name, name)));
}

// Does the collection hold photos with metadata (api.js's probeLibrary)? Asked once, at the start.
export async function detectLibrary() {
  try {
    const body = await probeLibrary();
    page.library = Boolean(body && Array.isArray(body.matches) && body.matches.length > 0);
    if (page.library) learnFolders(body.matches);
  } catch (error) {
    page.library = false;
  }
  showFilters();
}

// The bar's events: a change searches again through `apply` (a typed folder, camera or place on Enter or on leaving the
// box); "Clear filters" empties them all.
export function bindFilters(apply) {
  for (const filter of FILTERS) {
    const input = ui[filter.input];
    if (input.type === 'date') {
      // Typing a year fires a change at each digit (0002, 0020, 0202, 2024): a year below 1000 waits for the rest,
      // or for the box to be left.
      input.addEventListener('change', () => {
        if (!/^0/.test(input.value)) apply();
      });
      input.addEventListener('blur', apply);
      continue;
    }
    input.addEventListener('change', apply);
    if (input.tagName === 'INPUT' && input.type === 'text') {
      input.addEventListener('keydown', (event) => {
        if (event.key === 'Enter') {
          event.preventDefault();
          apply();
        }
      });
    }
  }
  ui.sort.addEventListener('change', apply);
  ui.filtersClear.addEventListener('click', () => {
    for (const filter of FILTERS) ui[filter.input].value = '';
    markInvalid(null);
    apply();
  });
}
