import type { Activity } from './activity';

/**
 * A lazy, time-ordered stream of activities. Every source owns its own PRNG stream, so adding or
 * removing one source never changes what another produces.
 */
export interface ActivitySource {
  readonly name: string;
  /**
   * Sources that may produce Calico-observed flows run one flow-log interval ahead of the others,
   * so that an interval's aggregate record can be written at its start time (Calico's event time).
   * Only such sources may produce Calico-observed flows.
   */
  readonly ahead: boolean;
  /** The next activity (time never decreases), or undefined when exhausted. */
  next(): Activity | undefined;
}

export function fromGenerator(name: string, ahead: boolean, gen: Iterator<Activity>): ActivitySource {
  return {
    name,
    ahead,
    next: () => {
      const r = gen.next();
      return r.done ? undefined : r.value;
    },
  };
}

export function fromSorted(name: string, ahead: boolean, list: readonly Activity[]): ActivitySource {
  let i = 0;
  return { name, ahead, next: () => list[i++] };
}

/** A source with one activity of look-ahead. */
export class Peeked {
  private head: Activity | undefined;
  private primed = false;

  constructor(
    readonly source: ActivitySource,
    readonly order: number,
  ) {}

  peek(): Activity | undefined {
    if (!this.primed) {
      this.head = this.source.next();
      this.primed = true;
    }
    return this.head;
  }

  time(): number {
    return this.peek()?.t ?? Infinity;
  }

  take(): Activity | undefined {
    const a = this.peek();
    this.primed = false;
    return a;
  }
}

/** Binary min-heap ordered by a numeric key, ties broken by a second key (insertion order). */
export class MinHeap<T> {
  private readonly items: T[] = [];

  constructor(private readonly less: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }

  pop(): T | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l]!, a[m]!)) m = l;
        if (r < a.length && this.less(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }

  /** Re-establish the heap after the top item's key grew (sift down from the root). */
  fixTop(): void {
    const a = this.items;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && this.less(a[l]!, a[m]!)) m = l;
      if (r < a.length && this.less(a[r]!, a[m]!)) m = r;
      if (m === i) break;
      [a[i], a[m]] = [a[m]!, a[i]!];
      i = m;
    }
  }
}

/** Merges sources by activity time (ties: source order), pulling lazily. */
export class SourceMerge {
  private readonly heap = new MinHeap<Peeked>((a, b) => {
    const ta = a.time();
    const tb = b.time();
    return ta < tb || (ta === tb && a.order < b.order);
  });

  constructor(sources: readonly ActivitySource[]) {
    sources.forEach((s, i) => {
      const p = new Peeked(s, i);
      if (p.peek() !== undefined) this.heap.push(p);
    });
  }

  time(): number {
    return this.heap.peek()?.time() ?? Infinity;
  }

  take(): Activity | undefined {
    const top = this.heap.peek();
    if (!top) return undefined;
    const a = top.take();
    if (top.peek() === undefined) this.heap.pop();
    else this.heap.fixTop();
    return a;
  }
}
