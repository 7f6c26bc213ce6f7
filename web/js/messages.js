// What the page says about a search: the error box, the status line under it, and the wording of a failed
// request (which filter the server refused). Owns #error and #status; sends no requests.

import { FILTERS } from './config.js';
import { ui } from './dom.js';

export function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = false;
  setStatus('');
  ui.results.removeAttribute('aria-busy');
}

export function clearError() {
  ui.error.hidden = true;
  ui.error.textContent = '';
}

export function setStatus(text, loading, more) {
  ui.status.textContent = text;
  if (more) {
    const extra = document.createElement('span');
    extra.className = 'status-more';
    extra.textContent = ' ' + more;
    ui.status.append(extra);
  }
  ui.status.classList.toggle('loading', Boolean(loading));
}

export function describeFailure(status, body, query) {
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
export function refusedField(status, message) {
  if (status !== 400 && status !== 422) return null;
  const found = message.match(/^(?:invalid request: )?'?([a-z_]+)'?:/);
  return found ? found[1] : null;
}
