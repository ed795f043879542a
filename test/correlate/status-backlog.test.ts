import type { StatusRequest } from '../../src/incidents/lifecycle';
import { StatusBacklog } from '../../src/correlate/status-backlog';

const request = (incident: string, status: StatusRequest['status'], at = 0): StatusRequest => ({
  incident,
  root: 'pod:shop/web-1',
  status,
  actor: 'playbook:auto',
  reason: 'test',
  at,
});

describe('status requests waiting for their incident', () => {
  it('applies them in order once their incident is known, and keeps the rest', () => {
    const backlog = new StatusBacklog();
    backlog.add(request('inc-a', 'containing'), 0);
    backlog.add(request('inc-b', 'containing'), 0);
    backlog.add(request('inc-a', 'contained'), 0);
    const applied: string[] = [];
    const known = new Set(['inc-a']);
    const expired = backlog.retry((r) => (known.has(r.incident) ? (applied.push(`${r.incident}:${r.status}`), 'applied') : 'unknown'), 1_000);
    expect(applied).toEqual(['inc-a:containing', 'inc-a:contained']);
    expect(expired).toEqual([]);
    expect(backlog.toJSON().map((w) => w.request.incident)).toEqual(['inc-b']);
  });

  it('gives up a request whose incident never comes back, after the age limit', () => {
    const backlog = new StatusBacklog([], { maxAgeMs: 60_000, maxSize: 10 });
    backlog.add(request('inc-gone', 'released'), 0);
    expect(backlog.retry(() => 'unknown', 60_000)).toEqual([]);
    expect(backlog.retry(() => 'unknown', 60_001).map((w) => w.request.incident)).toEqual(['inc-gone']);
    expect(backlog.size).toBe(0);
  });

  it('drops the oldest beyond its size, and survives a snapshot round trip', () => {
    const backlog = new StatusBacklog([], { maxAgeMs: 60_000, maxSize: 2 });
    expect(backlog.add(request('inc-1', 'containing'), 1)).toEqual([]);
    backlog.add(request('inc-2', 'containing'), 2);
    expect(backlog.add(request('inc-3', 'containing'), 3).map((w) => w.request.incident)).toEqual(['inc-1']);
    const restored = new StatusBacklog(JSON.parse(JSON.stringify(backlog)) as never);
    expect(restored.toJSON()).toEqual(backlog.toJSON());
  });
});
