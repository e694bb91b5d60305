/**
 * The Prometheus text exposition format (version 0.0.4): `# HELP` and `# TYPE` once per
 * family, then its samples; label values and help texts escaped as the format requires.
 */
import type { HistogramSnapshot } from "./histogram.ts";

/** Content-Type of a `/metrics` answer. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Family types this server exports. */
export type MetricType = "counter" | "gauge" | "histogram";

/** Label names to values. Names must match `[a-zA-Z_][a-zA-Z0-9_]*` (ours are constants). */
export type Labels = Readonly<Record<string, string>>;

/** One sample of a counter or gauge family. */
export interface Sample {
  labels?: Labels;
  value: number;
}

/** `\`, `"` and newline escaped, as label values need. */
export function escapeLabelValue(v: string): string {
  return v.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));
}

/** `\` and newline escaped, as HELP texts need. */
export function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => (c === "\n" ? "\\n" : "\\\\"));
}

/** A sample value: integers as is, `+Inf`/`-Inf`/`NaN` spelled as Prometheus does. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

function formatLabels(labels: Labels | undefined): string {
  if (!labels) return "";
  const parts: string[] = [];
  for (const [k, v] of Object.entries(labels)) parts.push(`${k}="${escapeLabelValue(v)}"`);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

/** Builds one exposition text. Each family name may be added once. */
export class PrometheusText {
  private readonly lines: string[] = [];

  /** @param common Labels every sample gets, before its own (e.g. the host). */
  constructor(private readonly common: Labels = {}) {}

  private header(name: string, type: MetricType, help: string): void {
    this.lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
  }

  /** A counter or gauge family. */
  family(name: string, type: "counter" | "gauge", help: string, samples: readonly Sample[]): this {
    this.header(name, type, help);
    for (const s of samples) {
      this.lines.push(`${name}${formatLabels({ ...this.common, ...s.labels })} ${formatValue(s.value)}`);
    }
    return this;
  }

  /** A histogram family: cumulative `_bucket{le}` (ending with `+Inf`), `_sum`, `_count`. */
  histogram(name: string, help: string, h: HistogramSnapshot, own: Labels = {}): this {
    this.header(name, "histogram", help);
    const labels = { ...this.common, ...own };
    let cumulative = 0;
    h.bounds.forEach((le, i) => {
      cumulative += h.counts[i]!;
      this.lines.push(`${name}_bucket${formatLabels({ ...labels, le: formatValue(le) })} ${cumulative}`);
    });
    this.lines.push(`${name}_bucket${formatLabels({ ...labels, le: "+Inf" })} ${h.count}`);
    this.lines.push(`${name}_sum${formatLabels(labels)} ${formatValue(h.sum)}`);
    this.lines.push(`${name}_count${formatLabels(labels)} ${h.count}`);
    return this;
  }

  /** The text, ending with a newline as the format requires. */
  toString(): string {
    return this.lines.length === 0 ? "" : `${this.lines.join("\n")}\n`;
  }
}
