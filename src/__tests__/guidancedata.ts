/**
 * Job records with the guidance fields, as the server writes them (see the
 * REST contract in docs/api.md): a job pending on Slurm, one finished with
 * its sacct figures, one from a notebook cell.
 */
import type {
  IJob,
  IJobUsage,
  IProvenance,
  ISuggestion,
  ITemplate
} from '../types';
import { makeJob } from './fixtures';

/**
 * A job waiting for nodes in a full `gpu` partition, with the scheduler's
 * start estimate `startsIn` ms from now.
 */
export function pendingJob(startsIn = 12 * 60_000 + 20_000): IJob {
  return makeJob({
    id: 'a1b2c3d4e5f6',
    cluster: 'hpc',
    native_id: '4242',
    name: 'train-resnet',
    state: 'QUEUED',
    raw_state: 'PENDING',
    reason: 'Resources',
    reason_explained: {
      code: 'Resources',
      summary:
        'Your job is waiting for nodes to become free: the partition is busy right now.',
      advice:
        'Asking for less time or fewer nodes can let it start sooner, in a gap between other jobs.',
      known: true
    },
    estimated_start: new Date(Date.now() + startsIn).toISOString(),
    partition_load: {
      partition: 'gpu',
      nodes_idle: 0,
      nodes_total: 8,
      cpus_idle: 0,
      text: '0 of 8 nodes idle in gpu'
    },
    resources: {
      partition: 'gpu',
      nodes: 1,
      gpus: 2,
      memory_mb: 32768,
      time_limit_minutes: 120
    },
    usage: null,
    provenance: null
  });
}

/**
 * What sacct said about a job that asked for 10 GiB and 2 h on 4 CPUs and
 * used 1.2 GiB, 9 min and a third of its CPUs.
 */
export const SACCT_USAGE: IJobUsage = {
  source: 'sacct',
  elapsed_seconds: 540,
  time_limit_seconds: 7200,
  cpus: 4,
  cpu_seconds: 712.8,
  cpu_efficiency: 0.33,
  max_memory_mb: 1228.8,
  requested_memory_mb: 10240,
  memory_efficiency: 0.12,
  gpus: 0,
  hints: [
    'It used 12% of the memory it asked for: next time ask for about 2 GiB.',
    'It ran for 8% of its time limit: a shorter limit (e.g. 15 min) may start sooner.'
  ],
  summary: 'used 12% of its memory request (1.2 GiB of 10 GiB)'
};

/**
 * Where a job from a notebook cell came from.
 */
export const NOTEBOOK_PROVENANCE: IProvenance = {
  user: 'alice',
  notebook_path: 'experiments/analysis.ipynb',
  cell_id: '8f2c1b0e-1d4a-4c8e-9a57-2a1f3e5d9c10',
  git_commit: '3e1f9a7c2b4d6e8f0a1b2c3d4e5f60718293a4b5',
  git_dirty: true,
  modules: ['gcc/12.2.0', 'cuda/12.1', 'python/3.11']
};

/**
 * A finished job with its usage and provenance.
 */
export function finishedJob(fields: Partial<IJob> = {}): IJob {
  return makeJob({
    id: 'f0e1d2c3b4a5',
    cluster: 'hpc',
    native_id: '4243',
    name: 'preprocess',
    state: 'COMPLETED',
    raw_state: 'COMPLETED',
    terminal: true,
    exit_code: 0,
    started_at: '2025-03-04T10:00:00Z',
    ended_at: '2025-03-04T10:09:00Z',
    updated_at: '2025-03-04T10:09:30Z',
    resources: {
      partition: 'cpu',
      cpus_per_task: 4,
      memory_mb: 10240,
      time_limit_minutes: 120
    },
    usage: SACCT_USAGE,
    provenance: NOTEBOOK_PROVENANCE,
    ...fields
  });
}

/**
 * `POST suggestions` after five runs of the same script.
 */
export const FIVE_RUNS: ISuggestion = {
  runs: 5,
  matched_by: 'script',
  resources: { memory_mb: 3800, time_limit_minutes: 15 },
  max_memory_mb: 3174.4,
  max_elapsed_seconds: 540,
  message:
    'Last 5 runs used at most 3.1 GiB and 9 min; you asked for 32 GiB and 2 h.',
  job_ids: ['j1', 'j2', 'j3', 'j4', 'j5']
};

/**
 * `GET templates`: one site template and one of the user's.
 */
export function templates(): ITemplate[] {
  return [
    {
      name: 'gpu-small',
      description: 'One GPU for up to an hour',
      cluster: 'hpc',
      resources: { partition: 'gpu', gpus: 1, time_limit_minutes: 60 },
      script: '#!/bin/bash\nmodule load cuda\npython train.py\n',
      command: null,
      source: 'site',
      read_only: true
    },
    {
      name: 'quick test',
      description: 'Five minutes on the local machine',
      cluster: 'local',
      resources: { time_limit_minutes: 5, cpus_per_task: 2 },
      script: null,
      command: 'python3 -c "print(42)"',
      source: 'user',
      read_only: false
    }
  ];
}
