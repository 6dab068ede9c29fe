// Reads the replicas' JSON logs after a run and tells which fast starts began from a stale handoff:
// one written before another replica led (and wrote none itself), so that leader's allocations are
// not in it. Only the watch from its resourceVersion can show them, and a fast start allocates
// before that watch has caught up.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HANDOFF_REFRESHED, HANDOFF_WRITTEN } from '../../src/term/handoff.js';

export { HANDOFF_WRITTEN };
export const FAST_START = 'allocating from the handoff while the node list comes in';
export const STARTED_LEADING = 'started leading';

export interface LogEvent {
  readonly replica: string;
  readonly at: number;
  readonly msg: string;
  readonly resourceVersion: string | undefined;
}

export interface FastStartTally {
  readonly handoffs: number;
  readonly fastStarts: number;
  /** Fast starts from a handoff another replica led after. */
  readonly stale: number;
  /** "replica-7 from rv 1234 (written by replica-2, then replica-5 led)", one per stale fast start. */
  readonly staleDetails: readonly string[];
}

const WANTED = new Set([HANDOFF_WRITTEN, HANDOFF_REFRESHED, FAST_START, STARTED_LEADING]);

/** The handoff, fast start and leadership lines of every replica-*.log in dir, oldest first. */
export async function readEvents(dir: string): Promise<LogEvent[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.log'));
  const events: LogEvent[] = [];
  for (const file of files) {
    const replica = file.replace(/\.log$/, '');
    for (const line of (await readFile(join(dir, file), 'utf8')).split('\n')) {
      const event = parseEvent(replica, line);
      if (event !== undefined) events.push(event);
    }
  }
  return events.sort((a, b) => a.at - b.at);
}

function parseEvent(replica: string, line: string): LogEvent | undefined {
  if (!line.startsWith('{')) return undefined;
  let record: { msg?: unknown; time?: unknown; resourceVersion?: unknown };
  try {
    record = JSON.parse(line) as typeof record;
  } catch {
    return undefined;
  }
  if (typeof record.msg !== 'string' || !WANTED.has(record.msg)) return undefined;
  const at = typeof record.time === 'string' ? Date.parse(record.time) : Number(record.time);
  if (!Number.isFinite(at)) return undefined;
  const resourceVersion = typeof record.resourceVersion === 'string' ? record.resourceVersion : undefined;
  return { replica, at, msg: record.msg, resourceVersion };
}

/** Walks the events in time order; a handoff is known by the resourceVersion it was written with. */
export function tallyFastStarts(events: readonly LogEvent[]): FastStartTally {
  const writes = new Map<string, { by: string; at: number }>();
  const leads: LogEvent[] = [];
  const staleDetails: string[] = [];
  let fastStarts = 0;
  for (const e of events) {
    if (e.msg === STARTED_LEADING) leads.push(e);
    // Refreshes are logged at debug: at info a fast start from one finds no write and is not judged.
    const written = e.msg === HANDOFF_WRITTEN || e.msg === HANDOFF_REFRESHED;
    if (written && e.resourceVersion !== undefined) writes.set(e.resourceVersion, { by: e.replica, at: e.at });
    if (e.msg !== FAST_START) continue;
    fastStarts++;
    const write = e.resourceVersion === undefined ? undefined : writes.get(e.resourceVersion);
    if (write === undefined) continue;
    // Its own "started leading" comes just before; any other replica's since the write makes it stale.
    const others = leads.filter((l) => l.replica !== e.replica && l.at > write.at).map((l) => l.replica);
    if (others.length > 0) {
      staleDetails.push(`${e.replica} from rv ${e.resourceVersion} (written by ${write.by}, then ${[...new Set(others)].join(', ')} led)`);
    }
  }
  return { handoffs: writes.size, fastStarts, stale: staleDetails.length, staleDetails };
}
