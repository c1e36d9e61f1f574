import {
  addIcon,
  caretDownIcon,
  caretRightIcon,
  ToolbarButtonComponent
} from '@jupyterlab/ui-components';
import * as React from 'react';

import type { ClusterDetails } from '../clustermodel';
import { clusterStatusClass } from '../jobs';
import type { ICluster, IPartition } from '../types';
import { describeMinutes, formatMemory } from '../units';

/**
 * Props of the cluster browser.
 */
export interface IClusterBrowserProps {
  clusters: readonly ICluster[];
  details: ClusterDetails;
  loaded: boolean;
  /**
   * Open the submit form on a cluster (and partition).
   */
  onNewJob: (cluster: string, partition?: string) => void;
  /**
   * Start a cluster that is switched off (offered only then).
   */
  onStart?: (cluster: string) => void;
}

/**
 * A cluster's tooltip: its description and who can read its jobs' outputs.
 */
export function clusterTitle(cluster: ICluster): string {
  const base = cluster.description || `Partitions of ${cluster.name}`;
  if (!cluster.outputs_readable_by) {
    return base;
  }
  const umask = cluster.output_umask ? ` (umask ${cluster.output_umask})` : '';
  return `${base}\nJob outputs readable by: ${cluster.outputs_readable_by}${umask}`;
}

/**
 * Clusters with their status; each expands to its partitions with limits and
 * live availability, refreshed from the server while expanded.
 */
export function ClusterBrowser(
  props: IClusterBrowserProps
): React.ReactElement {
  const { clusters, details } = props;
  if (clusters.length === 0) {
    return (
      <p className="jp-pwlab-empty">
        {props.loaded ? 'No clusters configured.' : 'Loading…'}
      </p>
    );
  }
  return (
    <ul className="jp-pwlab-list jp-pwlab-cluster-list">
      {clusters.map(cluster => (
        <ClusterItem
          key={cluster.id}
          cluster={cluster}
          details={details}
          onNewJob={props.onNewJob}
          onStart={props.onStart}
        />
      ))}
    </ul>
  );
}

/**
 * What a cluster status means for people.
 */
export function clusterStatusLabel(cluster: ICluster): string {
  switch (cluster.status) {
    case 'ok':
      return 'ok';
    case 'unreachable':
      return 'unreachable';
    case 'auth_rejected':
      return 'credentials rejected';
    case 'rate_limited':
      return 'rate-limited: slowing down';
    case 'off':
    case 'starting':
    case 'stopping':
    case 'degraded':
      return cluster.status;
    default:
      return /token|auth|401|403|credential/i.test(cluster.status_message ?? '')
        ? 'token rejected'
        : 'error';
  }
}

function ClusterItem(props: {
  cluster: ICluster;
  details: ClusterDetails;
  onNewJob: (cluster: string, partition?: string) => void;
  onStart?: (cluster: string) => void;
}): React.ReactElement {
  const { cluster, details } = props;
  const [open, setOpen] = React.useState(false);

  React.useEffect(() => {
    if (!open) {
      return;
    }
    const watch = details.watch(cluster.id);
    return () => watch.dispose();
  }, [open, cluster.id, details]);

  const detail = details.get(cluster.id);
  const error = details.error(cluster.id);
  const regionId = `jp-pwlab-partitions-${cluster.id}`;
  return (
    <li
      className="jp-pwlab-cluster"
      data-cluster-id={cluster.id}
      data-status={cluster.status}
    >
      <div className="jp-pwlab-cluster-line">
        <button
          className="jp-pwlab-cluster-toggle"
          aria-expanded={open}
          aria-controls={regionId}
          title={clusterTitle(cluster)}
          onClick={() => setOpen(!open)}
        >
          {open ? (
            <caretDownIcon.react tag="span" />
          ) : (
            <caretRightIcon.react tag="span" />
          )}
          <span className="jp-pwlab-cluster-name">{cluster.name}</span>
        </button>
        <span className="jp-pwlab-cluster-kind">{cluster.kind}</span>
        <span
          className={`jp-pwlab-cluster-status ${clusterStatusClass(cluster.status)}`}
          title={cluster.status_message ?? undefined}
        >
          {clusterStatusLabel(cluster)}
        </span>
        {cluster.status === 'off' && props.onStart && (
          <button
            className="jp-Button jp-mod-styled jp-mod-small jp-pwlab-cluster-start"
            title={`Start ${cluster.name}`}
            onClick={() => props.onStart?.(cluster.id)}
          >
            Start
          </button>
        )}
        <ToolbarButtonComponent
          className="jp-pwlab-cluster-new-job"
          icon={addIcon}
          tooltip={`New job on ${cluster.name}`}
          onClick={() => props.onNewJob(cluster.id)}
        />
      </div>
      {cluster.status !== 'ok' && cluster.status_message && (
        <div className="jp-pwlab-cluster-message">{cluster.status_message}</div>
      )}
      {open && (
        <div
          id={regionId}
          className="jp-pwlab-partitions"
          role="region"
          aria-label={`Partitions of ${cluster.name}`}
        >
          {error && (
            <div className="jp-pwlab-error" role="alert">
              {error}
            </div>
          )}
          {!detail && !error && <p className="jp-pwlab-empty">Loading…</p>}
          {detail?.partitions.map(partition => (
            <PartitionItem
              key={partition.name}
              partition={partition}
              onNewJob={() => props.onNewJob(cluster.id, partition.name)}
            />
          ))}
          {detail && detail.partitions.length === 0 && (
            <p className="jp-pwlab-empty">No partitions.</p>
          )}
        </div>
      )}
    </li>
  );
}

