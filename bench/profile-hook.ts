/**
 * Preloaded into a `cordon run` child (NODE_OPTIONS=--require, since --cpu-prof is not allowed
 * there) by `BENCH_PROFILE=1 npm run bench:pipeline`: samples the CPU from start to exit and writes
 * a .cpuprofile into BENCH_PROFILE_DIR.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

const dir = process.env.BENCH_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 1000 });
  session.post('Profiler.start');
  process.on('exit', () => {
    // An in-process inspector session answers synchronously, so this completes before exit.
    session.post('Profiler.stop', (err, result) => {
      if (err) return;
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `cordon-${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}
