// What the worker process uses (resident memory, CPU), sent with every heartbeat so that the
// coordinator's dashboard can show it next to the worker's key groups and state size.

export interface ProcessUsageSample {
  rssBytes: number;
  /** CPU time (user + system) since the previous sample per wall-clock time: 1.0 is one core busy. */
  cpuCores: number;
}

export class ProcessUsage {
  #cpu = process.cpuUsage();
  #atNs = process.hrtime.bigint();

  sample(): ProcessUsageSample {
    const nowNs = process.hrtime.bigint();
    const cpu = process.cpuUsage(this.#cpu);
    const wallUs = Number(nowNs - this.#atNs) / 1000;
    this.#cpu = process.cpuUsage();
    this.#atNs = nowNs;
    return { rssBytes: process.memoryUsage.rss(), cpuCores: wallUs > 0 ? (cpu.user + cpu.system) / wallUs : 0 };
  }
}
