import * as React from 'react';

import { APIError, type IJobsAPI } from '../api';
import type { ClusterDetails } from '../clustermodel';
import { initialFormState, submitFormReducer } from '../formreducer';
import { resourceFields, selectedPartition, type Schema } from '../schema';
import {
  buildSubmission,
  holdsResourceValues,
  placeServerErrors,
  suggestionRequest,
  templateDraft,
  type IFormPrefill,
  type IFormState
} from '../submission';
import type { ICluster, IJob, IJobSubmission, ITemplate } from '../types';
import {
  FormFooter,
  JobSection,
  ResourcesSection,
  RunSection,
  WhereSection,
  type IFormSectionProps,
  type OnEdit,
  type OnEditResource
} from './formsections';
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
  const { clusters, details, idPrefix } = props;
  const [state, dispatch] = React.useReducer(
    submitFormReducer,
    props.prefill,
    initialFormState
  );
  const { form, textsFor, serverErrors } = state;
  const formRef = React.useRef<HTMLFormElement>(null);

  const clusterId =
    form.cluster ||
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
    if (schema && textsFor !== clusterId) {
      dispatch({ type: 'fillTexts', cluster: clusterId, schema });
    }
  }, [schema, clusterId, textsFor]);

  const ready = schema !== null && textsFor === clusterId;
  const formState: IFormState = { ...form, cluster: clusterId };
  const check = React.useMemo(
    () => (ready ? buildSubmission(formState, schema) : null),
    [ready, form, clusterId, schema]
  );
  const guidance = props.guidance ?? null;
  const wanted = React.useMemo(
    () => (ready && guidance ? suggestionRequest(formState, schema) : null),
    [ready, guidance, form, clusterId, schema]
  );
  const suggestion = useSuggestion(guidance, wanted, props.suggestionDelay);
  const fields = React.useMemo(
    () =>
      ready
        ? resourceFields(schema!, { partition: form.resources.partition })
        : [],
    [ready, schema, form.resources.partition]
  );

  const errorFor = (key: string): string | undefined =>
    serverErrors[key] ??
    (state.attempted || state.touched.has(key)
      ? check?.errors[key]
      : undefined);
  const edit: OnEdit = (key, change) => dispatch({ type: 'edit', key, change });
  const editResource: OnEditResource = (field, value) =>
    dispatch({ type: 'editResource', key: field.key, name: field.name, value });
  const applyTemplate = (template: ITemplate) =>
    dispatch({
      type: 'applyTemplate',
      template,
      cluster: clusterId,
      clusters: clusters.map(c => c.id)
    });
  const applySuggestion = (values: Record<string, unknown>) => {
    if (schema) {
      dispatch({ type: 'applySuggestion', schema, values });
    }
  };
  const draftTemplate = () => {
    const result = templateDraft(formState, ready ? schema : null);
    if (result.errors) {
      dispatch({ type: 'touch', keys: Object.keys(result.errors) });
    }
    return result;
  };

  const onSubmit = async (event: React.FormEvent) => {
    event.preventDefault();
    if (!ready || state.submitting || !check) {
      return;
    }
    dispatch({ type: 'attempt' });
    if (!check.body) {
      focusFirstError(formRef.current);
      return;
    }
    dispatch({ type: 'submitStart' });
    try {
      const job = await props.submit(check.body);
      dispatch({ type: 'submitDone', job });
    } catch (error) {
      if (error instanceof APIError && error.errors.length) {
        const placed = placeServerErrors(
          error.errors,
          fields.map(f => f.name)
        );
        const onFields = Object.keys(placed.fields).length > 0;
        dispatch({
          type: 'submitFailed',
          fields: placed.fields,
          general:
            placed.general.length || onFields ? placed.general : [error.message]
        });
        window.requestAnimationFrame(() => focusFirstError(formRef.current));
      } else {
        dispatch({
          type: 'submitFailed',
          general: [error instanceof Error ? error.message : String(error)]
        });
      }
    }
  };

  const section: IFormSectionProps = {
    idPrefix,
    form,
    errorFor,
    onEdit: edit,
    onEditResource: editResource
  };
  const partition =
    ready && schema
      ? selectedPartition(schema, form.resources.partition)
      : undefined;

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
      <WhereSection
        {...section}
        clusters={clusters}
        clusterId={clusterId}
        ready={ready}
        detailError={detailError}
        partitionField={fields.find(f => f.name === 'partition')}
        partition={partition}
      />
      {ready && (
        <SuggestionBanner
          suggestion={suggestion}
          holds={values => holdsResourceValues(schema!, form.resources, values)}
          onApply={applySuggestion}
        />
      )}
      {ready && (
        <ResourcesSection
          {...section}
          fields={fields.filter(f => f.name !== 'partition')}
        />
      )}
      <JobSection {...section} jobs={props.jobs} clusterId={clusterId} />
      <RunSection {...section} />
      <FormFooter
        ready={ready}
        submitting={state.submitting}
        invalid={
          state.attempted &&
          ((check !== null && !check.body) ||
            Object.keys(serverErrors).length > 0)
        }
        submitted={state.submitted}
        onOpenJob={props.onOpenJob}
      />
      {state.general.length > 0 && (
        <div className="jp-pwlab-error" role="alert" data-pwlab-error="general">
          {state.general.map((message, i) => (
            <div key={i}>{message}</div>
          ))}
        </div>
      )}
    </form>
  );
}

/**
 * Move focus to the first field marked invalid.
 */
function focusFirstError(form: HTMLFormElement | null): void {
  const target = form?.querySelector<HTMLElement>('[aria-invalid="true"]');
  target?.focus();
}
