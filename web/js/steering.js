// Steering: the "not" terms and the "more / less like this" results that are subtracted from the query (`minus`)
// or added to it (`plus`), shown as chips under the search form. Owns page.steering's parts and #steering; a change
// searches again through the `steer` callback that bindSteering is given.

import { imageUrl } from './api.js';
import { MAX_PARTS } from './config.js';
import { ui } from './dom.js';
import { showError } from './messages.js';
import { lookUpPhoto } from './photo-info.js';
import { page, photos } from './state.js';

let steer = () => {};  // bindSteering's callback: search again with the steering as it now is

export function partKey(part) {
  return part.kind + ':' + part.value;
}

export function uniqueParts(parts) {
  const seen = new Map();
  for (const part of parts) seen.set(partKey(part), part);  // the last word on a part wins
  return [...seen.values()];
}

// Adds a part (moving it from the other side if it was there); false, with a message, when a side is full.
function addPart(part) {
  const others = page.steering.filter((existing) => partKey(existing) !== partKey(part));
  if (others.filter((existing) => existing.sign === part.sign).length >= MAX_PARTS) {
    showError('A search can be steered by at most ' + MAX_PARTS + ' parts each way; remove one of the chips first.');
    return false;
  }
  page.steering = [...others, part];
  return true;
}

function addNotTerm() {
  const value = ui.not.value.trim();
  if (!value) {
    ui.not.focus();
    return;
  }
  if (!addPart({ sign: 'minus', kind: 'text', value, source: 'not' })) return;
  ui.not.value = '';
  steer();
}

// "More / Less like this" on a result: `part` is {kind, value} of the result.
export function steerByResult(sign, part) {
  if (!addPart({ sign, kind: part.kind, value: part.value, source: 'result' })) return;
  steer();
  ui.steering.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
}

function removePart(key) {
  page.steering = page.steering.filter((part) => partKey(part) !== key);
  steer();
}

function partLabel(part) {
  if (part.kind === 'image_id') {
    const info = photos.get(part.value);
    return 'photo ' + (info && info.name ? info.name : part.value);
  }
  return part.source === 'not' ? part.value : '\u201c' + part.value + '\u201d';
}

function chip(part) {
  const item = document.createElement('li');
  item.className = 'chip ' + part.sign + (part.source === 'not' ? ' not-term' : '');
  item.dataset.key = partKey(part);
  const sign = part.sign === 'plus' ? '+' : '\u2212';
  const words = partLabel(part);
  item.title = (part.sign === 'plus' ? 'More like ' : part.source === 'not' ? 'Not about ' : 'Less like ') + words;
  if (part.kind === 'image_id') {
    const img = document.createElement('img');
    img.src = imageUrl(part.value, 64);
    img.alt = '';
    img.width = 24;
    img.height = 24;
    item.append(img);
  }
  const text = document.createElement('span');
  text.className = 'chip-text';
  text.textContent = sign + ' ' + words;
  const remove = document.createElement('button');
  remove.type = 'button';
  remove.className = 'chip-remove';
  remove.textContent = '\u00d7';
  remove.setAttribute('aria-label', 'Remove \u201c' + sign + ' ' + words + '\u201d');
  remove.title = 'Remove';
  item.append(text, remove);
  return item;
}

export function showSteering() {
  ui.chips.replaceChildren(...page.steering.map(chip));
  ui.steering.hidden = page.steering.length === 0;
  // a photo chip from the address names its photo once the page knows the file name
  const unknown = page.steering.filter((part) => part.kind === 'image_id' && !photos.has(part.value));
  for (const part of unknown) {
    lookUpPhoto(part.value).then((info) => {
      const shown = ui.chips.querySelector('.chip[data-key="' + CSS.escape(partKey(part)) + '"]');
      if (info && shown) shown.replaceWith(chip(part));
    });
  }
}

// The steering's events: "Exclude" (or Enter in "Not about"), a chip's remove button and "Clear all"; each
// searches again through `onSteer`.
export function bindSteering(onSteer) {
  steer = onSteer;
  ui.notAdd.addEventListener('click', addNotTerm);
  ui.not.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      event.preventDefault();  // not the search form's submit
      addNotTerm();
    }
  });
  ui.chips.addEventListener('click', (event) => {
    const button = event.target.closest('button.chip-remove');
    if (button) removePart(button.closest('.chip').dataset.key);
  });
  ui.steeringClear.addEventListener('click', () => {
    page.steering = [];
    steer();
  });
}
