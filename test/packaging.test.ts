import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { ENV, loadConfig } from '../src/config';

/**
 * The image and the compose service cannot be built here (no Docker engine); these checks hold
 * them to what the docs say: a multi-stage build, a non-root user, a health check on /healthz,
 * every COPY source present, a read-only root filesystem in compose, and an environment that
 * Cordon reads.
 */
const ROOT = path.resolve(__dirname, '..');
const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
const instructions = dockerfile
  .replace(/\\\n\s*/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const stages = instructions.reduce<string[][]>((acc, l) => (l.startsWith('FROM ') ? [...acc, [l]] : (acc[acc.length - 1]!.push(l), acc)), []);
const runtime = stages[stages.length - 1]!;

describe('the Dockerfile', () => {
  it('builds in one stage and runs from another, on Node 24', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const s of stages) expect(s[0]).toMatch(/^FROM node:24[-.\w]* AS \w+$/);
    expect(runtime.some((l) => l.startsWith('COPY --from=build'))).toBe(true);
    expect(runtime.some((l) => /npm (ci|install)/.test(l))).toBe(false); // no toolchain work in the runtime stage
  });

  it('runs as a non-root user, with a health check on /healthz and the service as its command', () => {
    const user = runtime.filter((l) => l.startsWith('USER ')).pop();
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^USER (root|0)(:|$)/);
    expect(runtime.find((l) => l.startsWith('HEALTHCHECK'))).toMatch(/http:\/\/127\.0\.0\.1:8080\/healthz/);
    expect(runtime).toContain('ENTRYPOINT ["node", "bin/cordon"]');
    expect(runtime).toContain('CMD ["run"]');
  });

  it('copies only what exists in the repository, and leaves node_modules and dist out of the context', () => {
    const sources = instructions.filter((l) => l.startsWith('COPY ') && !l.startsWith('COPY --from')).flatMap((l) => l.split(/\s+/).slice(1, -1));
    expect(sources.length).toBeGreaterThan(3);
    for (const s of sources) expect({ source: s, exists: existsSync(path.join(ROOT, s)) }).toEqual({ source: s, exists: true });
    const ignored = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n');
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', '.git']));
  });

  it('compiles the service from src alone (tsconfig.image.json leaves bench and test out)', () => {
    const image = JSON.parse(readFileSync(path.join(ROOT, 'tsconfig.image.json'), 'utf8')) as { include: string[] };
    expect(image.include).toEqual(['src']);
    expect(dockerfile).toContain('tsc -p tsconfig.image.json');
  });
});

describe('docker-compose.yml', () => {
  const compose = YAML.parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')) as {
    services: Record<string, { build?: string; read_only?: boolean; tmpfs?: string[]; environment?: Record<string, string>; depends_on?: Record<string, unknown>; ports?: string[] }>;
  };
  const cordon = compose.services.cordon!;

  it('runs Cordon from the Dockerfile, read-only, after its dependencies are healthy', () => {
    expect(cordon.build).toBe('.');
    expect(cordon.read_only).toBe(true);
    expect(cordon.tmpfs).toEqual(['/tmp']);
    expect(Object.keys(cordon.depends_on ?? {}).sort()).toEqual(['elasticsearch', 'kafka', 'redis']);
    expect(cordon.ports).toEqual(['127.0.0.1:8080:8080']);
  });

  it('gives Cordon only environment variables it reads, pointing at the compose services', () => {
    const env = cordon.environment ?? {};
    expect(Object.keys(env).filter((name) => !Object.hasOwn(ENV, name))).toEqual([]);
    const config = loadConfig({ env });
    expect(config.kafka.brokers).toEqual(['kafka:19092']);
    expect(config.redis.url).toBe('redis://redis:6379');
    expect(config.elasticsearch.url).toBe('http://elasticsearch:9200');
    expect(config.http).toMatchObject({ host: '0.0.0.0', port: 8080 });
  });

  it('the broker advertises the address the cordon container uses', () => {
    const kafka = compose.services.kafka!.environment!;
    expect(kafka.KAFKA_ADVERTISED_LISTENERS).toContain('INTERNAL://kafka:19092');
    expect(kafka.KAFKA_LISTENERS).toContain('INTERNAL://:19092');
  });
});
