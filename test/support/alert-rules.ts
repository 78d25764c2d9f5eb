// The sample alerting rules (hw-fixtures/prometheus/vigil-alerts.yml), read for the tests that hold them to
// what vigild exports.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { parse } from 'yaml';

import { packageRoot } from '../../src/util/package-root.js';

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
