// The page's constants (defaults, the server's thresholds it mirrors, the filters' names) and the server's limits,
// which GET /stats overwrites at the start (`server`). No DOM, no requests.

export const DEFAULT_LIMIT = 10;
export const FORMATS = 'JPEG, PNG, GIF, BMP, WebP or TIFF';
export const server = { max_limit: 100, max_image_bytes: 20 * 1024 * 1024, max_text_chars: 1000 };
export const MODES = ['hybrid', 'semantic', 'keyword'];
export const DEFAULT_MODE = 'hybrid';
export const WEAK_BELOW = 0.5;  // relevance under this is a weak match (the server's `no_good_match` threshold)
export const MAX_PARTS = 8;     // parts in `plus` and in `minus`, each (the server's limit)
export const SORTS = ['relevance', 'taken'];
export const DEFAULT_SORT = 'relevance';
// The filters: the page's input, its key in the address, the request field it fills.
export const FILTERS = [
  { input: 'takenAfter', param: 'from', field: 'taken_after', label: 'From' },
  { input: 'takenBefore', param: 'to', field: 'taken_before', label: 'To' },
  { input: 'folder', param: 'folder', field: 'folder', label: 'Folder' },
  { input: 'camera', param: 'camera', field: 'camera', label: 'Camera' },
  { input: 'place', param: 'place', field: 'place', label: 'Place' },
  { input: 'located', param: 'located', field: 'has_location', label: 'GPS' },
];
export const DUPLICATE_GROUPS = 20;  // groups per page of the duplicates view
