// The inbox's views of the rooms: which are in a tab (Mine, Unassigned, All) under the status
// filter and the search, and the unread total of the tab title. Pure functions of the store (it
// keeps the filter in `store.filter`). The tabs' counts are the server's (`store.counts`), not
// of the rooms loaded here.

/** Whether room `r` is in tab `tab` (mine | unassigned | all) under the status filter and search. */
export function matches(store, r, tab = store.filter.tab) {
  if (r.access === 'gone') return false;
  // Lost to another agent: out of every tab, except while it is the room on screen.
  if (r.access === 'denied' && r.id !== store.activeId) return false;
  if (tab === 'mine' && r.owner !== store.identity) return false;
  if (tab === 'unassigned' && r.owner) return false;
  const f = store.filter;
  if (f.status && r.status !== f.status) return false;
  if (f.q && f.qIds && !f.qIds.has(r.id)) return false;
  return true;
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
