import * as React from 'react';

import { APIError, type IJobsAPI } from '../api';
import type { ClusterDetails } from '../clustermodel';
import { stateLabel } from '../jobs';
import { resourceFields, selectedPartition, type Schema } from '../schema';
import {
  applyPrefill,
  buildSubmission,
  holdsResourceValues,
  placeServerErrors,
  resourceTexts,
  suggestionRequest,
  templateDraft,
  templateFields,
  withResourceValues,
  type IFormPrefill,
  type IFormState
} from '../submission';
import type {
  ICluster,
  IJob,
  IJobSubmission,
  IPartition,
  ITemplate
} from '../types';
import { describeMinutes, formatMemory } from '../units';
import { describedBy, FieldRow, ResourceField } from './fields';
import { SuggestionBanner, useSuggestion } from './suggestion';
import { TemplatePicker } from './templatepicker';

/**
 * The calls behind suggestions and templates.
 */
export type IGuidanceAPI = Pick<
  IJobsAPI,
  'suggest' | 'listTemplates' | 'saveTemplate' | 'deleteTemplate'
>;

/**
 * Props of the submit form.
 */
export interface ISubmitFormProps {
  clusters: readonly ICluster[];
  details: ClusterDetails;
  /**
   * Jobs that a new job may depend on.
   */
  jobs: readonly IJob[];
  /**
   * What the form starts with.
   */
  prefill: IFormPrefill;
  /**
   * The cluster to start on when the prefill names none.
   */
  defaultCluster: string;
  /**
   * A unique prefix for DOM ids.
   */
  idPrefix: string;
  submit: (body: IJobSubmission) => Promise<IJob>;
  onOpenJob: (id: string) => void;
  /**
   * Suggestions from earlier runs and templates; none without it.
   */
  guidance?: IGuidanceAPI;
  /**
   * Milliseconds the form must rest before suggestions are asked for.
   */
  suggestionDelay?: number;
}

/**
 * The submit form: a cluster, the resource fields its options schema defines
 * (with the chosen partition's limits checked inline), and what to run.
 */
