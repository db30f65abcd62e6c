// The inbox's views of the rooms: which are in a tab (Mine, Unassigned, All) under the status
// filter and the search, the tabs' counts, and the unread total of the tab title. Pure
// functions of the store (it keeps the filter in `store.filter`).

/** Whether room `r` is in tab `tab` (mine | unassigned | all) under the status filter and search. */
export function matches(store, r, tab = store.filter.tab) {
  if (r.access === 'gone') return false;
  if (tab === 'mine' && r.owner !== store.identity) return false;
  if (tab === 'unassigned' && r.owner) return false;
  const f = store.filter;
  if (f.status && r.status !== f.status) return false;
  if (f.q && f.qIds && !f.qIds.has(r.id)) return false;
  return true;
}

/** Rooms per tab (of the conversations loaded so far). */
export function counts(store) {
  const out = { mine: 0, unassigned: 0, all: 0 };
  for (const r of store.rooms.values()) for (const t of Object.keys(out)) if (matches(store, r, t)) out[t] += 1;
  return out;
}

/** Unread messages over all rooms a staff member is told about (Mine and Unassigned). */
export function totalUnread(store) {
  let n = 0;
  for (const r of store.rooms.values()) {
    if (r.access !== 'ok') continue;
    if (store.mode === 'operator' && r.owner && r.owner !== store.identity) continue;
    n += store.unread(r);
  }
  return n;
}
