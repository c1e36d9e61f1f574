import { caretDownIcon, caretRightIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import { formatElapsed, formatTimeLeft, stateLabel } from '../jobs';
import { jobRows, NO_FILTER, type IJobFilter, type IJobRow } from '../jobview';
import { JOB_STATES, type ICluster, type IJob } from '../types';
import { StateBadge } from './statebadge';
import { VirtualList, type IRowProps } from './virtuallist';

/**
 * The height of a job row, in pixels (rows have two lines).
 */
export const ROW_HEIGHT = 44;

/**
 * Props of the jobs table.
 */
export interface IJobsTableProps {
  /**
   * Every job, in display order.
   */
  jobs: readonly IJob[];
  clusters: readonly ICluster[];
  /**
   * The current time, for elapsed and remaining times.
   */
  now: number;
  /**
   * Whether the first load has completed.
   */
  loaded: boolean;
  /**
   * Open a job's detail.
   */
  onOpen: (id: string) => void;
}

/**
 * My jobs across clusters, live: filters by cluster and state, a search by
 * name or id, and a windowed list of rows (array tasks under their parent).
 */
export function JobsTable(props: IJobsTableProps): React.ReactElement {
  const { jobs, clusters, now, onOpen } = props;
  const [filter, setFilter] = React.useState<IJobFilter>(NO_FILTER);
  const [expanded, setExpanded] = React.useState<ReadonlySet<string>>(
    () => new Set()
  );
  const [activeId, setActiveId] = React.useState<string | null>(null);

  const rows = React.useMemo(
    () => jobRows(jobs, filter, expanded),
    [jobs, filter, expanded]
  );
  const activeIndex = React.useMemo(
    () => (activeId === null ? -1 : rows.findIndex(r => r.job.id === activeId)),
    [rows, activeId]
  );
  const clusterNames = React.useMemo(
    () => new Map(clusters.map(c => [c.id, c.name])),
    [clusters]
  );

  const toggle = (id: string, open?: boolean) => {
    setExpanded(current => {
      const next = new Set(current);
      if (open ?? !next.has(id)) {
        next.add(id);
      } else {
        next.delete(id);
      }
      return next;
    });
  };

  const onKeyDown = (event: React.KeyboardEvent, index: number): boolean => {
    const row = rows[index];
    if (!row) {
      return false;
    }
    if (event.key === 'ArrowRight' && row.childCount > 0 && !row.expanded) {
      toggle(row.job.id, true);
      return true;
    }
    if (event.key === 'ArrowLeft') {
      if (row.expanded) {
        toggle(row.job.id, false);
        return true;
      }
      if (row.depth > 0 && row.job.parent_id) {
        setActiveId(row.job.parent_id);
        return true;
      }
    }
    return false;
  };

  const update = (change: Partial<IJobFilter>) =>
    setFilter(current => ({ ...current, ...change }));

  return (
    <div
      className="jp-pwlab-jobs"
      data-pwlab-total={jobs.length}
      data-pwlab-shown={rows.length}
    >
      <div className="jp-pwlab-filters">
        <select
          className="jp-mod-styled jp-pwlab-filter-cluster"
          aria-label="Filter jobs by cluster"
          data-pwlab-filter="cluster"
          value={filter.cluster}
          onChange={e => update({ cluster: e.target.value })}
        >
          <option value="">All clusters</option>
          {clusters.map(c => (
            <option key={c.id} value={c.id}>
              {c.name}
            </option>
          ))}
        </select>
        <select
          className="jp-mod-styled jp-pwlab-filter-state"
          aria-label="Filter jobs by state"
          data-pwlab-filter="state"
          value={filter.state}
          onChange={e =>
            update({ state: e.target.value as IJobFilter['state'] })
          }
        >
          <option value="">All states</option>
          <option value="active">Active</option>
          <option value="finished">Finished</option>
          {JOB_STATES.map(state => (
            <option key={state} value={state}>
              {stateLabel(state)}
            </option>
          ))}
        </select>
        <input
          type="search"
          className="jp-mod-styled jp-pwlab-filter-search"
          placeholder="Search name or id"
          aria-label="Search jobs by name or id"
          data-pwlab-filter="search"
          value={filter.search}
          onChange={e => update({ search: e.target.value })}
        />
      </div>
      <div className="jp-pwlab-jobs-summary" aria-live="polite">
        {rows.length === jobs.length
          ? `${jobs.length} job${jobs.length === 1 ? '' : 's'}`
          : `${rows.length} of ${jobs.length} jobs`}
      </div>
      <VirtualList
        className="jp-pwlab-job-list"
        label="Jobs"
        idPrefix="jp-pwlab-job-row"
        count={rows.length}
        rowHeight={ROW_HEIGHT}
        rowKey={index => rows[index].job.id}
        activeIndex={activeIndex}
        onActiveIndexChange={index => setActiveId(rows[index]?.job.id ?? null)}
        onActivate={index => onOpen(rows[index].job.id)}
        onKeyDown={onKeyDown}
        empty={
          <p className="jp-pwlab-empty">
            {!props.loaded
              ? 'Loading…'
              : jobs.length === 0
                ? 'No jobs yet.'
                : 'No job matches the filters.'}
          </p>
        }
        renderRow={(index, rowProps) => (
          <JobRow
            row={rows[index]}
            rowProps={rowProps}
            clusterName={clusterNames.get(rows[index].job.cluster)}
            now={now}
            onToggle={toggle}
          />
        )}
      />
    </div>
  );
}

interface IJobRowProps {
  row: IJobRow;
  rowProps: IRowProps;
  clusterName: string | undefined;
  now: number;
  onToggle: (id: string) => void;
}

function JobRow(props: IJobRowProps): React.ReactElement {
  const { row, rowProps, clusterName, now } = props;
  const { job } = row;
  const elapsed = formatElapsed(job, now);
  const left = formatTimeLeft(job, now);
  const name =
    row.depth > 0 && job.array_task !== null && job.array_task !== undefined
      ? `[${job.array_task}] ${job.name}`
      : job.name || job.id;
  return (
    <div
      {...rowProps}
      className={`jp-pwlab-job-row${rowProps['aria-selected'] ? ' jp-mod-active' : ''}`}
      data-job-id={job.id}
      data-state={job.state}
      data-depth={row.depth}
      title={job.raw_state ? `Scheduler state: ${job.raw_state}` : undefined}
    >
      <div className="jp-pwlab-job-line">
        {row.childCount > 0 && (
          <span
            className="jp-pwlab-job-toggle"
            data-pwlab-toggle={job.id}
            title={row.expanded ? 'Hide array tasks' : 'Show array tasks'}
            onClick={event => {
              event.stopPropagation();
              props.onToggle(job.id);
            }}
          >
            {row.expanded ? (
              <caretDownIcon.react tag="span" />
            ) : (
              <caretRightIcon.react tag="span" />
            )}
          </span>
        )}
        <span className="jp-pwlab-job-name">{name}</span>
        {row.childCount > 0 && (
          <span className="jp-pwlab-job-tasks">{row.childCount} tasks</span>
        )}
        <StateBadge state={job.state} />
      </div>
      <div className="jp-pwlab-job-line jp-pwlab-job-meta">
        <span className="jp-pwlab-job-cluster">
          {clusterName ?? job.cluster}
        </span>
        {job.native_id !== null && (
          <span className="jp-pwlab-job-native-id">#{job.native_id}</span>
        )}
        {elapsed && (
          <span className="jp-pwlab-job-elapsed" title="Elapsed">
            {elapsed}
          </span>
        )}
        {left && (
          <span className="jp-pwlab-job-left" title="Time left">
            {left} left
          </span>
        )}
        {job.exit_code !== null && job.exit_code !== 0 && (
          <span className="jp-pwlab-job-exit-code">exit {job.exit_code}</span>
        )}
        {job.reason && (
          <span
            className="jp-pwlab-job-reason"
            title={job.reason_explained?.summary || `Reason: ${job.reason}`}
          >
            {job.reason}
          </span>
        )}
      </div>
    </div>
  );
}
