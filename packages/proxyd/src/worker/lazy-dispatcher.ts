// A dispatcher made on its first request. undici is the largest thing a serving thread loads (~110
// modules, ~5 MiB of heap per thread: issue 20), and a thread needs it only for plain HTTP: one that only
// tunnels (CONNECT) never loads it, and a fresh proxyd holds none of it. The first plain-HTTP request of
// each thread pays the load (from Node's compile cache, tens of ms), once.
import { createRequire } from 'node:module';
import type { Dispatcher } from 'undici';

const require = createRequire(import.meta.url);

/** undici itself, loaded by the first call in this thread (from a dispatcher's `make`). */
export function loadUndici(): typeof import('undici') {
  return require('undici') as typeof import('undici');
}

export class LazyDispatcher<D extends Dispatcher = Dispatcher> {
  #make: (() => D) | undefined;
  #made: D | undefined;

  constructor(make: () => D) {
    this.#make = make;
  }

  /** The dispatcher itself, made now if it was not yet. */
  get real(): D {
    if (this.#made === undefined) {
      this.#made = this.#make!();
      this.#make = undefined;
    }
    return this.#made;
  }

  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    return this.real.dispatch(options, handler);
  }
}
