// The home page (no query): a sample of the collection drawn at random (GET /sample), each photo a search by it,
// and a few of its captions offered as descriptions to try. Owns #sample.

import { getSample } from './api.js';
import { thumbButton } from './cards.js';
import { $, ui } from './dom.js';
import { showFilters } from './filters.js';
import { clearError, setStatus } from './messages.js';
import { searchIndexedPhoto, searchText } from './search.js';
import { page, photos } from './state.js';
import { showView } from './views.js';

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
export async function loadSample() {
  const mine = ++sampleRequest;
  let body = null;
  try {
    body = await getSample();
  } catch (error) {
    body = null;
  }
  // a search or a view started meanwhile
  if (mine !== sampleRequest || page.current || page.view !== 'search') return;
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

export function showHome() {
  page.current = null;
  page.paging = null;
  showView('search');
  showFilters();
  page.sequence += 1;
  if (page.controller) page.controller.abort();
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

// The sample's events: a photo searches by it, an example by its words, "Show others" draws again.
export function bindHome() {
  ui.sampleList.addEventListener('click', (event) => {
    const button = event.target.closest('button.thumb');
    if (button && button.dataset.imageId) searchIndexedPhoto(button.dataset.imageId);
  });
  ui.examples.addEventListener('click', (event) => {
    const button = event.target.closest('button.example');
    if (button) searchText(button.dataset.text);
  });
  ui.sampleMore.addEventListener('click', () => loadSample());
}