export function SubmitForm(props: ISubmitFormProps): React.ReactElement {
  const { clusters, details, prefill, idPrefix } = props;
  const [state, setState] = React.useState<IFormState>(() =>
    applyPrefill(prefill, prefill.cluster ?? '', null)
  );
  // The cluster whose schema the resource texts were made for.
  const [textsFor, setTextsFor] = React.useState<string | null>(null);
  // The resource values the texts start from (the prefill, or a template).
  const [baseResources, setBaseResources] = React.useState<
    Record<string, unknown>
  >(() => prefill.resources ?? {});
  const [touched, setTouched] = React.useState<ReadonlySet<string>>(
    () => new Set()
  );
  const [attempted, setAttempted] = React.useState(false);
  const [serverErrors, setServerErrors] = React.useState<
    Record<string, string>
  >({});
  const [general, setGeneral] = React.useState<string[]>([]);
  const [submitting, setSubmitting] = React.useState(false);
  const [submitted, setSubmitted] = React.useState<IJob | null>(null);
  const formRef = React.useRef<HTMLFormElement>(null);

  const clusterId =
    state.cluster ||
    (clusters.some(c => c.id === props.defaultCluster)
      ? props.defaultCluster
      : (clusters[0]?.id ?? ''));
  const detail = clusterId ? details.get(clusterId) : undefined;
  const schema = (detail?.options_schema as Schema | undefined) ?? null;
  const detailError = clusterId ? details.error(clusterId) : null;

  React.useEffect(() => {
    if (clusterId) {
      details.fetch(clusterId).catch(() => undefined);
    }
  }, [clusterId, details]);

  // Fill the resource texts once the cluster's schema is known.
  React.useEffect(() => {
    if (!schema || textsFor === clusterId) {
      return;
    }
    setState(current => {
      let texts: Record<string, string>;
      if (textsFor === null) {
        texts = resourceTexts(schema, baseResources);
      } else {
        // Another cluster: keep what was typed where the field exists.
        texts = resourceTexts(schema, {});
        const fields = resourceFields(schema, {});
        for (const field of fields) {
          const typed = current.resources[field.name];
          if (typed === undefined) {
            continue;
          }
          if (field.kind === 'select' && !field.options.includes(typed)) {
            continue;
          }
          texts[field.name] = typed;
        }
      }
      return { ...current, cluster: clusterId, resources: texts };
    });
    setTextsFor(clusterId);
  }, [schema, clusterId, textsFor]);

  const ready = schema !== null && textsFor === clusterId;
  const formState: IFormState = { ...state, cluster: clusterId };
  const check = React.useMemo(
    () => (ready ? buildSubmission(formState, schema) : null),
    [ready, state, clusterId, schema]
  );
  const guidance = props.guidance ?? null;
  const wanted = React.useMemo(
    () => (ready && guidance ? suggestionRequest(formState, schema) : null),
    [ready, guidance, state, clusterId, schema]
  );
  const suggestion = useSuggestion(guidance, wanted, props.suggestionDelay);
  const fields = React.useMemo(
    () =>
      ready
        ? resourceFields(schema!, { partition: state.resources.partition })
        : [],
    [ready, schema, state.resources.partition]
  );

  const errorFor = (key: string): string | undefined =>
    serverErrors[key] ??
    (attempted || touched.has(key) ? check?.errors[key] : undefined);

  const edit = (key: string, change: Partial<IFormState>) => {
    setState(current => ({ ...current, ...change }));
    setTouched(current => new Set(current).add(key));
    if (serverErrors[key]) {
      const next = { ...serverErrors };
      delete next[key];
      setServerErrors(next);
    }
    setSubmitted(null);
  };
  const applyTemplate = (template: ITemplate) => {
    const fields = templateFields(template);
    if (fields.cluster && !clusters.some(c => c.id === fields.cluster)) {
      delete fields.cluster;
    }
    setBaseResources(template.resources ?? {});
    // Make the texts again on the (new) cluster's schema, from the template.
    setTextsFor(null);
    setState(current => ({ ...current, cluster: clusterId, ...fields }));
    setTouched(new Set());
    setServerErrors({});
    setAttempted(false);
    setSubmitted(null);
  };
  const applySuggestion = (values: Record<string, unknown>) => {
    if (!schema) {
      return;
    }
    setState(current => ({
      ...current,
      resources: withResourceValues(schema, current.resources, values)
    }));
    setTouched(current => {
      const next = new Set(current);
      Object.keys(values).forEach(name => next.add(`resources.${name}`));
      return next;
    });
    setSubmitted(null);
  };
  const draftTemplate = () => {
    const result = templateDraft(formState, ready ? schema : null);
    if (result.errors) {
      setTouched(
        current => new Set([...current, ...Object.keys(result.errors)])
      );
    }
    return result;
  };
  const editResource = (name: string, value: string) =>
    setState(current => ({
      ...current,
      resources: { ...current.resources, [name]: value }
    }));

  const onSubmit = async (event: React.FormEvent) => {
    event.preventDefault();
    if (!ready || submitting || !check) {
      return;
    }
    setAttempted(true);
    setGeneral([]);
    if (!check.body) {
      focusFirstError(formRef.current);
      return;
    }
    setSubmitting(true);
    try {
      const job = await props.submit(check.body);
      setSubmitted(job);
      setServerErrors({});
    } catch (error) {
      if (error instanceof APIError && error.errors.length) {
        const placed = placeServerErrors(
          error.errors,
          fields.map(f => f.name)
        );
        setServerErrors(placed.fields);
        const onFields = Object.keys(placed.fields).length > 0;
        setGeneral(
          placed.general.length || onFields ? placed.general : [error.message]
        );
        window.requestAnimationFrame(() => focusFirstError(formRef.current));
      } else {
        setGeneral([error instanceof Error ? error.message : String(error)]);
      }
    } finally {
      setSubmitting(false);
    }
  };

  const id = (name: string) => `${idPrefix}-${name}`;
  const partitionField = fields.find(f => f.name === 'partition');
  const otherFields = fields.filter(f => f.name !== 'partition');
  const partition =
    ready && schema
      ? selectedPartition(schema, state.resources.partition)
      : undefined;
  const clusterError = errorFor('cluster');
  const dependencies = React.useMemo(
    () => dependencyChoices(props.jobs, clusterId, state.after),
    [props.jobs, clusterId, state.after]
  );

  return (
    <form
      ref={formRef}
      className="jp-pwlab-form"
      onSubmit={onSubmit}
      noValidate
      aria-label="Submit a job"
      data-pwlab-form-cluster={clusterId}
      data-pwlab-ready={ready}
    >
      {guidance && (
        <TemplatePicker
          api={guidance}
          idPrefix={idPrefix}
          onApply={applyTemplate}
          draft={draftTemplate}
        />
      )}
      <fieldset className="jp-pwlab-form-section">
        <legend>Where</legend>
        <FieldRow
          id={id('cluster')}
          fieldKey="cluster"
          label="Cluster"
          error={clusterError}
        >
          <select
            id={id('cluster')}
            className="jp-mod-styled"
            name="cluster"
            value={clusterId}
            onChange={e => edit('cluster', { cluster: e.target.value })}
            {...describedBy(id('cluster'), undefined, clusterError)}
          >
            {clusters.length === 0 && <option value="">Loading…</option>}
            {clusters.map(c => (
              <option key={c.id} value={c.id}>
                {c.name}
                {c.status !== 'ok' ? ` (${c.status})` : ''}
              </option>
            ))}
          </select>
        </FieldRow>
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
            idPrefix={idPrefix}
            value={state.resources.partition ?? ''}
            error={errorFor(partitionField.key)}
            onChange={value => {
              editResource('partition', value);
              edit(partitionField.key, {});
            }}
          />
        )}
        {partition && <PartitionSummary partition={partition} />}
      </fieldset>

      {ready && (
        <SuggestionBanner
          suggestion={suggestion}
          holds={values =>
            holdsResourceValues(schema!, state.resources, values)
          }
          onApply={applySuggestion}
        />
      )}
      {ready && (
        <fieldset className="jp-pwlab-form-section jp-pwlab-resources">
          <legend>Resources</legend>
          {otherFields.map(field => (
            <ResourceField
              key={field.name}
              field={field}
              idPrefix={idPrefix}
              value={state.resources[field.name] ?? ''}
              error={errorFor(field.key)}
              onChange={value => {
                editResource(field.name, value);
                edit(field.key, {});
              }}
            />
          ))}
        </fieldset>
      )}

      <fieldset className="jp-pwlab-form-section">
        <legend>Job</legend>
        <FieldRow
          id={id('name')}
          fieldKey="name"
          label="Name"
          error={errorFor('name')}
        >
          <input
            id={id('name')}
            className="jp-mod-styled"
            name="name"
            type="text"
            autoComplete="off"
            placeholder="(from the script)"
            value={state.name}
            onChange={e => edit('name', { name: e.target.value })}
            {...describedBy(id('name'), undefined, errorFor('name'))}
          />
        </FieldRow>
        <FieldRow
          id={id('working_dir')}
          fieldKey="working_dir"
          label="Working directory"
          hint="Relative to the Jupyter root, as in the file browser; empty for the root"
          error={errorFor('working_dir')}
        >
          <input
            id={id('working_dir')}
            className="jp-mod-styled"
            name="working_dir"
            type="text"
            autoComplete="off"
            spellCheck={false}
            value={state.workingDir}
            onChange={e => edit('working_dir', { workingDir: e.target.value })}
            {...describedBy(id('working_dir'), 'hint', errorFor('working_dir'))}
          />
        </FieldRow>
        <FieldRow
          id={id('after')}
          fieldKey="after"
          label="Run after"
          hint="Jobs that must complete successfully first (Ctrl/Shift to pick several)"
          error={errorFor('after')}
        >
          {dependencies.length === 0 ? (
            <p className="jp-pwlab-empty" id={id('after')}>
              No jobs on this cluster yet.
            </p>
          ) : (
            <select
              id={id('after')}
              className="jp-pwlab-after"
              name="after"
              multiple
              size={Math.min(4, Math.max(2, dependencies.length))}
              value={state.after}
              onChange={e =>
                edit('after', {
                  after: Array.from(e.target.selectedOptions, o => o.value)
                })
              }
              {...describedBy(id('after'), 'hint', errorFor('after'))}
            >
              {dependencies.map(job => (
                <option key={job.id} value={job.id}>
                  {job.name || job.id}
                  {job.native_id ? ` #${job.native_id}` : ''} —{' '}
                  {stateLabel(job.state)}
                </option>
              ))}
            </select>
          )}
        </FieldRow>
        <FieldRow
          id={id('env')}
          fieldKey="env"
          label="Environment"
          hint="NAME=value, one per line"
          error={errorFor('env')}
        >
          <textarea
            id={id('env')}
            className="jp-mod-styled jp-pwlab-env"
            name="env"
            rows={2}
            spellCheck={false}
            value={state.env}
            onChange={e => edit('env', { env: e.target.value })}
            {...describedBy(id('env'), 'hint', errorFor('env'))}
          />
        </FieldRow>
      </fieldset>

      <fieldset className="jp-pwlab-form-section">
        <legend>What to run</legend>
        <div
          className="jp-pwlab-mode"
          role="radiogroup"
          aria-label="What to run"
        >
          <label>
            <input
              type="radio"
              name={id('mode')}
              value="script"
              checked={state.mode === 'script'}
              onChange={() => edit('mode', { mode: 'script' })}
            />{' '}
            Batch script
          </label>
          <label>
            <input
              type="radio"
              name={id('mode')}
              value="command"
              checked={state.mode === 'command'}
              onChange={() => edit('mode', { mode: 'command' })}
            />{' '}
            Command
          </label>
        </div>
        {state.mode === 'script' ? (
          <FieldRow
            id={id('script')}
            fieldKey="script"
            label="Script"
            error={errorFor('script')}
          >
            <textarea
              id={id('script')}
              className="jp-mod-styled jp-pwlab-script"
              name="script"
              rows={10}
              spellCheck={false}
              value={state.script}
              onChange={e => edit('script', { script: e.target.value })}
              {...describedBy(id('script'), undefined, errorFor('script'))}
            />
          </FieldRow>
        ) : (
          <FieldRow
            id={id('command')}
            fieldKey="command"
            label="Command"
            error={errorFor('command')}
          >
            <input
              id={id('command')}
              className="jp-mod-styled jp-pwlab-command"
              name="command"
              type="text"
              spellCheck={false}
              autoComplete="off"
              value={state.command}
              onChange={e => edit('command', { command: e.target.value })}
              {...describedBy(id('command'), undefined, errorFor('command'))}
            />
          </FieldRow>
        )}
      </fieldset>

      <div className="jp-pwlab-form-footer">
        <button
          type="submit"
          className="jp-mod-styled jp-mod-accept jp-pwlab-submit"
          disabled={!ready || submitting}
          data-pwlab-submit
        >
          {submitting ? 'Submitting…' : 'Submit'}
        </button>
        {attempted &&
          ((check && !check.body) || Object.keys(serverErrors).length > 0) && (
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
      {general.length > 0 && (
        <div className="jp-pwlab-error" role="alert" data-pwlab-error="general">
          {general.map((message, i) => (
            <div key={i}>{message}</div>
          ))}
        </div>
      )}
    </form>
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

/**
 * Move focus to the first field marked invalid.
 */
function focusFirstError(form: HTMLFormElement | null): void {
  const target = form?.querySelector<HTMLElement>('[aria-invalid="true"]');
  target?.focus();
}
