// The page's one state object. Each key has subscribers, told what changed when it changes; views
// subscribe to the keys they show and redraw in the next animation frame.
//
// Keys (set in main.js): protocol, me {user, role}, conn {state, text}, hosts (Map name -> host,
// see fleetmodel.js), fleetSeries ([{t, mean, p95, max}]), query {search, labels, sort}, listed
// (names the host list shows), selection (Set of names), watched {opened, pinned: Set}, jobs
// (Map id -> job frame), currentJob (id), target ({expr, what}: a request to fill the exec target),
// tab (the pane shown on narrow screens), alerts (what fires, see alertsmodel.js; the change is
// {hosts} whose outline changed), alertRules ({metrics: Map rule -> the metric it reads, error}),
// shell (a host to open a terminal on: termpanel.js).

export function createStore(initial) {
  const state = { ...initial };
  const listeners = new Map();

  function notify(key, change) {
    for (const fn of listeners.get(key) || []) fn(state[key], change);
  }

  return {
    get: (key) => state[key],

    /** Replace a value; subscribers get (value, change). */
    set(key, value, change) {
      state[key] = value;
      notify(key, change);
    },

    /** Change a value in place (a Map, a Set); `mutate` returns what changed, for the subscribers. */
    update(key, mutate) {
      const change = mutate(state[key]);
      notify(key, change);
      return change;
    },

    /** Call fn(value, change) on every change of `key`; returns the unsubscribe function. */
    subscribe(key, fn) {
      if (!listeners.has(key)) listeners.set(key, new Set());
      listeners.get(key).add(fn);
      return () => listeners.get(key).delete(fn);
    },
  };
}
