// The metrics endpoint as the tests read it: a node's scrape (over the rig), one sample's value, and the
// sample alerting rules (hw-fixtures/prometheus/vigil-alerts.yml) with the metric names they read.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { parse } from 'yaml';

import { packageRoot } from '../../src/util/package-root.js';
import type { TestCluster } from './cluster.js';

/** Where fenced clusters' agents serve their metrics, inside each node's namespace. */
export const METRICS_LISTEN = '127.0.0.1:9464';

/** GET /metrics of `node`'s vigild, from inside its namespace. */
export async function scrape(c: TestCluster, node: string): Promise<string> {
  const r = await c.rig.exec(node, [process.execPath, '-e',
    `fetch('http://${METRICS_LISTEN}/metrics').then(async (r) => { process.stdout.write(await r.text()); process.exit(r.ok ? 0 : 1); }, () => process.exit(2))`], { timeout: 20_000 });
  if (r.code !== 0) throw new Error(`scrape of ${node} failed (${r.code}): ${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** The value of the sample whose line starts with `series` (name and labels, exactly as printed); undefined: none. */
export function sampleValue(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

export const ALERT_RULES = join(packageRoot(), 'hw-fixtures/prometheus/vigil-alerts.yml');
export const ALERT_RULES_TEST = join(packageRoot(), 'hw-fixtures/prometheus/vigil-alerts.test.yml');

export interface AlertRule { alert: string; expr: string; labels?: Record<string, string>; annotations?: Record<string, string> }

export function alertRules(): AlertRule[] {
  const doc = parse(readFileSync(ALERT_RULES, 'utf8')) as { groups: { rules: AlertRule[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}

/** Every vigil_* metric name the rules' expressions read. */
export function ruleMetrics(): string[] {
  return [...new Set(alertRules().flatMap((r) => r.expr.match(/\bvigil_[a-z0-9_]+/g) ?? []))].sort();
}

/** The metric names a scrape declares (# TYPE lines: a metric without samples is declared too). */
export function declaredMetrics(scrape: string): Set<string> {
  return new Set([...scrape.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
}
