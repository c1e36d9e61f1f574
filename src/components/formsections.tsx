/**
 * The sections of the submit form (`submitform.tsx`): where the job runs,
 * its resources, the job itself, what it runs, and the footer.
 */
import * as React from 'react';

import { stateLabel } from '../jobs';
import type { IFieldSpec } from '../schema';
import type { IFormState, RunMode } from '../submission';
import type { ICluster, IJob, IPartition } from '../types';
import { describeMinutes, formatMemory } from '../units';
import { FormField, ResourceField, TextField } from './fields';

/**
 * A field key's error to show now, if any.
 */
export type ErrorFor = (key: string) => string | undefined;

/**
 * Report a change to field `key` (and the form values it changes).
 */
export type OnEdit = (key: string, change: Partial<IFormState>) => void;

/**
 * Report a new text for a resource field.
 */
export type OnEditResource = (field: IFieldSpec, value: string) => void;

/**
 * What every section is given: the form, its errors, and where edits go.
 */
export interface IFormSectionProps {
  /**
   * A unique prefix for DOM ids.
   */
  idPrefix: string;
  form: IFormState;
  errorFor: ErrorFor;
  onEdit: OnEdit;
  onEditResource: OnEditResource;
}

/**
 * The frame of the form field `key` (also its control's name): its id and
 * its error now.
 */
function frameOf(
  section: IFormSectionProps,
  key: string
): { id: string; fieldKey: string; name: string; error?: string } {
  return {
    id: `${section.idPrefix}-${key}`,
    fieldKey: key,
    name: key,
    error: section.errorFor(key)
  };
}

/**
 * The form fields that hold one text.
 */
type TextKey = 'name' | 'workingDir' | 'env' | 'script' | 'command';

/**
 * A text field's frame, value and change handler: the form field `key`
 * showing (and editing) the form's `text`.
 */
function textOf(
  section: IFormSectionProps,
  key: string,
  text: TextKey
): ReturnType<typeof frameOf> & {
  value: string;
  onChange: (value: string) => void;
} {
  return {
    ...frameOf(section, key),
    value: section.form[text],
    onChange: value => section.onEdit(key, { [text]: value })
  };
}

/**
 * Where the job runs: the cluster, then the partition and what it offers.
 */
export function WhereSection(
  props: IFormSectionProps & {
    clusters: readonly ICluster[];
    clusterId: string;
    /**
     * The cluster's options schema is known and the resource texts are made.
     */
    ready: boolean;
    /**
     * Why the cluster's options could not be loaded.
     */
    detailError: string | null;
    partitionField: IFieldSpec | undefined;
    partition: IPartition | undefined;
  }
): React.ReactElement {
  const { clusters, clusterId, ready, detailError, partitionField } = props;
  const { name, ...frame } = frameOf(props, 'cluster');
  return (
    <fieldset className="jp-pwlab-form-section">
      <legend>Where</legend>
      <FormField {...frame} label="Cluster">
        {control => (
          <select
            {...control}
            className="jp-mod-styled"
            name={name}
            value={clusterId}
            onChange={e => props.onEdit('cluster', { cluster: e.target.value })}
          >
            {clusters.length === 0 && <option value="">Loading…</option>}
            {clusters.map(c => (
              <option key={c.id} value={c.id}>
                {c.name}
                {c.status !== 'ok' ? ` (${c.status})` : ''}
              </option>
            ))}
          </select>
        )}
      </FormField>
      {detailError && !ready && (
        <div className="jp-pwlab-error" role="alert">
          {detailError}
        </div>
      )}
      {!ready && !detailError && clusterId && (
        <p className="jp-pwlab-empty">Loading the cluster's options…</p>
      )}
      {partitionField && (
        <ResourceField
          field={partitionField}
          idPrefix={props.idPrefix}
          value={props.form.resources.partition ?? ''}
          error={props.errorFor(partitionField.key)}
          onChange={value => props.onEditResource(partitionField, value)}
        />
      )}
      {props.partition && <PartitionSummary partition={props.partition} />}
    </fieldset>
  );
}

/**
 * The resource fields of the cluster's schema, but the partition.
 */
export function ResourcesSection(
  props: IFormSectionProps & { fields: readonly IFieldSpec[] }
): React.ReactElement {
  return (
    <fieldset className="jp-pwlab-form-section jp-pwlab-resources">
      <legend>Resources</legend>
      {props.fields.map(field => (
        <ResourceField
          key={field.name}
          field={field}
          idPrefix={props.idPrefix}
          value={props.form.resources[field.name] ?? ''}
          error={props.errorFor(field.key)}
          onChange={value => props.onEditResource(field, value)}
        />
      ))}
    </fieldset>
  );
}

/**
 * The job: its name, working directory, dependencies and environment.
 */
