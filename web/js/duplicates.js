// The duplicates view (?view=duplicates): groups of near-duplicate photos from GET /duplicates, a page of groups
// at a time ("More groups"), each member with its path, size and similarity to the best of the group. Owns
// #duplicates; opening it leaves the search (the query, its results and the sample are cleared).

import { getDuplicates, imageUrl, photoUrl } from './api.js';
import { ui } from './dom.js';
import { showFilters } from './filters.js';
import { fileName, formatBytes, formatTaken, plural } from './format.js';
import { clearError, setStatus, showError } from './messages.js';
import { page } from './state.js';
import { urlFor } from './url-state.js';
import { showView } from './views.js';

let duplicatesPage = null;  // {next: the next page's offset or null}

export function openDuplicates(history) {
  page.current = null;
  page.sequence += 1;
  if (page.controller) page.controller.abort();
  page.paging = null;
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
  link.href = member.uri || member.image_url || photoUrl(member.id);
  link.target = '_blank';
  link.rel = 'noopener';
  link.title = 'Open this photo';
  link.setAttribute('aria-label', 'Open ' + name + (index === 0 ? ' (the best of the group)' : ''));
  const img = document.createElement('img');
  img.src = imageUrl(member.id, 256);
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
  const mine = page.sequence;
  ui.duplicatesMore.disabled = true;
  ui.duplicates.setAttribute('aria-busy', 'true');
  if (!offset) ui.duplicatesStatus.textContent = 'Looking for duplicates\u2026';
  let response;
  let body = null;
  try {
    ({ response, body } = await getDuplicates(offset));
  } catch (error) {
    if (mine !== page.sequence) return;
    ui.duplicates.removeAttribute('aria-busy');
    ui.duplicatesStatus.textContent = '';
    showError('Cannot reach the search server. Is it running? (' + error.message + ')');
    return;
  }
  if (mine !== page.sequence || page.view !== 'duplicates') return;
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

// The view's events: "Duplicates" in the navigation (a plain click; with a modifier key the browser opens a tab)
// and "More groups".
export function bindDuplicates() {
  ui.navDuplicates.addEventListener('click', (event) => {
    if (event.ctrlKey || event.metaKey || event.shiftKey) return;  // a new tab or window: the browser's way
    event.preventDefault();
    openDuplicates('push');
  });
  ui.duplicatesMore.addEventListener('click', () => loadDuplicates(duplicatesPage && duplicatesPage.next));
}
