import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Redis from 'ioredis';
import { OUTPUT_DIR } from '../../bench/support/cordon-process';
import { colourOn, palette } from '../../src/cli/terminal';
import { ProgressBar } from '../../src/io/progress';
import { BASE, tmpDir, writeFixture } from '../playbook/helpers';
import { IncidentStore } from '../../src/incidents/store';
import { syntheticIncident } from '../contain/support';
import { Kafka, logLevel } from 'kafkajs';
import { KAFKA_BROKERS, REDIS_URL, uniq } from '../support/stack';
import { cordonIn } from './support';
import { createTopicsReady } from '../../src/kafka';

const RECORDING = resolve(__dirname, '../../../shared/datasets/otrf-lateral-movement/covenant_sharpsc_create_dcerpc_smb_svcctl.jsonl.gz');
const ESC = '\x1b[';

describe('colour: NO_COLOR, FORCE_COLOR and TTY detection', () => {
  const tty = { write: () => true, isTTY: true };
  const pipe = { write: () => true, isTTY: false };

  it('colours a terminal only; NO_COLOR (any value) wins over FORCE_COLOR; FORCE_COLOR colours a pipe unless 0 or false', () => {
    expect(colourOn(tty, {})).toBe(true);
    expect(colourOn(pipe, {})).toBe(false);
    expect(colourOn(tty, { TERM: 'dumb' })).toBe(false);
    expect(colourOn(tty, { NO_COLOR: '1' })).toBe(false);
    expect(colourOn(tty, { NO_COLOR: '' })).toBe(true); // no-color.org: only a non-empty value counts
    expect(colourOn(tty, { NO_COLOR: '1', FORCE_COLOR: '1' })).toBe(false);
    expect(colourOn(pipe, { FORCE_COLOR: '1' })).toBe(true);
    expect(colourOn(tty, { FORCE_COLOR: '0' })).toBe(false);
    expect(colourOn(tty, { FORCE_COLOR: 'false' })).toBe(false);
    expect(palette(false).red('x')).toBe('x');
    expect(palette(true).red('x')).toBe('\x1b[31mx\x1b[39m');
  });

  it('cordon replay prints text without escapes to a pipe and under NO_COLOR, with them on a terminal or under FORCE_COLOR', async () => {
    const piped = await cordonIn(['replay', '--format', 'wfp', RECORDING]);
    expect(piped.code).toBe(0);
    expect(piped.out).toMatch(/^\S+ {2}(HIGH|CRITICAL|MEDIUM|LOW) {2}score \d+/);
    expect(piped.out).toContain('  targets:    ');
    expect(piped.out).not.toContain(ESC);
    expect((await cordonIn(['replay', '--format', 'wfp', RECORDING], { tty: true, env: { NO_COLOR: '1' } })).out).not.toContain(ESC);
    expect((await cordonIn(['replay', '--format', 'wfp', RECORDING], { tty: true })).out).toContain(`${ESC}1m`);
    expect((await cordonIn(['replay', '--format', 'wfp', RECORDING], { env: { FORCE_COLOR: '1' } })).out).toContain(`${ESC}1m`);
  });
});

