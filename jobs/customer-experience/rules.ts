// Colour rules per data-point type. Kept apart from the job so that tests and the demo's
// generator compute expectations from the same thresholds, independently of the runtime.

export type Colour = 'GREEN' | 'RED';

export interface Indicator {
  entityId: string;
  /** Data-point type, e.g. "packetErrors". */
  type: string;
  value: number;
  /** Event time, ms since the epoch. */
  ts: number;
}

export interface IndicatorValue {
  value: number;
  ts: number;
  colour: Colour;
}

export interface Trigger {
  entityId: string;
  type: string;
  value: number;
  ts: number;
}

/** RED when the value crosses the type's threshold in its bad direction. */
export const RULES: Record<string, { threshold: number; redWhen: 'above' | 'below' }> = {
  packetErrors: { threshold: 100, redWhen: 'above' },
  uptimePercent: { threshold: 99, redWhen: 'below' },
  firmwareErrors: { threshold: 0, redWhen: 'above' },
  wifiDriverErrors: { threshold: 5, redWhen: 'above' },
  signalDbm: { threshold: -80, redWhen: 'below' },
  rebootCount: { threshold: 3, redWhen: 'above' },
};

export function colourOf(e: Pick<Indicator, 'type' | 'value'>): Colour {
  const rule = RULES[e.type];
  if (!rule) return 'GREEN';
  const bad = rule.redWhen === 'above' ? e.value > rule.threshold : e.value < rule.threshold;
  return bad ? 'RED' : 'GREEN';
}
