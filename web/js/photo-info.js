// What the page knows about indexed photos: their file names and first captions, learnt from results and the
// sample (`photos` in state.js) or asked of GET /documents/{id} once per photo. No DOM.

import { getDocument } from './api.js';
import { fileName } from './format.js';
import { photos } from './state.js';

// An indexed photo's file name and first caption, from what the page was told already or from /documents/{id};
// null when it cannot be had (the search itself says what is wrong).
const lookups = new Map();
export function lookUpPhoto(id) {
  if (photos.has(id)) return Promise.resolve(photos.get(id));
  if (!lookups.has(id)) {
    lookups.set(id, (async () => {
      try {
        const document_ = await getDocument(id);
        if (!document_) return null;
        const info = {
          name: fileName(document_.tags, id),
          caption: document_.captions && document_.captions.length ? document_.captions[0].text : null,
        };
        photos.set(id, info);
        return info;
      } catch (error) {
        return null;
      } finally {
        lookups.delete(id);
      }
    })());
  }
  return lookups.get(id);
}