export function JobSection(
  props: IFormSectionProps & {
    /**
     * Jobs that a new job may depend on.
     */
    jobs: readonly IJob[];
    clusterId: string;
  }
): React.ReactElement {
  const { form, onEdit } = props;
  const dependencies = React.useMemo(
    () => dependencyChoices(props.jobs, props.clusterId, form.after),
    [props.jobs, props.clusterId, form.after]
  );
  const { name: after, ...afterFrame } = frameOf(props, 'after');
  return (
    <fieldset className="jp-pwlab-form-section">
      <legend>Job</legend>
      <TextField
        {...textOf(props, 'name', 'name')}
        label="Name"
        placeholder="(from the script)"
      />
      <TextField
        {...textOf(props, 'working_dir', 'workingDir')}
        label="Working directory"
        hint="Relative to the Jupyter root, as in the file browser; empty for the root"
        spellCheck={false}
      />
      <FormField
        {...afterFrame}
        label="Run after"
        hint="Jobs that must complete successfully first (Ctrl/Shift to pick several)"
      >
        {control =>
          dependencies.length === 0 ? (
            <p className="jp-pwlab-empty" id={control.id}>
              No jobs on this cluster yet.
            </p>
          ) : (
            <select
              {...control}
              className="jp-pwlab-after"
              name={after}
              multiple
              size={Math.min(4, Math.max(2, dependencies.length))}
              value={form.after}
              onChange={e =>
                onEdit('after', {
                  after: Array.from(e.target.selectedOptions, o => o.value)
                })
              }
            >
              {dependencies.map(job => (
                <option key={job.id} value={job.id}>
                  {job.name || job.id}
                  {job.native_id ? ` #${job.native_id}` : ''} —{' '}
                  {stateLabel(job.state)}
                </option>
              ))}
            </select>
          )
        }
      </FormField>
      <TextField
        {...textOf(props, 'env', 'env')}
        label="Environment"
        hint="NAME=value, one per line"
        className="jp-pwlab-env"
        rows={2}
        spellCheck={false}
      />
    </fieldset>
  );
}

/**
 * The ways to say what a job runs, with their labels.
 */
const RUN_MODES: readonly (readonly [RunMode, string])[] = [
  ['script', 'Batch script'],
  ['command', 'Command']
];

/**
 * What the job runs: a batch script or one command.
 */
export function RunSection(props: IFormSectionProps): React.ReactElement {
  const { form, onEdit } = props;
  const mode = `${props.idPrefix}-mode`;
  return (
    <fieldset className="jp-pwlab-form-section">
      <legend>What to run</legend>
      <div className="jp-pwlab-mode" role="radiogroup" aria-label="What to run">
        {RUN_MODES.map(([value, label]) => (
          <label key={value}>
            <input
              type="radio"
              name={mode}
              value={value}
              checked={form.mode === value}
              onChange={() => onEdit('mode', { mode: value })}
            />{' '}
            {label}
          </label>
        ))}
      </div>
      {form.mode === 'script' ? (
        <TextField
          {...textOf(props, 'script', 'script')}
          label="Script"
          className="jp-pwlab-script"
          rows={10}
          spellCheck={false}
        />
      ) : (
        <TextField
          {...textOf(props, 'command', 'command')}
          label="Command"
          className="jp-pwlab-command"
          spellCheck={false}
        />
      )}
    </fieldset>
  );
}

/**
 * The submit button, whether the form needs fixing, and the job it made.
 */
export function FormFooter(props: {
  ready: boolean;
  submitting: boolean;
  /**
   * A submit was tried and fields are marked invalid.
   */
  invalid: boolean;
  submitted: IJob | null;
  onOpenJob: (id: string) => void;
}): React.ReactElement {
  const { submitted } = props;
  return (
    <div className="jp-pwlab-form-footer">
      <button
        type="submit"
        className="jp-mod-styled jp-mod-accept jp-pwlab-submit"
        disabled={!props.ready || props.submitting}
        data-pwlab-submit
      >
        {props.submitting ? 'Submitting…' : 'Submit'}
      </button>
      {props.invalid && (
        <span className="jp-pwlab-form-invalid" role="status">
          Fix the fields marked in red.
        </span>
      )}
      {submitted && (
        <span
          className="jp-pwlab-form-success"
          role="status"
          data-pwlab-submitted-job={submitted.id}
        >
          Submitted {submitted.name || submitted.id}
          {submitted.native_id ? ` (#${submitted.native_id})` : ''}.{' '}
          <button
            type="button"
            className="jp-pwlab-link"
            onClick={() => props.onOpenJob(submitted.id)}
          >
            Show job
          </button>
        </span>
      )}
    </div>
  );
}

/**
 * The chosen partition's size, availability and limits in one line.
 */
function PartitionSummary(props: {
  partition: IPartition;
}): React.ReactElement {
  const p = props.partition;
  const parts = [
    `${p.nodes_idle}/${p.nodes_total} nodes idle`,
    `${p.cpus_per_node} CPUs and ${formatMemory(p.memory_mb_per_node)} per node`,
    p.gpus_per_node
      ? `${p.gpus_per_node} GPUs per node${p.gpu_types.length ? ` (${p.gpu_types.join(', ')})` : ''}`
      : 'no GPUs'
  ];
  if (p.max_time_minutes !== null) {
    parts.push(`max ${describeMinutes(p.max_time_minutes)}`);
  }
  return (
    <div className="jp-pwlab-partition-summary" data-pwlab-partition={p.name}>
      {parts.join(' · ')}
    </div>
  );
}

/**
 * Jobs a new job on `cluster` may wait for: the chosen ones, then the newest
 * of that cluster (live ones first), at most 100.
 */
function dependencyChoices(
  jobs: readonly IJob[],
  cluster: string,
  chosen: readonly string[]
): IJob[] {
  const picked = jobs.filter(job => chosen.includes(job.id));
  const others: IJob[] = [];
  for (const job of jobs) {
    if (others.length >= 100) {
      break;
    }
    if (job.cluster === cluster && !chosen.includes(job.id) && job.native_id) {
      others.push(job);
    }
  }
  return [...picked, ...others];
}
