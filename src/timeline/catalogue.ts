// The event catalogue of `vigil timeline`: which agent log line is which incident event. One table, read
// off the agent's code (src/daemon, src/db/flows.ts): a test checks that every message and notice named
// here still occurs in the sources, so a renamed message breaks that test instead of silently dropping
// an event from the timeline.

/** The phases of an incident, in the order a takeover passes through them. */
export const PHASES = [
  'power', 'distress', 'detection', 'fence', 'mount', 'address', 'app start', 'switchover', 'first client answer',
] as const;
export type Phase = (typeof PHASES)[number];

/** How a log line is recognised: its `msg` exactly or by prefix, or its `notice` field (Notices.add). */
export type Match =
  | { msg: string; resourcePrefix?: string }
  | { msgPrefix: string }
  | { notice: string };

export interface CatalogueEntry {
  match: Match;
  kind: string;
  phase: Phase;
  /** Where the line comes from: 'agent' lines are checked against the sources; 'client' is the probe log. */
  source: 'agent' | 'client';
}

const agent = (match: Match, kind: string, phase: Phase): CatalogueEntry => ({ match, kind, phase, source: 'agent' });

export const CATALOGUE: readonly CatalogueEntry[] = [
  // Power sources (src/daemon/agent.ts onPowerDecision): each decision is a notice with the tag 'power'.
  agent({ notice: 'power-warning' }, 'power-warning', 'power'),
  agent({ notice: 'power-notice' }, 'power-notice', 'power'),
  agent({ notice: 'power-cancel' }, 'power-cancel', 'power'),
  // Distress (src/daemon/agent.ts leave / onDistress): the sender leaves, its peers fail it at once.
  agent({ notice: 'distress-sent' }, 'distress-sent', 'distress'),
  agent({ notice: 'peer-distress' }, 'peer-distress', 'distress'),
  // Detection (src/daemon/agent.ts onMembership, src/db/flows.ts notices).
  agent({ msgPrefix: 'peer failed: ' }, 'peer-failed', 'detection'),
  agent({ msg: 'peer not heard: this node processed last and starts alone; the peer is treated as failed' }, 'peer-not-heard', 'detection'),
  agent({ notice: 'primary-failed' }, 'failover-started', 'detection'),
  agent({ notice: 'app-fault' }, 'app-fault', 'detection'),
  agent({ notice: 'host-faulted' }, 'host-faulted', 'detection'),
  // Fence (src/daemon/flow-runner.ts startResources, src/daemon/power-fence.ts, agent.ts onDistress).
  agent({ msg: 'power fence: powering the node off' }, 'power-fence-started', 'fence'),
  agent({ msg: 'power fence: the node is confirmed off' }, 'power-fence-confirmed', 'fence'),
  agent({ msg: 'peer powered off' }, 'peer-powered-off', 'fence'),
  agent({ msg: 'peer self-fenced' }, 'peer-self-fenced', 'fence'),
  agent({ msg: "distress: fencing the sender's key" }, 'distress-key-fenced', 'fence'),
  agent({ msg: 'resource started', resourcePrefix: 'disk ' }, 'disk-reserved', 'fence'),
  // Mount and address (flow-runner.ts timed 'resource started', resourceName in src/daemon/resources.ts).
  agent({ msg: 'resource started', resourcePrefix: 'mount ' }, 'mounted', 'mount'),
  agent({ msg: 'resource started', resourcePrefix: 'ip ' }, 'address-added', 'address'),
  agent({ msg: 'application started' }, 'app-started', 'app start'),
  // Switchovers (src/db/flows.ts Notice).
  agent({ notice: 'failover-complete' }, 'failover-complete', 'switchover'),
  agent({ notice: 'failover-failed' }, 'failover-failed', 'switchover'),
  agent({ notice: 'failover-aborted' }, 'failover-aborted', 'switchover'),
  agent({ notice: 'failback-started' }, 'failback-started', 'switchover'),
  agent({ notice: 'failback-handed-over' }, 'failback-handed-over', 'switchover'),
  agent({ notice: 'failback-complete' }, 'failback-complete', 'switchover'),
  // An operator's planned switchover (flows.ts rule 6): the target ready, the source's stop and handover,
  // the target running it (its message has the service gap); or why it did not happen.
  agent({ notice: 'switchover-started' }, 'switchover-started', 'switchover'),
  agent({ msg: 'application stopped' }, 'app-stopped', 'switchover'),
  agent({ notice: 'switchover-handed-over' }, 'switchover-handed-over', 'switchover'),
  agent({ notice: 'switchover-complete' }, 'switchover-complete', 'switchover'),
  agent({ notice: 'switchover-refused' }, 'switchover-refused', 'switchover'),
  agent({ notice: 'switchover-aborted' }, 'switchover-aborted', 'switchover'),
  agent({ notice: 'switchover-failed' }, 'switchover-failed', 'switchover'),
  // The agents do not see clients: a client's log (one JSON line per answer, as `npm run demo` writes it,
  // docs/cli.md) gives the first answer after a takeover.
  { match: { msg: 'client answered' }, kind: 'client-answered', phase: 'first client answer', source: 'client' },
];

/** The fields of a log line the catalogue reads. */
export interface LineFields { msg: string; notice?: unknown; resource?: unknown }

export function classify(line: LineFields): CatalogueEntry | undefined {
  return CATALOGUE.find(({ match: m }) => {
    if ('notice' in m) return line.notice === m.notice;
    if ('msgPrefix' in m) return line.msg.startsWith(m.msgPrefix);
    if (line.msg !== m.msg) return false;
    return m.resourcePrefix === undefined || (typeof line.resource === 'string' && line.resource.startsWith(m.resourcePrefix));
  });
}
