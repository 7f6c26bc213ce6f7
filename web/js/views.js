// The page's two views, search and duplicates (?view=duplicates): which one is shown and the site navigation
// that marks it. Owns page.view and #site-nav's aria-current.

import { ui } from './dom.js';
import { page } from './state.js';

export function showView(name) {
  page.view = name;
  const duplicates = name === 'duplicates';
  ui.duplicates.hidden = !duplicates;
  ui.results.hidden = duplicates;
  if (duplicates) ui.navDuplicates.setAttribute('aria-current', 'page');
  else ui.navDuplicates.removeAttribute('aria-current');
  if (duplicates) ui.navSearch.removeAttribute('aria-current');
  else ui.navSearch.setAttribute('aria-current', 'page');
  ui.nav.hidden = !page.library && !duplicates;
}
