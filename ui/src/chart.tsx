// A uPlot chart in a Preact component: created once per series layout and theme, fed new data on
// every update, resized with its container.
import uPlot from 'uplot';
import { useEffect, useRef } from 'preact/hooks';

export interface ChartProps {
  /** Rebuild the chart when this changes (series or theme); data alone only calls setData. */
  layoutKey: string;
  options: (width: number) => uPlot.Options;
  data: uPlot.AlignedData;
  height?: number;
  testId?: string;
  /** data-* attributes on the chart's element: what it draws, for tests (a canvas cannot be read as text). */
  attributes?: Record<string, string | number>;
}

export function Chart(props: ChartProps) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  useEffect(() => {
    const el = host.current!;
    const p = new uPlot(props.options(el.clientWidth || 600), props.data, el);
    plot.current = p;
    const observer = new ResizeObserver(() => p.setSize({ width: el.clientWidth, height: props.height ?? 220 }));
    observer.observe(el);
    return () => {
      observer.disconnect();
      p.destroy();
      plot.current = null;
    };
  }, [props.layoutKey]);
  useEffect(() => {
    plot.current?.setData(props.data);
  }, [props.data]);
  const data = Object.fromEntries(Object.entries(props.attributes ?? {}).map(([k, v]) => [`data-${k}`, String(v)]));
  return <div class="chart" ref={host} data-testid={props.testId} {...data} />;
}

/** Axis and grid colours from the page's CSS variables (they differ per scheme). */
export function axisStyle(): Pick<uPlot.Axis, 'stroke' | 'grid' | 'ticks'> {
  const css = getComputedStyle(document.documentElement);
  const fg = css.getPropertyValue('--muted').trim() || '#888';
  const grid = css.getPropertyValue('--grid').trim() || '#8883';
  return { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
}
