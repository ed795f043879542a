import type { CordonEvent } from '../../src/events';
import { subjectKey } from '../../src/events';
import { CorrelationEngine, type Change } from '../../src/correlate/engine';
import { broadcast, decodeHandoff, handoffKey, type Handoff } from '../../src/correlate/handoff';
import type { Incident } from '../../src/correlate/incident';
import { partitionFor } from '../../src/partition';
import { trustingBuilder } from './builder';

/**
 * One engine per partition, as replicas that each own one partition: events go to the engine of
 * their subject's partition, hand-offs to the engine of their key's, or to every engine for a
 * broadcast (at once, or held back a while).
 */
export class Cluster {
  readonly engines: CorrelationEngine[];
  readonly changes: Change[] = [];
  readonly sent: Handoff[] = [];
  private held: Handoff[] = [];
  /** Incidents the engines forgot before the end (replay reports them too). */
  private readonly forgotten = new Map<string, Incident>();

  constructor(
    readonly partitions: number,
    config = trustingBuilder(),
    /** Hand-offs at once, after the feed, or after every n events (a consumer's batch). */
    private readonly deliver: 'now' | 'later' | number = 'now',
  ) {
    this.engines = Array.from({ length: partitions }, (_, i) => {
      const e = new CorrelationEngine(config);
      e.shareAcross((key) => partitionFor(key, partitions), (p) => p === i);
      e.whenForgotten((i) => this.forgotten.set(i.id, i));
      return e;
    });
  }

  engineOf(key: string): CorrelationEngine {
    return this.engines[partitionFor(key, this.partitions)]!;
  }

  feed(events: readonly CordonEvent[]): this {
    let n = 0;
    for (const event of events) {
      const engine = this.engineOf(subjectKey(event));
      this.changes.push(...engine.ingest(event));
      this.route(engine);
      n += 1;
      if (this.deliver === 'now' || (typeof this.deliver === 'number' && n % this.deliver === 0)) this.flush();
    }
    return this.flush();
  }

  flush(): this {
    while (this.held.length > 0) {
      const h = this.held.shift()!;
      for (const engine of broadcast(h) ? this.engines : [this.engineOf(handoffKey(h))]) {
        this.changes.push(...engine.applyHandoff(h));
        this.route(engine);
      }
    }
    return this;
  }

  private route(engine: CorrelationEngine): void {
    for (const h of engine.takeHandoffs()) {
      // what crosses Kafka is JSON, parsed at the edge
      const decoded = decodeHandoff(JSON.stringify(h));
      if (!decoded.ok) throw new Error(decoded.reason);
      this.sent.push(decoded.handoff);
      this.held.push(decoded.handoff);
    }
  }

  incidents(): Incident[] {
    const all = new Map(this.forgotten);
    for (const e of this.engines) for (const i of e.listIncidents()) all.set(i.id, i);
    return [...all.values()].sort((a, b) => a.firstSeen - b.firstSeen || (a.id < b.id ? -1 : 1));
  }
}

/** What an analyst reads of an incident: the same whichever way it was correlated. */
export function shape(i: Incident) {
  return {
    id: i.id,
    root: i.root,
    severity: i.severity,
    score: i.score,
    nodes: i.path.nodes,
    edges: i.path.edges.map((e) => [e.from, e.to, e.ports, e.denied, e.allowed]),
    entities: i.entities.map((e) => [e.key, e.position, e.role]).sort(),
    byRule: i.evidence.byRule,
    techniques: i.techniques,
  };
}
