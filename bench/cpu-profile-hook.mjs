// Preloaded with NODE_OPTIONS="--import <this file>" by bench/profile.ts (--cpu-prof is not allowed
// in NODE_OPTIONS): profiles the whole process with the inspector and writes
// $EDDY_CPU_PROFILE_DIR/<pid>.cpuprofile when it exits (process.exit, as Eddy's roles do on SIGTERM).
// With EDDY_CPU_PROFILE_ON_SIGNAL=1 it profiles only between two SIGUSR2 (bench/serving-profile.ts:
// the reads, not the start and the processing before them) and writes <pid>-<n>.cpuprofile at the
// second. It sees only the process's main thread (a job's thread is not profiled: run the workers
// with EDDY_JOB_ISOLATION=none to see the job's side).
// With EDDY_HEAP_PROFILE_DIR it samples allocations instead (every 16 KB allocated, collected
// objects included: what was allocated, not what is left) and writes <pid>.heapprofile at exit
// (bench/profile.ts alloc). With EDDY_GC_TRACE it turns on V8's GC trace (below).
import { Session } from 'node:inspector';
import { setFlagsFromString } from 'node:v8';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.EDDY_CPU_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 500 });
  if (process.env.EDDY_CPU_PROFILE_ON_SIGNAL) {
    let running = false;
    let written = 0;
    process.on('SIGUSR2', () => {
      if (!running) {
        session.post('Profiler.start');
        running = true;
        return;
      }
      running = false;
      session.post('Profiler.stop', (err, result) => {
        if (!err) writeFileSync(join(dir, `${process.pid}-${++written}.cpuprofile`), JSON.stringify(result.profile));
      });
    });
  } else {
    session.post('Profiler.start');
    // The in-thread session answers synchronously, so this completes inside the 'exit' handler.
    process.on('exit', () => {
      session.post('Profiler.stop', (err, result) => {
        if (!err) writeFileSync(join(dir, `${process.pid}.cpuprofile`), JSON.stringify(result.profile));
      });
    });
  }
}

// EDDY_GC_TRACE: V8 prints a line per collection of every heap of the process (a job's thread's
// too: V8's flags are the process's) to stdout (bench/profile.ts gc).
if (process.env.EDDY_GC_TRACE) setFlagsFromString('--trace-gc-nvp');

const heapDir = process.env.EDDY_HEAP_PROFILE_DIR;
if (heapDir) {
  const session = new Session();
  session.connect();
  session.post('HeapProfiler.enable');
  session.post('HeapProfiler.startSampling', { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  process.on('exit', () => {
    session.post('HeapProfiler.stopSampling', (err, result) => {
      if (!err) writeFileSync(join(heapDir, `${process.pid}.heapprofile`), JSON.stringify(result.profile));
    });
  });
}
