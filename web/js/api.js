// The client of the gateway's JSON API: the requests the page sends (POST /search as JSON or as a file upload,
// GET /stats, /sample, /documents/{id}, /duplicates) and the photo URLs it shows (/images/{id}). It returns what
// the server answered and throws what fetch throws; what to show is the callers' business. No DOM.

import { DUPLICATE_GROUPS } from './config.js';

// A thumbnail of an indexed photo, `size` pixels on its longer side.
export function imageUrl(id, size) {
  return '/images/' + encodeURIComponent(id) + '?size=' + size;
}

// The full-size photo of an indexed photo.
export function photoUrl(id) {
  return '/images/' + encodeURIComponent(id);
}

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

// POST /search for a request of the page ({query, limit, modality, mode, parts}) with the request fields `fields`
// (filters, order, offset): {response, body}, body null when the answer is no JSON.
export async function postSearch(request, signal, fields) {
  const response = await fetch('/search', await requestFor(request.query, request.limit, request.modality,
                                                           request.mode, request.parts, signal, fields));
  const body = await response.json().catch(() => null);
  return { response, body };
}

// Does the collection hold photos with metadata? A search for anything taken before the year 9999 answers: photos
// without metadata pass no filter. The answer's body, or null when it failed.
export async function probeLibrary() {
  const response = await fetch('/search', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ text: 'a photo', limit: 1, modality: 'image', mode: 'semantic',
                           taken_before: '9999-12-31' }),
  });
  return response.ok ? await response.json() : null;
}

// GET /stats: {response, body}, body null when the answer is no JSON.
export async function getStats() {
  const response = await fetch('/stats');
  const body = await response.json().catch(() => null);
  return { response, body };
}

// GET /documents/{id}: the indexed photo's document, or null when the server has none to give.
export async function getDocument(id) {
  const response = await fetch('/documents/' + encodeURIComponent(id));
  if (!response.ok) return null;
  return response.json();
}

// GET /sample: a few indexed photos drawn at random, or null when the server answered with an error.
export async function getSample() {
  const response = await fetch('/sample?limit=8');
  return response.ok ? response.json() : null;
}

// GET /duplicates, one page of groups from `offset`: {response, body}, body null when the answer is no JSON.
export async function getDuplicates(offset) {
  const response = await fetch('/duplicates?limit=' + DUPLICATE_GROUPS + '&offset=' + offset);
  const body = await response.json().catch(() => null);
  return { response, body };
}
