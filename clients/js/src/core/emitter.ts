// Typed publish/subscribe over an event map, e.g. Emitter<ParleyEvents>.

export type Listener<T> = (data: T) => void;

// A failing listener must neither stop the others nor corrupt the client's state; by
// default its error still surfaces, as an unhandled rejection.
const surface = (err: unknown): void => void Promise.reject(err);

export class Emitter<M extends object> {
  private readonly listeners = new Map<keyof M, Set<Listener<never>>>();

  constructor(private readonly onListenerError: (err: unknown) => void = surface) {}

  /** Calls `fn` for every `type` event; returns the function that unsubscribes it. */
  on<K extends keyof M>(type: K, fn: Listener<M[K]>): () => void {
    let set = this.listeners.get(type);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(type, set);
    }
    set.add(fn as Listener<never>);
    return () => this.off(type, fn);
  }

  once<K extends keyof M>(type: K, fn: Listener<M[K]>): () => void {
    const off = this.on(type, (data) => {
      off();
      fn(data);
    });
    return off;
  }

  off<K extends keyof M>(type: K, fn: Listener<M[K]>): void {
    this.listeners.get(type)?.delete(fn as Listener<never>);
  }

  emit<K extends keyof M>(type: K, data: M[K]): void {
    const set = this.listeners.get(type);
    if (set === undefined) return;
    for (const fn of [...set]) {
      try {
        (fn as Listener<M[K]>)(data);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }
}
