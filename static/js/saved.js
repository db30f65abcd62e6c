// What the page keeps in localStorage per identity and room: the read marker (a cache: the
// server keeps the real one per agent) and which participant ids are "me". Storage may be
// disabled; then the values live for this page only.

export class Saved {
  constructor(identity) {
    this.identity = identity;
  }

  key(kind, roomId) {
    return `switchboard:${kind}:${this.identity}:${roomId}`;
  }

  loadNumber(kind, roomId) {
    try {
      return Number(localStorage.getItem(this.key(kind, roomId))) || 0;
    } catch {
      return 0;
    }
  }

  saveNumber(kind, roomId, n) {
    try {
      localStorage.setItem(this.key(kind, roomId), String(n));
    } catch {
      // storage disabled: markers live for this page only
    }
  }

  loadList(kind, roomId) {
    try {
      const v = JSON.parse(localStorage.getItem(this.key(kind, roomId)) || '[]');
      return Array.isArray(v) ? v : [];
    } catch {
      return [];
    }
  }

  saveList(kind, roomId, list) {
    try {
      localStorage.setItem(this.key(kind, roomId), JSON.stringify(list.slice(-20)));
    } catch {
      // see saveNumber
    }
  }
}
