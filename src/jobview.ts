/**
 * What the jobs table shows: filtering, array tasks under their parent, and
 * counts. Pure functions: no DOM, no server.
 */
import { isTerminalState } from './jobs';
import type { IJob, JobState } from './types';

/**
 * The state filter: everything, live jobs, finished jobs, or one state.
 */
export type StateFilter = '' | 'active' | 'finished' | JobState;

/**
 * What the user narrowed the table to.
 */
export interface IJobFilter {
  /**
   * A cluster id, or '' for every cluster.
   */
  cluster: string;
  state: StateFilter;
  /**
   * Text to find in the name, id or scheduler id (case-insensitive).
   */
  search: string;
}

/**
 * The filter that keeps every job.
 */
export const NO_FILTER: IJobFilter = { cluster: '', state: '', search: '' };

/**
 * Whether a job passes a filter.
 */
export function matchesFilter(job: IJob, filter: IJobFilter): boolean {
  if (filter.cluster && job.cluster !== filter.cluster) {
    return false;
  }
  switch (filter.state) {
    case '':
      break;
    case 'active':
      if (job.terminal) {
        return false;
      }
      break;
    case 'finished':
      if (!job.terminal) {
        return false;
      }
      break;
    default:
      if (job.state !== filter.state) {
        return false;
      }
  }
  const needle = filter.search.trim().toLowerCase();
  if (needle) {
    return (
      job.name.toLowerCase().includes(needle) ||
      job.id.toLowerCase().includes(needle) ||
      (job.native_id ?? '').toLowerCase().includes(needle)
    );
  }
  return true;
}

/**
 * One row of the jobs table.
 */
export interface IJobRow {
  job: IJob;
  /**
   * 0 for a job, 1 for an array task shown under its parent.
   */
  depth: number;
  /**
   * How many of its array tasks the table knows (0 for plain jobs).
   */
  childCount: number;
  /**
   * Whether its array tasks are shown.
   */
  expanded: boolean;
}

/**
 * The rows of the table, in the order of `jobs`: jobs that pass the filter,
 * with array tasks listed under their parent when it is expanded. A task whose
 * parent is not shown is a row of its own.
 */
export function jobRows(
  jobs: readonly IJob[],
  filter: IJobFilter,
  expanded: ReadonlySet<string>
): IJobRow[] {
  const shown = jobs.filter(job => matchesFilter(job, filter));
  const shownIds = new Set(shown.map(job => job.id));
  const children = new Map<string, IJob[]>();
  for (const job of shown) {
    if (job.parent_id && shownIds.has(job.parent_id)) {
      let list = children.get(job.parent_id);
      if (!list) {
        list = [];
        children.set(job.parent_id, list);
      }
      list.push(job);
    }
  }
  const rows: IJobRow[] = [];
  for (const job of shown) {
    if (job.parent_id && shownIds.has(job.parent_id)) {
      continue;
    }
    const tasks = children.get(job.id);
    const open = tasks !== undefined && expanded.has(job.id);
    rows.push({
      job,
      depth: 0,
      childCount: tasks?.length ?? 0,
      expanded: open
    });
    if (open) {
      for (const task of tasks.sort(compareTasks)) {
        rows.push({ job: task, depth: 1, childCount: 0, expanded: false });
      }
    }
  }
  return rows;
}

/**
 * How many jobs are in each phase that the status bar shows.
 */
export interface IJobCounts {
  running: number;
  queued: number;
  held: number;
}

/**
 * Count running (incl. completing), queued (incl. submitting) and held jobs.
 */
export function countJobs(jobs: Iterable<IJob>): IJobCounts {
  const counts: IJobCounts = { running: 0, queued: 0, held: 0 };
  for (const job of jobs) {
    if (job.terminal || isTerminalState(job.state)) {
      continue;
    }
    switch (job.state) {
      case 'RUNNING':
      case 'COMPLETING':
        counts.running++;
        break;
      case 'QUEUED':
      case 'SUBMITTING':
        counts.queued++;
        break;
      case 'HELD':
      case 'SUSPENDED':
        counts.held++;
        break;
    }
  }
  return counts;
}

/**
 * Array tasks by numeric index, then as text.
 */
function compareTasks(a: IJob, b: IJob): number {
  const x = Number(a.array_task);
  const y = Number(b.array_task);
  if (Number.isFinite(x) && Number.isFinite(y) && x !== y) {
    return x - y;
  }
  return String(a.array_task ?? a.id).localeCompare(
    String(b.array_task ?? b.id)
  );
}
