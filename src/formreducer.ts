/**
 * The submit form's state and every change to it, as one pure reducer
 * (`useReducer` in `components/submitform.tsx`), so each change can be
 * tested without rendering the form.
 */
import { resourceFields, type Schema } from './schema';
import {
  applyPrefill,
  resourceTexts,
  templateFields,
  withResourceValues,
  type IFormPrefill,
  type IFormState
} from './submission';
import type { IJob, ITemplate } from './types';

/**
 * Everything the submit form remembers between renders.
 */
export interface ISubmitFormState {
  /**
   * What the user has entered.
   */
  form: IFormState;
  /**
   * The cluster whose schema the resource texts were made for (`null`: make
   * them again from `baseResources`).
   */
  textsFor: string | null;
  /**
   * The resource values the texts start from (the prefill, or a template).
   */
  baseResources: Record<string, unknown>;
  /**
   * Field keys edited since the form opened (or a template was applied):
   * their errors show before the first submit.
   */
  touched: ReadonlySet<string>;
  /**
   * A submit was tried: every field's error shows.
   */
  attempted: boolean;
  /**
   * Errors the server placed on fields, by field key.
   */
  serverErrors: Record<string, string>;
  /**
   * Server errors that belong to no field.
   */
  general: string[];
  submitting: boolean;
  /**
   * The job the last submit made, until the form changes.
   */
  submitted: IJob | null;
}

/**
 * A change to the submit form.
 */
export type SubmitFormAction =
  /**
   * The user changed the field `key` (the `change` to the form, if any).
   */
  | { type: 'edit'; key: string; change: Partial<IFormState> }
  /**
   * The user changed the text of resource field `name` (field key `key`).
   */
  | { type: 'editResource'; key: string; name: string; value: string }
  /**
   * The schema of `cluster` is known: make the resource texts for it.
   */
  | { type: 'fillTexts'; cluster: string; schema: Schema }
  /**
   * Fill the form from a template; `cluster` is the one shown now and
   * `clusters` the ids that exist.
   */
  | {
      type: 'applyTemplate';
      template: ITemplate;
      cluster: string;
      clusters: readonly string[];
    }
  /**
   * Take a suggestion's resource values.
   */
  | { type: 'applySuggestion'; schema: Schema; values: Record<string, unknown> }
  /**
   * Show the errors of these fields (a template could not be drafted).
   */
  | { type: 'touch'; keys: readonly string[] }
  /**
   * The user pressed Submit.
   */
  | { type: 'attempt' }
  /**
   * The form is valid: the submission is on its way.
   */
  | { type: 'submitStart' }
  | { type: 'submitDone'; job: IJob }
  /**
   * The submission failed: `general` messages, and `fields` errors when the
   * server placed some (left as they were when it did not).
   */
  | {
      type: 'submitFailed';
      general: string[];
      fields?: Record<string, string>;
    };

/**
 * The state a form opens with.
 */
export function initialFormState(prefill: IFormPrefill): ISubmitFormState {
  return {
    form: applyPrefill(prefill, prefill.cluster ?? '', null),
    textsFor: null,
    baseResources: prefill.resources ?? {},
    touched: new Set(),
    attempted: false,
    serverErrors: {},
    general: [],
    submitting: false,
    submitted: null
  };
}

/**
 * The submit form's reducer: a pure function of the state and one action.
 */
export function submitFormReducer(
  state: ISubmitFormState,
  action: SubmitFormAction
): ISubmitFormState {
  switch (action.type) {
    case 'edit':
      return edited(state, action.key, action.change);
    case 'editResource':
      return edited(state, action.key, {
        resources: { ...state.form.resources, [action.name]: action.value }
      });
    case 'fillTexts':
      return {
        ...state,
        form: {
          ...state.form,
          cluster: action.cluster,
          resources: textsFor(state, action.schema)
        },
        textsFor: action.cluster
      };
    case 'applyTemplate': {
      const fields = templateFields(action.template);
      if (fields.cluster && !action.clusters.includes(fields.cluster)) {
        delete fields.cluster;
      }
      return {
        ...state,
        form: { ...state.form, cluster: action.cluster, ...fields },
        baseResources: action.template.resources ?? {},
        // Make the texts again on the (new) cluster's schema, from the template.
        textsFor: null,
        touched: new Set(),
        serverErrors: {},
        attempted: false,
        submitted: null
      };
    }
    case 'applySuggestion': {
      const touched = new Set(state.touched);
      Object.keys(action.values).forEach(name =>
        touched.add(`resources.${name}`)
      );
      return {
        ...state,
        form: {
          ...state.form,
          resources: withResourceValues(
            action.schema,
            state.form.resources,
            action.values
          )
        },
        touched,
        submitted: null
      };
    }
    case 'touch':
      return { ...state, touched: new Set([...state.touched, ...action.keys]) };
    case 'attempt':
      return { ...state, attempted: true, general: [] };
    case 'submitStart':
      return { ...state, submitting: true };
    case 'submitDone':
      return {
        ...state,
        submitting: false,
        submitted: action.job,
        serverErrors: {}
      };
    case 'submitFailed':
      return {
        ...state,
        submitting: false,
        general: action.general,
        serverErrors: action.fields ?? state.serverErrors
      };
  }
}

/**
 * A field changed: it counts as touched, the server's error on it is moot,
 * and the last submission's note goes.
 */
function edited(
  state: ISubmitFormState,
  key: string,
  change: Partial<IFormState>
): ISubmitFormState {
  let serverErrors = state.serverErrors;
  if (serverErrors[key]) {
    serverErrors = { ...serverErrors };
    delete serverErrors[key];
  }
  return {
    ...state,
    form: { ...state.form, ...change },
    touched: new Set(state.touched).add(key),
    serverErrors,
    submitted: null
  };
}

/**
 * The resource texts for a cluster's schema: from the base values the first
 * time; on another cluster, what was typed wherever that field exists (and a
 * chosen option is still offered).
 */
function textsFor(
  state: ISubmitFormState,
  schema: Schema
): Record<string, string> {
  if (state.textsFor === null) {
    return resourceTexts(schema, state.baseResources);
  }
  const texts = resourceTexts(schema, {});
  for (const field of resourceFields(schema, {})) {
    const typed = state.form.resources[field.name];
    if (typed === undefined) {
      continue;
    }
    if (field.kind === 'select' && !field.options.includes(typed)) {
      continue;
    }
    texts[field.name] = typed;
  }
  return texts;
}
