// The page's shared state: what is shown and what steers it, read and set by the other modules (an ES module's
// `let` cannot be assigned from outside, so it lives in one object). Owns no DOM and no requests.

export const page = {
  current: null,      // the query shown: {kind: 'text'|'image_id'|'upload', value, file, name}
  sequence: 0,        // answers to older searches are dropped
  controller: null,   // aborts the search in flight when a new one starts
  // What steers the search, in the order it was added: {sign: 'plus'|'minus', kind: 'image_id'|'text', value,
  // source: 'not' (typed in "Not about") | 'result' (more/less like this)}
  steering: [],
  // The results shown, for "More results": the next page's offset, the ids shown (a page never repeats one), the
  // request it continues and how the cards shown so far were grouped.
  paging: null,
  library: false,     // the collection has photos with metadata: filters, order and duplicates are offered
  captionCount: null, // captions indexed (GET /stats): without any, a photo query finds the photos like it
  view: 'search',     // 'search' or 'duplicates'
};

// indexed photo id -> {name, caption}, from results, the sample or /documents
export const photos = new Map();
