// `make soak` runs the fault tests longer: more events and more kills. `make test` keeps the
// same tests at a size that fits its 10-minute budget on 2 cores; the soak sizes are what a
// release should pass. EDDY_SOAK is read here only (only the kit reads the environment).
const SOAK = process.env.EDDY_SOAK === '1';

/** `quick` under `make test`, `soak` under `make soak`. */
export function soakSize(quick: number, soak: number): number {
  return SOAK ? soak : quick;
}

/** A test's time-out, scaled for the soak sizes. */
export function soakTimeoutMs(quickMs: number): number {
  return SOAK ? quickMs * 5 : quickMs;
}

/**
 * For a test that runs under `make soak` only: the reason it is skipped in `make test`, or
 * undefined (run it) under `make soak`.
 */
export function soakOnly(reason: string): string | undefined {
  return SOAK ? undefined : reason;
}

/**
 * Events a soak-only test publishes: EDDY_SOAK_EVENTS when set (a shorter run of the release
 * soak, to fit the time at hand), else `soak`.
 */
export function soakEvents(soak: number): number {
  const override = Number(process.env.EDDY_SOAK_EVENTS);
  return Number.isSafeInteger(override) && override > 0 ? override : soak;
}
