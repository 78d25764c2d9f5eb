// The sample alerting rules (hw-fixtures/prometheus/vigil-alerts.yml): Prometheus's own promtool accepts
// them and, fed the series of vigil-alerts.test.yml, fires exactly the alerts that file expects; every
// alert says what it means and what to do, and reads only metrics vigild declares. (That a real vigild
// exports them, with the right values after a failover: test/cluster/power-fence.test.ts.)
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

import t from 'tap';

import { metricsRegistry } from '../../src/daemon/metrics.js';
import { ALERT_RULES, ALERT_RULES_TEST, alertRules, declaredMetrics, ruleMetrics } from '../support/metrics.js';

function promtool(...args: string[]): { code: number | null; out: string } {
  const r = spawnSync('promtool', args, { encoding: 'utf8' });
  if (r.error) return { code: null, out: `promtool: ${r.error.message} (Debian package prometheus; scripts/setup installs it)` };
  return { code: r.status, out: r.stdout + r.stderr };
}

t.test('promtool check rules accepts the rules', async (t) => {
  const r = promtool('check', 'rules', ALERT_RULES);
  t.equal(r.code, 0, r.out);
  t.match(r.out, new RegExp(`SUCCESS: ${alertRules().length} rules found`));
});

t.test('promtool test rules: the alerts the test file expects fire, and no others', async (t) => {
  const r = promtool('test', 'rules', ALERT_RULES_TEST);
  t.equal(r.code, 0, r.out);
  t.match(r.out, /SUCCESS/);
});

t.test('every alert has a severity, a summary and a description, and is exercised by the test file', async (t) => {
  const tested = readFileSync(ALERT_RULES_TEST, 'utf8');
  for (const rule of alertRules()) {
    t.match(rule.labels?.severity, /^(warning|critical)$/, `${rule.alert}: severity`);
    t.ok((rule.annotations?.summary ?? '').length > 0, `${rule.alert}: summary`);
    t.ok((rule.annotations?.description ?? '').length > 40, `${rule.alert}: a description that says what to do`);
    t.ok(tested.includes(`alertname: ${rule.alert}\n`), `${rule.alert}: tested`);
  }
});

t.test('the rules read only metrics the endpoint declares', async (t) => {
  const status = {
    cluster: 'c', node: 'a', incarnation: '1', uptimeMs: 1, peers: [], heartbeat: undefined,
    messages: { sent: 0, received: 0, dropped: {} }, apps: [], notices: [],
  };
  const declared = declaredMetrics(await metricsRegistry(() => status).scrape());
  const used = ruleMetrics();
  t.ok(used.length >= 20, `${used.length} metrics used`);
  for (const name of used) t.ok(declared.has(name), name);
});
