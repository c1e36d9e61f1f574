import { Token } from '@lumino/coreutils';

import type { IJobsAPI } from './api';
import type { ClusterDetails } from './clustermodel';
import type { JobsModel } from './model';
import type { IFormPrefill } from './submission';
import type { IJobSubmission } from './types';

/**
 * Command ids.
 */
export namespace CommandIDs {
  export const openSidebar = 'parallelworks-lab:open-sidebar';
  export const refresh = 'parallelworks-lab:refresh';
  export const newJob = 'parallelworks-lab:new-job';
  export const submitFile = 'parallelworks-lab:submit-file';
  export const submitEditor = 'parallelworks-lab:submit-editor';
  export const openJob = 'parallelworks-lab:open-job';
  export const cancelJob = 'parallelworks-lab:cancel-job';
  export const holdJob = 'parallelworks-lab:hold-job';
  export const releaseJob = 'parallelworks-lab:release-job';
  export const resubmitJob = 'parallelworks-lab:resubmit-job';
  export const copyJobId = 'parallelworks-lab:copy-job-id';
  export const insertJobCode = 'parallelworks-lab:insert-job-code';
  export const openCell = 'parallelworks-lab:open-cell';
}

/**
 * The palette category of the commands.
 */
export const PALETTE_CATEGORY = 'HPC Jobs';

/**
 * What the core plugin offers other plugins (file browser, status bar, and
 * third-party extensions).
 */
export interface IParallelWorksLab {
  /**
   * Clusters and jobs, live.
   */
  readonly model: JobsModel;
  /**
   * Partitions and form schemas of clusters.
   */
  readonly details: ClusterDetails;
  readonly api: IJobsAPI;
  /**
   * The cluster a new form starts on ('' for the first one).
   */
  readonly defaultCluster: string;
  /**
   * Open the submit form, filled with `prefill`.
   */
  openSubmitForm(prefill?: IFormPrefill): void;
  /**
   * Open the detail of a job.
   */
  openJob(id: string): Promise<void>;
  /**
   * The body a job was submitted with from this browser, when known.
   */
  submission(jobId: string): IJobSubmission | undefined;
}

/**
 * The token of the core plugin.
 */
export const IParallelWorksLab = new Token<IParallelWorksLab>(
  'parallelworks-lab:IParallelWorksLab',
  'Clusters, jobs and the submit form of parallelworks-lab.'
);
