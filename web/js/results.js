// The results grid (#result-list): the cards of an answer, good matches first and weak ones (relevance below 50%)
// after a divider, dimmed; a next page appended under them ("More results"); the status line that sums them up,
// "No good match" and the "Showing n of m" count. Owns page.paging; sends no requests.

import { captionCard, photoCard } from './cards.js';
import { WEAK_BELOW } from './config.js';
import { ui } from './dom.js';
import { learnFolders } from './filters.js';
import { hasRelevance, percent, plural } from './format.js';
import { setStatus } from './messages.js';
import { showWhatAPhotoFinds } from './query-header.js';
import { page } from './state.js';
import { showSteering } from './steering.js';

function dividerText(count, photoResults) {
  return 'Weak matches (relevance below ' + percent(WEAK_BELOW) + '): ' +
         plural(count, photoResults ? 'photo' : 'caption', photoResults ? 'photos' : 'captions');
}

function divider(count, photoResults) {
  const item = document.createElement('li');
  item.className = 'weak-divider';
  item.setAttribute('role', 'separator');
  item.textContent = dividerText(count, photoResults);
  return item;
}

// Shows the first page of an answer (`request` is what was asked), or appends a next page (`append`): its cards
// continue the ranks, a photo already shown is not shown again, and weak matches stay after the divider. Returns
// how many cards it added.
export function render(body, request, append) {
  const query = request.query;
  const parts = request.parts;
  const photoResults = body.modality === 'image';
  const byDate = request.fields.sort === 'taken';
  const hadFocus = ui.list.contains(document.activeElement);
  if (!append) {
    page.paging = { request, shown: new Set(), strong: 0, weak: 0, divider: null, photoResults, byDate };
    ui.list.className = 'result-list ' + (photoResults ? 'photos' : 'captions');
    ui.list.replaceChildren();
  }
  const paging = page.paging;
  const matches = body.matches.filter((match) => !paging.shown.has(match.id));
  matches.forEach((match) => paging.shown.add(match.id));
  if (photoResults) learnFolders(matches);
  // The good matches first, then the weak ones, each group in the server's order (newest first: the server's
  // order alone).
  const isWeak = (match) => hasRelevance(match) && match.relevance < WEAK_BELOW;
  const strong = byDate ? matches : matches.filter((match) => !isWeak(match));
  const weak = byDate ? [] : matches.filter(isWeak);
  const card = photoResults ? photoCard : captionCard;
  const rank = paging.strong + paging.weak;
  const strongCards = strong.map((match, i) => card(match, rank + i + 1, byDate && isWeak(match)));
  const weakCards = weak.map((match, i) => card(match, rank + strong.length + i + 1, true));
  const anchor = paging.divider || (byDate ? null : ui.list.querySelector('li.weak'));
  if (anchor) anchor.before(...strongCards);
  else ui.list.append(...strongCards);
  paging.strong += strong.length;
  paging.weak += weak.length;
  if (paging.weak && paging.strong && !paging.divider) {
    paging.divider = divider(0, photoResults);
    const firstWeak = ui.list.querySelector('li.weak');
    if (firstWeak) firstWeak.before(paging.divider);
    else ui.list.append(paging.divider);
  }
  ui.list.append(...weakCards);
  if (paging.divider) paging.divider.textContent = dividerText(paging.weak, photoResults);
  paging.next = typeof body.next_offset === 'number' ? body.next_offset : null;
  paging.total = typeof body.total === 'number' ? body.total : null;
  showSteering();  // photo chips now know their file names
  const shown = paging.strong + paging.weak;
  const what = photoResults ? plural(shown, 'photo', 'photos') : plural(shown, 'caption', 'captions');
  const filtered = Object.keys(request.fields).some((key) => key !== 'sort');
  const about = (query.kind === 'text' ? ' for \u201c' + query.value + '\u201d' : ' for this photo') +
                (parts.length ? ' (steered)' : '') + (filtered ? ' (filtered)' : '');
  if (!append) showWhatAPhotoFinds(query, photoResults, body.note);
  const noGoodMatch = body.no_good_match === true && shown > 0 && !byDate;
  ui.noGoodMatch.hidden = !noGoodMatch;
  if (noGoodMatch) {
    ui.noGoodMatchText.textContent = 'Nothing in the collection fits' +
      (query.kind === 'text' ? ' \u201c' + query.value + '\u201d' : ' this photo') + ' well. The closest ' +
      (photoResults ? 'photos' : 'captions') + ' are shown below, dimmed' +
      (query.kind === 'text' ? '; try other words.' : '.');
  }
  const relevanceNote = 'Relevance is the estimated chance that a result fits.';
  if (shown === 0) {
    let why = body.mode === 'keyword' ? ' Try \u201cmeaning\u201d instead of \u201cwords\u201d.'
                                      : ' Is anything indexed?';
    if (byDate) why = ' Newest first shows only the photos that fit the search; try \u201cbest match\u201d.';
    else if (filtered) why = ' No photo passes the filters; widen or clear them.';
    setStatus('No ' + (photoResults ? 'photos' : 'captions') + ' found' + about + '.' + why);
  } else if (byDate) {
    setStatus(what + about + ', newest first.', false, 'The photos that fit the search, by the day they were taken.');
  } else if (paging.strong && paging.weak) {
    setStatus(what + about + ': ' + plural(paging.strong, 'good match', 'good matches') + ', then ' +
              paging.weak + ' weak.', false, relevanceNote);
  } else if (paging.weak) {
    setStatus(what + about + ', all weak matches.', false, relevanceNote);
  } else if (body.matches.some(hasRelevance)) {
    setStatus(what + about + ', best first.', false, relevanceNote);
  } else {
    setStatus(what + about + ', best first.', false, 'Scores are cosine similarities (higher is closer).');
  }
  ui.more.hidden = paging.next === null;
  ui.more.disabled = false;
  ui.more.textContent = 'More results';
  const total = paging.total !== null && paging.total >= shown ? paging.total : null;
  ui.moreCount.hidden = !(shown && total !== null && (paging.next !== null || append));
  ui.moreCount.textContent = total !== null ? 'Showing ' + shown + ' of ' + total : '';
  if (hadFocus && !append) ui.results.focus({ preventScroll: true });
  return matches.length;
}