describe('output flags: text for people by default, --json on every command', () => {
  it('cordon replay --json prints one incident a line, never coloured', async () => {
    const { out, code } = await cordonIn(['replay', '--format', 'wfp', '--json', RECORDING], { tty: true, env: { FORCE_COLOR: '1' } });
    expect(code).toBe(0);
    expect(out).not.toContain(ESC);
    const incidents = out.trim().split('\n').map((l) => JSON.parse(l) as { entities: Array<{ ip?: string }> });
    expect(incidents).toHaveLength(1);
    expect(incidents[0]!.entities.map((e) => e.ip)).toContain('172.18.39.6');
  });

  it('cordon incidents: text by default, --json as JSON lines, --text still accepted with a deprecation note (real Redis)', async () => {
    const prefix = uniq('cli-incidents');
    const redis = new Redis(REDIS_URL);
    try {
      const incident = syntheticIncident('cli-incidents');
      await new IncidentStore(redis, prefix).putAll([{ kind: 'incident', id: incident.id, version: 1, lastSeen: incident.lastSeen, json: JSON.stringify(incident) }]);
      const file = join(OUTPUT_DIR, `${prefix}.json`);
      writeFileSync(file, JSON.stringify({ redis: { url: REDIS_URL, keyPrefix: prefix } }));
      const text = await cordonIn(['incidents', '-c', file]);
      expect(text).toEqual({ code: 0, err: '', out: expect.stringMatching(new RegExp(`^inc-cli-incidents {2}HIGH {2}score 40 {2}confidence 0\\.9 {2}open\\n {2}root: {7}${incident.root}\\n`)) });
      const json = await cordonIn(['incidents', '--json', '-c', file]);
      expect(JSON.parse(json.out)).toMatchObject({ id: incident.id, root: incident.root });
      const old = await cordonIn(['incidents', '--text', '-c', file]);
      expect(old.out).toBe(text.out);
      expect(old.err).toBe('cordon incidents: --text is deprecated, text is the default (--json for JSON lines)\n');
      expect((await cordonIn(['incidents', '--help'])).out).not.toContain('--text');
    } finally {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
    }
  });

  it('every command that prints a result offers --json', async () => {
    for (const command of [['replay'], ['produce'], ['simulate'], ['incidents'], ['approve'], ['deny'], ['quarantine'], ['extend'], ['release'], ['playbook', 'test'], ['playbook', 'validate'], ['audit', 'verify'], ['audit', 'rebuild']]) {
      expect([command.join(' '), (await cordonIn([...command, '--help'])).out]).toEqual([command.join(' '), expect.stringContaining('--json')]);
    }
  });
});

