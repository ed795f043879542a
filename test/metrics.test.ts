import pkg from '../package.json';
import { ALERT_SOURCES } from '../src/alerts/routes';
import type { Config } from '../src/config';
import { reasonClass } from '../src/ingest/dead-letter';
import { buildCommit, KNOWN_LABELS, Metrics } from '../src/metrics';
import { Service } from '../src/service';
import { createTopics, deleteTopics, testKafka } from './support/kafka';
import { testConfig, testLog } from './support/stack';

const series = (text: string, name: string) => text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));

describe('metrics names and series', () => {
  it('Node\'s default metrics keep their stock names, process_* and nodejs_*, with no cordon_ prefix', async () => {
    const text = await new Metrics().registry.metrics();
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_version_info']) {
      expect([name, text.includes(`\n# TYPE ${name} `)]).toEqual([name, true]);
    }
    expect(text).not.toMatch(/cordon_(process|nodejs)_/);
  });

  it('cordon_build_info is 1 with the version, the runtime and the commit when CORDON_COMMIT names one', async () => {
    expect(series(await new Metrics({ defaultMetrics: false, commit: 'abc1234' }).registry.metrics(), 'cordon_build_info')).toEqual([
      `cordon_build_info{version="${pkg.version}",node="${process.version}",commit="abc1234"} 1`,
    ]);
    expect(buildCommit({ CORDON_COMMIT: 'not a commit"} 1\nx' })).toBeUndefined();
    expect(buildCommit({ CORDON_COMMIT: ' 0123456789abcdef0123456789abcdef01234567 ' })).toBe('0123456789abcdef0123456789abcdef01234567');
    expect(series(await new Metrics({ defaultMetrics: false, commit: '' }).registry.metrics(), 'cordon_build_info')).toEqual([`cordon_build_info{version="${pkg.version}",node="${process.version}"} 1`]);
  });

  it('every labelled series is exported at 0 from start, for each known label value', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.knowInputs([{ topic: 'flows', format: 'hubble' }, { topic: 'any', format: 'auto' }]);
    const text = await m.registry.metrics();
    expect(series(text, 'cordon_ingest_records_total')).toEqual(['flows', 'any'].flatMap((t) => ['event', 'skip', 'reject'].map((o) => `cordon_ingest_records_total{topic="${t}",outcome="${o}"} 0`)));
    expect(series(text, 'cordon_ingest_rejects_total')).toContain('cordon_ingest_rejects_total{topic="flows",reason="hubble_invalid_field"} 0');
    expect(series(text, 'cordon_ingest_rejects_total')).toHaveLength(2 * KNOWN_LABELS.rejectReasons.length + 1);
    expect(series(text, 'cordon_quarantine_changes_total')).toEqual(['applied', 'released', 'expired', 'failed'].map((k) => `cordon_quarantine_changes_total{kind="${k}"} 0`));
    expect(series(text, 'cordon_consumer_crashes_total')).toHaveLength(KNOWN_LABELS.consumers.length * 2);
    expect(series(text, 'cordon_consumer_restarts_total')).toContain('cordon_consumer_restarts_total{consumer="correlate"} 0');
    expect(series(text, 'cordon_alerts_total')).toContain('cordon_alerts_total{source="elastic",outcome="unauthorized"} 0');
    expect(series(text, 'cordon_ledger_checkpoints_total')).toEqual(['cordon_ledger_checkpoints_total{outcome="written"} 0', 'cordon_ledger_checkpoints_total{outcome="failed"} 0']);
    expect(series(text, 'cordon_incidents_total')).toContain('cordon_incidents_total{change="incident_opened"} 0');
    expect(text).toContain('cordon_batch_duration_seconds_count{stage="correlate"} 0');
    m.quarantineChanges.inc({ kind: 'applied' });
    expect(series(await m.registry.metrics(), 'cordon_quarantine_changes_total')[0]).toBe('cordon_quarantine_changes_total{kind="applied"} 1');
  });

  it('the known label values are the ones the code uses', () => {
    expect([...KNOWN_LABELS.alertSources]).toEqual([...ALERT_SOURCES]);
    for (const reason of ['malformed JSON at 1:2', 'hubble: forbidden key __proto__', 'too large: 2000000 bytes', 'whatever else']) {
      expect(KNOWN_LABELS.rejectReasons).toContain(reasonClass(reason));
    }
  });
});

describe('a running service\'s /metrics', () => {
  const kafka = testKafka();
  let config: Config;
  let service: Service | undefined;
  afterAll(async () => {
    await service?.stop();
    await deleteTopics(kafka, config);
  });

  it('shows the input topics\' series at 0, stock process metrics and cordon_build_info before any record arrives', async () => {
    config = testConfig('metrics-svc', { contain: { enabled: false } });
    await createTopics(kafka, config);
    service = new Service(config, testLog);
    await service.start();
    const text = await (await fetch(`http://127.0.0.1:${(service.http.server.address() as { port: number }).port}/metrics`)).text();
    for (const input of config.kafka.inputs) expect(text).toContain(`cordon_ingest_records_total{topic="${input.topic}",outcome="reject"} 0`);
    expect(text).toMatch(/\nprocess_cpu_seconds_total \d/);
    expect(text).toMatch(new RegExp(`\\ncordon_build_info\\{version="${pkg.version}",node="${process.version}"[^}]*\\} 1\\n`));
  }, 60_000);
});
