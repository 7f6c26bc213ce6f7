// Formatting helpers: sizes, counts, percentages, dates and file names as the page writes them. Pure functions: no
// DOM, no state, no requests.

export function formatBytes(bytes) {
  if (bytes >= 1024 * 1024) return (bytes / (1024 * 1024)).toFixed(bytes >= 10 * 1024 * 1024 ? 0 : 1) + ' MB';
  if (bytes >= 1024) return Math.round(bytes / 1024) + ' KB';
  return bytes + ' bytes';
}

export function plural(count, one, many) {
  return count + ' ' + (count === 1 ? one : many);
}

export function percent(relevance) {
  return Math.round(Math.max(0, Math.min(1, relevance)) * 100) + '%';
}

export function hasRelevance(match) {
  return typeof match.relevance === 'number';
}

// "14 Jul 2023" from an ISO time, read as the photo's own clock (no time zone is applied).
export function formatTaken(taken) {
  const found = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}))?/.exec(taken || '');
  if (!found) return taken || '';
  const date = new Date(Date.UTC(Number(found[1]), Number(found[2]) - 1, Number(found[3])));
  return date.toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric', timeZone: 'UTC' });
}

export function fileName(tags, fallback) {
  const pairId = (tags && tags.pair_id) || fallback || '';
  return pairId.split('/').pop();
}

export function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
