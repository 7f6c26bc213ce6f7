// Why a result matched, as the cards show it: the query's words marked in a text (`highlight`), and the lines
// under a card with the closest caption and the words no text on the card shows (`whyLines`). Builds elements;
// no state, no requests.

import { escapeRegExp } from './format.js';

// Fills `element` with `text`, the matched keywords (and the words they start) marked; returns whether any was.
export function highlight(element, text, keywords) {
  const words = (keywords || []).filter((word) => word && word.trim()).map((word) => escapeRegExp(word.trim()));
  if (!words.length || !text) {
    element.textContent = text || '';
    return false;
  }
  const pattern = new RegExp('(^|[^\\p{L}\\p{N}])((?:' + words.join('|') + ')[\\p{L}\\p{N}]*)', 'giu');
  let last = 0;
  let found = false;
  const nodes = [];
  for (const hit of text.matchAll(pattern)) {
    const start = hit.index + hit[1].length;
    nodes.push(text.slice(last, start));
    const mark = document.createElement('mark');
    mark.textContent = hit[2];
    nodes.push(mark);
    last = start + hit[2].length;
    found = true;
  }
  nodes.push(text.slice(last));
  element.replaceChildren(...nodes);
  return found;
}

// Why a result matched: the caption nearest to the query (photos, when it is not the one shown) and the query's
// words it was found by that no text on the card shows.
export function whyLines(match, shownTexts) {
  const lines = [];
  const why = match.why || {};
  const keywords = Array.isArray(why.keywords) ? why.keywords : [];
  const texts = shownTexts.slice();
  if (why.caption && !shownTexts.includes(why.caption)) {
    const line = document.createElement('p');
    line.className = 'why why-caption';
    const label = document.createElement('span');
    label.className = 'why-label';
    label.textContent = 'Closest caption: ';
    const quote = document.createElement('q');
    highlight(quote, why.caption, keywords);
    line.append(label, quote);
    lines.push(line);
    texts.push(why.caption);
  }
  const unseen = keywords.filter((word) => !texts.some((text) => text && text.toLowerCase().includes(word.toLowerCase())));
  if (unseen.length) {
    const line = document.createElement('p');
    line.className = 'why why-words';
    line.append('Words: ');
    unseen.forEach((word, i) => {
      const mark = document.createElement('mark');
      mark.textContent = word;
      line.append(...(i ? [' ', mark] : [mark]));
    });
    line.title = 'words of the query found in this result\u2019s captions, file or folder name or place';
    lines.push(line);
  }
  return lines;
}
