// The page's elements, looked up once by their ids in index.html: `ui.<name>` for the ones the modules use, `$` for
// the rest. Owns nothing else; every module reads the page through here.

export const $ = (id) => document.getElementById(id);

export const ui = {
  form: $('text-form'), q: $('q'), file: $('file'), choose: $('choose-file'), dropzone: $('dropzone'),
  modality: $('modality'), limit: $('limit'), notice: $('notice'), error: $('error'), status: $('status'),
  results: $('results'), list: $('result-list'), more: $('more'), query: $('query'),
  queryImage: $('query-image'), queryTitle: $('query-title'), queryCaption: $('query-caption'),
  queryNote: $('query-note'), stats: $('stats'), maxSize: $('max-size'), queryShows: $('query-shows'),
  queryShowsText: $('query-shows-text'), queryOther: $('query-other'),
  sample: $('sample'), sampleList: $('sample-list'), sampleMore: $('sample-more'), examples: $('examples'),
  mode: $('mode'), not: $('not'), notAdd: $('not-add'), steering: $('steering'), chips: $('chips'),
  steeringClear: $('steering-clear'), noGoodMatch: $('no-good-match'), noGoodMatchText: $('no-good-match-text'),
  sort: $('sort'), sortField: $('sort-field'), filters: $('filters'), filtersActive: $('filters-active'),
  takenAfter: $('taken-after'), takenBefore: $('taken-before'), folder: $('folder'), folderList: $('folder-list'),
  camera: $('camera'), place: $('place'), placeList: $('place-list'), located: $('located'),
  filtersClear: $('filters-clear'), filtersNote: $('filters-note'),
  moreCount: $('more-count'), nav: $('site-nav'), navSearch: $('nav-search'), navDuplicates: $('nav-duplicates'),
  duplicates: $('duplicates'), duplicatesStatus: $('duplicates-status'), duplicateGroups: $('duplicate-groups'),
  duplicatesMore: $('duplicates-more'),
};
