// The job graph: sources, stages and sinks laid out left to right by dagre, drawn as SVG, each
// stage with its live rates, backpressure and dead letters.
import { Graph, layout } from '@dagrejs/dagre';
import { useMemo } from 'preact/hooks';
import type { GraphEdge, GraphNode, StageView } from '../../coordinator/dashboard/api.ts';
import { count, percent, rate } from './format.ts';

const SIZE = { source: { w: 170, h: 50 }, sink: { w: 170, h: 50 }, stage: { w: 230, h: 104 } } as const;

interface Placed {
  nodes: Array<GraphNode & { x: number; y: number; w: number; h: number }>;
  edges: Array<GraphEdge & { points: Array<{ x: number; y: number }> }>;
  width: number;
  height: number;
}

function place(nodes: GraphNode[], edges: GraphEdge[]): Placed {
  const g = new Graph({ multigraph: true });
  g.setGraph({ rankdir: 'LR', nodesep: 28, ranksep: 70, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of nodes) g.setNode(n.id, { width: SIZE[n.kind].w, height: SIZE[n.kind].h });
  edges.forEach((e, i) => g.setEdge(e.from, e.to, {}, String(i)));
  layout(g);
  const out: Placed = { nodes: [], edges: [], width: g.graph().width ?? 0, height: g.graph().height ?? 0 };
  for (const n of nodes) {
    const p = g.node(n.id) as { x: number; y: number; width: number; height: number };
    out.nodes.push({ ...n, x: p.x - p.width / 2, y: p.y - p.height / 2, w: p.width, h: p.height });
  }
  edges.forEach((e, i) => {
    const p = g.edge({ v: e.from, w: e.to, name: String(i) }) as { points?: Array<{ x: number; y: number }> };
    out.edges.push({ ...e, points: p.points ?? [] });
  });
  return out;
}

function path(points: Array<{ x: number; y: number }>): string {
  if (points.length === 0) return '';
  const [first, ...rest] = points;
  if (rest.length === 0) return `M${first!.x},${first!.y}`;
  // A smooth curve through dagre's points (quadratic segments to the midpoints).
  let d = `M${first!.x},${first!.y}`;
  for (let i = 0; i < rest.length - 1; i++) {
    const a = rest[i]!;
    const b = rest[i + 1]!;
    d += ` Q${a.x},${a.y} ${(a.x + b.x) / 2},${(a.y + b.y) / 2}`;
  }
  const last = rest[rest.length - 1]!;
  return `${d} L${last.x},${last.y}`;
}

function clip(text: string, chars: number): string {
  return text.length > chars ? `${text.slice(0, chars - 1)}…` : text;
}

export function JobGraph(props: { nodes: GraphNode[]; edges: GraphEdge[]; stages: StageView[] }) {
  const key = JSON.stringify([props.nodes, props.edges]);
  const placed = useMemo(() => place(props.nodes, props.edges), [key]);
  const stages = new Map(props.stages.map((s) => [s.stageId, s]));
  return (
    <div class="graph-scroll">
      <svg class="graph" width={placed.width} height={placed.height} viewBox={`0 0 ${placed.width} ${placed.height}`} role="img" aria-label="job graph" data-testid="job-graph">
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M0,0 L10,5 L0,10 z" class="arrow" />
          </marker>
        </defs>
        {placed.edges.map((e) => {
          const mid = e.points[Math.floor(e.points.length / 2)];
          return (
            <g class={`edge edge-${e.kind}`}>
              <path d={path(e.points)} marker-end="url(#arrow)" />
              {(e.label || e.kind === 'shuffle' || e.kind === 'broadcast') && mid && (
                <text x={mid.x} y={mid.y - 6} text-anchor="middle" class="edge-label">
                  {e.label ? `${e.kind === 'side' ? '' : `${e.kind} `}${e.label}` : e.kind === 'shuffle' ? 'keyBy' : 'broadcast'}
                </text>
              )}
            </g>
          );
        })}
        {placed.nodes.map((n) => {
          const s = n.kind === 'stage' ? stages.get(n.id) : undefined;
          const pressure = s?.backpressureRatio ?? 0;
          return (
            <g class={`node node-${n.kind}${pressure > 0.5 ? ' node-pressured' : ''}`} transform={`translate(${n.x},${n.y})`} data-testid={`node-${n.id}`} data-kind={n.kind}>
              <title>{n.kind === 'stage' ? `${n.label}: ${(n.operators ?? []).join(' → ')}` : `${n.kind} ${n.label} (${n.detail})`}</title>
              <rect width={n.w} height={n.h} rx={n.kind === 'stage' ? 8 : 22} />
              <text x={12} y={20} class="node-title">{clip(n.label, n.kind === 'stage' ? 26 : 20)}</text>
              <text x={12} y={37} class="node-detail">
                {n.kind === 'stage' ? clip(`${n.detail} · ${(n.operators ?? []).join(' → ')}`, 34) : clip(`${n.kind} · ${n.detail}`, 24)}
              </text>
              {s && (
                <>
                  <text x={12} y={58} class="node-rate" data-testid={`rate-${n.id}`} data-in={s.recordsInPerSecond} data-out={s.recordsOutPerSecond}>
                    in {rate(s.recordsInPerSecond)} · out {rate(s.recordsOutPerSecond)}
                  </text>
                  <text x={12} y={76} class="node-detail">
                    {count(s.recordsIn)} in · {count(s.recordsOut)} out{s.deadLetters > 0 ? '' : ' · 0 dead letters'}
                  </text>
                  {s.deadLetters > 0 && (
                    <text x={n.w - 12} y={76} text-anchor="end" class="node-dlq">
                      {count(s.deadLetters)} dead letters
                    </text>
                  )}
                  <rect x={12} y={86} width={n.w - 24} height={6} rx={3} class="bp-track" />
                  <rect x={12} y={86} width={Math.max(0, (n.w - 24) * Math.min(1, pressure))} height={6} rx={3} class="bp-fill" />
                  <title>backpressure {percent(pressure)}</title>
                </>
              )}
            </g>
          );
        })}
      </svg>
    </div>
  );
}
