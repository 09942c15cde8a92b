// A coarse shared clock for "last seen … ago" and online/offline: one timer for
// the whole page instead of one per node.
class Clock {
  now = $state(Date.now());
  constructor() {
    setInterval(() => {
      this.now = Date.now();
    }, 15_000);
  }
}

export const clock = new Clock();
