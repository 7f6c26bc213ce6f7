// What the server says about itself at the start (GET /stats): its limits (into config.js's `server`), the
// footer's counts and model, the notice when nothing is indexed, and whether captions are. Owns #stats and #notice.

import { getStats } from './api.js';
import { server } from './config.js';
import { ui } from './dom.js';
import { formatBytes, plural } from './format.js';
import { showError } from './messages.js';
import { page } from './state.js';

// true when the server answered; false, with the error shown, when it did not.
export async function loadStats() {
  let response;
  let stats;
  try {
    ({ response, body: stats } = await getStats());
  } catch (error) {
    showError('Cannot reach the search server. Is it running? (' + error.message + ')');
    return false;
  }
  if (!response.ok || !stats) {
    const message = stats && stats.error ? stats.error.message : 'HTTP ' + response.status;
    showError('The search service is not ready yet; reload in a moment. (' + message + ')');
    return false;
  }
  Object.assign(server, stats.limits || {});
  ui.maxSize.textContent = formatBytes(server.max_image_bytes);
  ui.q.maxLength = server.max_text_chars;
  const model = stats.model ? ' \u00b7 model ' + stats.model + (stats.dim ? ' (' + stats.dim + '-d)' : '') : '';
  page.captionCount = stats.captions;
  ui.stats.textContent = plural(stats.images, 'photo', 'photos') + ' and ' +
                         plural(stats.captions, 'caption', 'captions') + ' indexed' + model;
  if (!stats.images && !stats.captions) {
    ui.notice.textContent = 'Nothing is indexed yet: run \u201cpython app.py -t index\u201d, then reload this page.';
    ui.notice.hidden = false;
  }
  return true;
}