function PartitionItem(props: {
  partition: IPartition;
  onNewJob: () => void;
}): React.ReactElement {
  const p = props.partition;
  const gpus = p.gpus_per_node
    ? `${p.gpus_per_node} GPU${p.gpus_per_node === 1 ? '' : 's'}/node${
        p.gpu_types.length ? ` (${p.gpu_types.join(', ')})` : ''
      }`
    : 'no GPUs';
  const idle = p.nodes_total ? p.nodes_idle / p.nodes_total : 0;
  const access = describeAccess(p);
  return (
    <div
      className="jp-pwlab-partition"
      data-partition={p.name}
      data-state={p.state}
    >
      <div className="jp-pwlab-partition-line">
        <span className="jp-pwlab-partition-name">
          {p.name}
          {p.default && (
            <span className="jp-pwlab-partition-default"> (default)</span>
          )}
        </span>
        <span className="jp-pwlab-partition-state">{p.state}</span>
        <button
          className="jp-mod-styled jp-pwlab-partition-new-job"
          data-pwlab-new-job={p.name}
          onClick={props.onNewJob}
        >
          New job
        </button>
      </div>
      <div
        className="jp-pwlab-availability"
        title={`${p.nodes_idle} of ${p.nodes_total} nodes idle`}
      >
        <span className="jp-pwlab-availability-bar" aria-hidden="true">
          <span
            className="jp-pwlab-availability-fill"
            style={{ width: `${Math.round(idle * 100)}%` }}
          />
        </span>
        <span>
          {p.nodes_idle}/{p.nodes_total} nodes idle
          {p.cpus_idle !== null && p.cpus_idle !== undefined
            ? ` · ${p.cpus_idle} CPUs idle`
            : ''}
        </span>
      </div>
      <div className="jp-pwlab-partition-limits">
        {p.cpus_per_node} CPUs · {formatMemory(p.memory_mb_per_node)} per node ·{' '}
        {gpus}
        {p.max_time_minutes !== null
          ? ` · max ${describeMinutes(p.max_time_minutes)}`
          : ''}
        {p.max_nodes !== null ? ` · max ${p.max_nodes} nodes` : ''}
      </div>
      {access && <div className="jp-pwlab-partition-access">{access}</div>}
    </div>
  );
}

/**
 * Who may use a partition, in words (`accounts physics, chem · QOS normal`),
 * or null when anyone may.
 */
function describeAccess(p: IPartition): string | null {
  const parts: string[] = [];
  const list = (label: string, names?: string[]) => {
    if (names?.length) {
      parts.push(`${label} ${names.join(', ')}`);
    }
  };
  list('accounts', p.accounts);
  list('not for accounts', p.deny_accounts);
  list('QOS', p.qos);
  list('not for QOS', p.deny_qos);
  return parts.length ? parts.join(' · ') : null;
}
