/**
 * Pure helpers for the guidance shown to researchers: why a job waits, when
 * it should start, what it used. No DOM, no server.
 */
import { parseTime } from './jobs';
import type { IJob, IJobUsage } from './types';
import { describeMinutes, formatMemory } from './units';

/**
 * The states in which a job waits for the scheduler.
 */
export const WAITING_STATES = ['QUEUED', 'HELD'];

/**
 * Whether a job waits in the queue (queued or held).
 */
export function isWaiting(job: Pick<IJob, 'state'>): boolean {
  return WAITING_STATES.includes(job.state);
}

/**
 * A duration from now in words: `in 12 min`, `in 2 h 5 min`, `in less than a
 * minute`.
 */
export function formatFromNow(milliseconds: number): string {
  if (milliseconds < 60_000) {
    return 'in less than a minute';
  }
  return `in ${describeMinutes(Math.round(milliseconds / 60_000))}`;
}

/**
 * The scheduler's start estimate of a waiting job, or null when it has none
 * or the time has passed.
 *
 * @param now - the current time in milliseconds since the epoch
 * @param locale - how to write the time (the browser's locale by default)
 */
export function startEstimate(
  job: Pick<IJob, 'state' | 'estimated_start'>,
  now: number,
  locale?: string
): { time: string; fromNow: string; iso: string } | null {
  const start = parseTime(job.estimated_start);
  if (start === null || start <= now || !isWaiting(job)) {
    return null;
  }
  const date = new Date(start);
  const sameDay = new Date(now).toDateString() === date.toDateString();
  const time = sameDay
    ? date.toLocaleTimeString(locale, { hour: '2-digit', minute: '2-digit' })
    : date.toLocaleString(locale, {
        weekday: 'short',
        day: 'numeric',
        month: 'short',
        hour: '2-digit',
        minute: '2-digit'
      });
  return { time, fromNow: formatFromNow(start - now), iso: date.toISOString() };
}

/**
 * A ratio as a percentage: `12%`, `<1%`, `150%`.
 */
export function formatPercent(ratio: number): string {
  const percent = ratio * 100;
  if (percent > 0 && percent < 1) {
    return '<1%';
  }
  return `${Math.round(percent)}%`;
}

/**
 * Seconds in words: `45 s`, `9 min`, `1 h 30 min`.
 */
export function formatSeconds(seconds: number): string {
  if (seconds < 60) {
    return `${Math.max(0, Math.round(seconds))} s`;
  }
  return describeMinutes(seconds / 60);
}

/**
 * One measure of the efficiency card.
 */
export interface IUsageMeasure {
  /**
   * `time`, `cpu`, `memory` or `gpus`.
   */
  key: 'time' | 'cpu' | 'memory' | 'gpus';
  label: string;
  /**
   * The amounts (used and asked for) and the percentage, in words.
   */
  text: string;
  /**
   * Used ÷ requested, for a bar; null when there is nothing to compare.
   */
  ratio: number | null;
}

/**
 * Below this share of a request, a measure is marked as mostly unused.
 */
export const LOW_USE = 0.25;

/**
 * The measures of a finished job's usage, each with amounts and a ratio.
 */
export function usageMeasures(usage: IJobUsage): IUsageMeasure[] {
  const measures: IUsageMeasure[] = [];
  const known = (value: number | null | undefined): value is number =>
    typeof value === 'number' && Number.isFinite(value);

  // Time used against the limit.
  const elapsed = usage.elapsed_seconds;
  const limit = usage.time_limit_seconds;
  if (!known(elapsed)) {
    measures.push({
      key: 'time',
      label: 'Time',
      text: 'not measured',
      ratio: null
    });
  } else if (known(limit) && limit > 0) {
    const ratio = elapsed / limit;
    measures.push({
      key: 'time',
      label: 'Time',
      text: `${formatSeconds(elapsed)} of a ${formatSeconds(limit)} limit (${formatPercent(ratio)})`,
      ratio
    });
  } else {
    measures.push({
      key: 'time',
      label: 'Time',
      text: `${formatSeconds(elapsed)} (no time limit)`,
      ratio: null
    });
  }

  // CPU efficiency: CPU time ÷ (elapsed × CPUs).
  const cpus = known(usage.cpus)
    ? `${usage.cpus} CPU${usage.cpus === 1 ? '' : 's'}`
    : '';
  if (known(usage.cpu_efficiency)) {
    const parts = [`${formatPercent(usage.cpu_efficiency)} busy`];
    if (cpus) {
      parts.push(`on ${cpus}`);
    }
    if (known(usage.cpu_seconds)) {
      parts.push(`(${formatSeconds(usage.cpu_seconds)} of CPU time)`);
    }
    measures.push({
      key: 'cpu',
      label: 'CPU',
      text: parts.join(' '),
      ratio: usage.cpu_efficiency
    });
  } else {
    measures.push({
      key: 'cpu',
      label: 'CPU',
      text: cpus ? `${cpus}, use not measured` : 'not measured',
      ratio: null
    });
  }

  // Peak memory against the request: amounts and the ratio.
  const peak = usage.max_memory_mb;
  const asked = usage.requested_memory_mb;
  if (!known(peak)) {
    measures.push({
      key: 'memory',
      label: 'Memory',
      text: known(asked)
        ? `${formatMemory(asked)} requested, peak not measured`
        : 'not measured',
      ratio: null
    });
  } else if (known(asked) && asked > 0) {
    const ratio = known(usage.memory_efficiency)
      ? usage.memory_efficiency
      : peak / asked;
    measures.push({
      key: 'memory',
      label: 'Memory',
      text: `peak ${formatMemory(peak)} of ${formatMemory(asked)} requested (${formatPercent(ratio)})`,
      ratio
    });
  } else {
    measures.push({
      key: 'memory',
      label: 'Memory',
      text: `peak ${formatMemory(peak)} (no memory request)`,
      ratio: null
    });
  }

  const gpus = known(usage.gpus) ? usage.gpus : 0;
  measures.push({
    key: 'gpus',
    label: 'GPUs',
    text: gpus > 0 ? `${gpus} requested` : 'none requested',
    ratio: null
  });
  return measures;
}

/**
 * Where usage figures come from, in words.
 */
export function usageSourceText(source: string): string {
  switch (source) {
    case 'sacct':
      return 'from Slurm accounting (sacct)';
    case 'qacct':
      return 'from Grid Engine accounting (qacct)';
    case 'measured':
      return 'measured while the job ran';
    default:
      return `from ${source}`;
  }
}

/**
 * A git commit as `git log --oneline` writes it.
 */
export function shortCommit(sha: string): string {
  return /^[0-9a-f]{8,}$/i.test(sha) ? sha.slice(0, 7) : sha;
}
