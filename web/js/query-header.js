// The heading of a search by a photo (#query): the photo searched with (yours, or an indexed one with its file
// name and first caption, never its id), and what the search found with "Show the other results". A text query has
// no heading: its words stay in the search box.

import { imageUrl } from './api.js';
import { ui } from './dom.js';
import { lookUpPhoto } from './photo-info.js';
import { page, photos } from './state.js';

let objectUrl = null;  // preview of an uploaded photo

export function showQuery(query) {
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
    ui.queryImage.src = imageUrl(query.value, 256);
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
  const info = await lookUpPhoto(query.value);
  if (info && page.current === query) showPhotoInfo(info);
}

// A photo query says what it found (captions that describe it, or the photos like it) and offers the other,
// where the collection has it: a photo folder without captions has only photos.
export function showWhatAPhotoFinds(query, photoResults, note) {
  ui.queryShows.hidden = query.kind === 'text';
  if (ui.queryShows.hidden) return;
  ui.queryShowsText.textContent = note ? 'No captions are indexed here, so these are the photos most like it.'
    : photoResults ? 'These are the photos most like it.' : 'These are the captions that describe it.';
  const other = photoResults ? 'text' : 'image';
  ui.queryOther.hidden = other === 'text' && !page.captionCount;
  ui.queryOther.textContent = other === 'text' ? 'Show captions instead' : 'Show photos like it instead';
  ui.queryOther.dataset.modality = other;
}
