// The result cards: a photo card (thumbnail, caption, file name, library date and path, "similar" badge) and a
// caption card (text, its photo), each with its rank, relevance and score and the "More / Less like this"
// buttons, and the thumbnail button the sample shares. Builds elements; the clicks are handled on the list.

import { imageUrl } from './api.js';
import { fileName, formatTaken, hasRelevance, percent, plural } from './format.js';
import { photos } from './state.js';
import { highlight, whyLines } from './why.js';

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

export function thumbButton(imageId, size, label) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'thumb';
  button.dataset.imageId = imageId;
  button.setAttribute('aria-label', label);
  button.title = 'Search with this photo';
  const img = document.createElement('img');
  img.src = imageUrl(imageId, size);
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

export function photoCard(match, rank, weak) {
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
  body.append(...whyLines(match, [caption, name, metadata && metadata.path, metadata && placeName(metadata.place)]), steerButtons({ kind: 'image_id', value: match.id }, 'photo ' + name));
  item.append(body);
  return item;
}

// A library photo's date, place and path: "14 Jul 2023 · Lisbon, Portugal · 2023/summer/tram.jpg"; camera,
// coordinates and copies in its title.
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
  const where = placeName(metadata.place);
  if (where) {
    const place = document.createElement('span');
    place.className = 'place';
    highlight(place, where, keywords);
    if (line.childNodes.length) line.append(' \u00b7 ');
    line.append(place);
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
    details.push('GPS: ' + metadata.lat.toFixed(4) + ', ' + metadata.lon.toFixed(4) +
                 (metadata.place && metadata.place.region ? ' (' + metadata.place.region + ')' : ''));
  }
  if (copies > 0) details.push('also at: ' + metadata.paths.filter((path) => path !== metadata.path).join(', '));
  if (details.length) line.title = details.join('\n');
  return line;
}

// "Lisbon, Portugal", or the country alone (a photo far from any town); '' without a place.
function placeName(place) {
  if (!place) return '';
  return [place.city, place.country].filter(Boolean).join(', ');
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

export function captionCard(match, rank, weak) {
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