describe('progress on stderr: on a terminal, or forced; silent otherwise', () => {
  const summary = /^replayed \d+ events from 1 file\(s\): 1 incident\(s\)/;

  it('piped, cordon replay writes only its summary to stderr', async () => {
    const { err, code } = await cordonIn(['replay', '--format', 'wfp', RECORDING]);
    expect(code).toBe(0);
    expect(err).toMatch(summary);
    expect(err).not.toContain('records/s');
  });

  it('--progress forces it on a pipe (plain lines); on a terminal it redraws one line; --no-progress silences a terminal', async () => {
    const forced = await cordonIn(['replay', '--format', 'wfp', '--progress', RECORDING]);
    const last = forced.err.split('\n').filter((l) => l.startsWith('replay [')).at(-1);
    expect(last).toMatch(/^replay \[#{20}\] 100% \d+\.\d\/\d+\.\d MB, [\d,]+ records, [\d,]+ records\/s$/);
    expect(forced.err).not.toContain('\r');
    const records = Number(/, ([\d,]+) records,/.exec(last!)![1]!.replace(/,/g, ''));
    expect(records).toBeGreaterThan(100);

    const tty = await cordonIn(['replay', '--format', 'wfp', RECORDING], { tty: true });
    expect(tty.err).toMatch(/\rreplay \[#{20}\] 100% .* records\/s\x1b\[K\n/);
    const silenced = await cordonIn(['replay', '--format', 'wfp', '--no-progress', RECORDING], { tty: true });
    expect(silenced.err).toMatch(summary);
  });
});

describe('progress on simulate and produce', () => {
  it('simulate --progress draws its bar to the last record, the records on disk', async () => {
    const out = tmpDir();
    const { err, code } = await cordonIn(['simulate', '--preset', 'small', '--max-records', '3000', '--out', out, '--progress']);
    expect(code).toBe(0);
    expect(err.split('\n').filter((l) => l.startsWith('simulate [')).at(-1)).toMatch(/^simulate \[#{20}\] 100% 3,000\/3,000, 3,000 records, [\d,]+ records\/s$/);
  });

  it('produce --progress draws its bar while it sends a recording to the real Kafka', async () => {
    const topic = uniq('produce-progress');
    const kafka = new Kafka({ brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await createTopicsReady(admin, [{ topic, numPartitions: 1 }]);
    try {
      const { out, err, code } = await cordonIn(['produce', '--format', 'wfp', '--topic', topic, '--progress', RECORDING]);
      expect(code).toBe(0);
      expect(out).toMatch(new RegExp(` record\\(s\\) from .* to ${topic}\\n$`));
      const last = err.split('\n').filter((l) => l.startsWith(`produce ${RECORDING} [`)).at(-1);
      expect(last).toMatch(/ \[#{20}\] 100% .*, [\d,]+ records, [\d,]+ records\/s$/);
      const offsets = await admin.fetchTopicOffsets(topic);
      expect(Number(offsets[0]!.high)).toBe(Number(/, ([\d,]+) records,/.exec(last!)![1]!.replace(/,/g, '')));
    } finally {
      await admin.deleteTopics({ topics: [topic] });
      await admin.disconnect();
    }
  }, 60_000);
});

describe('ProgressBar', () => {
  it('redraws a terminal at most ten times a second and a forced pipe once a second; records/s from the clock; silent unforced on a pipe', () => {
    let now = 0;
    const draw = (isTTY: boolean, force?: boolean) => {
      now = 0;
      const stream = { text: '', isTTY, write: (t: string) => void (stream.text += t) };
      const bar = new ProgressBar('produce f', 1000, { stream, force, unit: 'records', now: () => now });
      for (now = 0; now <= 2000; now += 10) bar.update(now / 2);
      now = 2000;
      bar.finish();
      return stream.text;
    };
    const tty = draw(true);
    expect(tty.split('\r').length - 1).toBe(21 + 1); // every 100 ms over 2 s, and the final draw
    expect(tty.slice(tty.lastIndexOf('\r'))).toBe('\rproduce f [####################] 100% 1,000/1,000, 1,000 records, 500 records/s\x1b[K\n');
    const forced = draw(false, true).trim().split('\n');
    expect(forced).toEqual([
      'produce f [----------]   0% 0/1,000, 0 records, 0 records/s'.replace('[----------]', `[${'-'.repeat(20)}]`),
      `produce f [${'#'.repeat(10)}${'-'.repeat(10)}]  50% 500/1,000, 500 records, 500 records/s`,
      `produce f [${'#'.repeat(20)}] 100% 1,000/1,000, 1,000 records, 500 records/s`,
      `produce f [${'#'.repeat(20)}] 100% 1,000/1,000, 1,000 records, 500 records/s`,
    ]);
    expect(draw(false)).toBe('');
    expect(draw(true, false)).toBe('');
  });
});

describe('cordon playbook validate --json', () => {
  it('lists the valid playbooks and every issue with its place; exit 1 when any file is bad', async () => {
    const dir = tmpDir();
    const good = writeFixture(dir, 'good.yaml', BASE);
    const bad = writeFixture(dir, 'bad.yaml', BASE.replace('name: auto', 'name: other').replace('priority: 10', 'priority: 11').replace('    ttl: 1h\n', ''));
    const r = await cordonIn(['playbook', 'validate', '--json', good, bad]);
    expect(r.code).toBe(1);
    const result = JSON.parse(r.out) as { valid: Array<{ id: string; file: string }>; issues: unknown[] };
    expect(result.valid).toEqual([{ id: expect.stringMatching(/^auto@[0-9a-f]{12}$/), file: good }]);
    expect(result.issues).toEqual([{ file: bad, line: 14, col: 5, path: 'steps.1.ttl', message: 'required for a quarantine step' }]);
    expect(JSON.parse((await cordonIn(['playbook', 'validate', '--json', good])).out)).toMatchObject({ issues: [] });
  });
});
