import { SERVICE_CLASSES, type ServiceClass } from './ports';

/**
 * What the traffic itself teaches about a destination: which remote-administration services it
 * serves to the fleet. A destination that `need` distinct sources reached on one service within
 * the window is a server of that service (a WinRM collector, a file share, a jump host's SSH), and
 * sessions to it on that service are business, not movement. Bounded: at most `CAP` recent
 * (service, source) contacts per destination, plus one bit per service once it is learned (kept
 * for good, and in snapshots, like a learned domain controller).
 */
export class ServedMemory {
  static readonly CAP = 16;
  svc: number[] = [];
  src: string[] = [];
  at: number[] = [];
  /** Bit i: the destination serves SERVICE_CLASSES[i] to the fleet. */
  fleet = 0;

  serves(service: ServiceClass): boolean {
    return (this.fleet & (1 << SERVICE_CLASSES.indexOf(service))) !== 0;
  }

  /** Note a session from `src`; true when it makes the destination a fleet server of `service`. */
  note(service: ServiceClass, src: string, at: number, windowMs: number, need: number): boolean {
    const svc = SERVICE_CLASSES.indexOf(service);
    const bit = 1 << svc;
    if (this.fleet & bit) return false;
    let slot = -1;
    let distinct = 1;
    for (let i = 0; i < this.src.length; i++) {
      if (this.svc[i] !== svc) continue;
      if (this.src[i] === src) slot = i;
      else if (at - (this.at[i] as number) <= windowMs) distinct += 1;
    }
    if (slot < 0) slot = this.src.length < ServedMemory.CAP ? this.src.length : this.oldest();
    this.svc[slot] = svc;
    this.src[slot] = src;
    this.at[slot] = at;
    if (distinct < need) return false;
    this.fleet |= bit;
    return true;
  }

  private oldest(): number {
    let best = 0;
    for (let i = 1; i < this.at.length; i++) if ((this.at[i] as number) < (this.at[best] as number)) best = i;
    return best;
  }
}

export type EncodedServed = [svc: number[], src: string[], at: number[], fleet: number];

export function encodeServed(m: ServedMemory): EncodedServed {
  return [[...m.svc], [...m.src], [...m.at], m.fleet];
}

export function decodeServed(e: EncodedServed): ServedMemory {
  const m = new ServedMemory();
  [m.svc, m.src, m.at, m.fleet] = [[...e[0]], [...e[1]], [...e[2]], e[3]];
  return m;
}
