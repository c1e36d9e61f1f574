/**
 * The submit form's state, the `POST jobs` body built from it, prefills (a
 * file, an earlier job) and where server errors land. Pure functions.
 */
import {
  fieldText,
  resourceFields,
  validateResources,
  type Schema
} from './schema';
import type {
  IFieldError,
  IJob,
  IJobSource,
  IJobSubmission,
  ISuggestionRequest,
  ITemplate,
  ITemplateInput
} from './types';

/**
 * What runs: a batch script, or one command line.
 */
export type RunMode = 'script' | 'command';

/**
 * Everything the submit form holds, as typed.
 */
export interface IFormState {
  cluster: string;
  /**
   * Resource field texts by property name (`cpus_per_task` → `"4"`).
   */
  resources: Record<string, string>;
  name: string;
  /**
   * Relative to the Jupyter root directory, like file browser paths.
   */
  workingDir: string;
  mode: RunMode;
  script: string;
  command: string;
  /**
   * Ids of jobs that must complete successfully first.
   */
  after: string[];
  /**
   * `KEY=value` lines.
   */
  env: string;
  /**
   * The notebook (and cell) the job comes from, sent as `source`.
   */
  source: IJobSource | null;
}

/**
 * What a form is opened with; anything left out takes its default.
 */
export type IFormPrefill = Partial<Omit<IFormState, 'resources'>> & {
  /**
   * Resource values as the API holds them (numbers in minutes and MiB).
   */
  resources?: Record<string, unknown>;
};

/**
 * The script a new form starts with.
 */
export const DEFAULT_SCRIPT = '#!/bin/bash\n\n';

/**
 * Form keys that are not resources.
 */
export const FORM_KEYS = [
  'cluster',
  'name',
  'working_dir',
  'script',
  'command',
  'after',
  'env'
] as const;

/**
 * An empty form for a cluster.
 */
export function emptyForm(cluster = ''): IFormState {
  return {
    cluster,
    resources: {},
    name: '',
    workingDir: '',
    mode: 'script',
    script: DEFAULT_SCRIPT,
    command: '',
    after: [],
    env: '',
    source: null
  };
}

/**
 * Parse `KEY=value` lines (blank lines and `#` comments are skipped).
 */
export function parseEnv(
  text: string
): { ok: true; value: Record<string, string> } | { ok: false; error: string } {
  const env: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line || line.startsWith('#')) {
      continue;
    }
    const eq = line.indexOf('=');
    const key = eq < 0 ? line : line.slice(0, eq).trim();
    if (eq < 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
      return {
        ok: false,
        error: `Line ${i + 1}: write NAME=value (NAME of letters, digits, _)`
      };
    }
    env[key] = line.slice(eq + 1);
  }
  return { ok: true, value: env };
}

/**
 * The comment a resubmitted form puts above a secret-named variable whose
 * value the server did not keep (`# re-enter: NAME`).
 */
export const REENTER_PREFIX = '# re-enter the value (not kept by the server): ';

/**
 * Variables marked "re-enter" whose value is still empty.
 */
export function reenterMissing(
  text: string,
  env: Record<string, string>
): string[] {
  const missing: string[] = [];
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed.startsWith(REENTER_PREFIX)) {
      const name = trimmed.slice(REENTER_PREFIX.length).trim();
      if (name in env && env[name] === '') {
        missing.push(name);
      }
    }
  }
  return missing;
}

/**
 * The `POST jobs` body of a form, or what is wrong with it by field key.
 */
export function buildSubmission(
  state: IFormState,
  schema: Schema | null
): { body: IJobSubmission | null; errors: Record<string, string> } {
  const errors: Record<string, string> = {};
  if (!state.cluster) {
    errors.cluster = 'Choose a cluster';
  }
  let resources: Record<string, unknown> = {};
  if (schema) {
    const checked = validateResources(schema, state.resources);
    Object.assign(errors, checked.errors);
    resources = checked.resources;
  }
  const body: IJobSubmission = { cluster: state.cluster, resources };
  if (state.mode === 'script') {
    if (!state.script.trim() || state.script.trim() === DEFAULT_SCRIPT.trim()) {
      errors.script = 'Write the script to run';
    } else {
      body.script = state.script;
    }
  } else if (!state.command.trim()) {
    errors.command = 'Write the command to run';
  } else {
    body.command = state.command.trim();
  }
  const name = state.name.trim();
  if (name) {
    if (name.startsWith('-')) {
      errors.name = "Must not start with '-'";
    }
    body.name = name;
  }
  const workingDir = state.workingDir.trim().replace(/^\/+/, '');
  if (workingDir) {
    body.working_dir = workingDir;
  }
  if (state.after.length) {
    body.after = [...state.after];
  }
  const env = parseEnv(state.env);
  if (!env.ok) {
    errors.env = env.error;
  } else {
    const missing = reenterMissing(state.env, env.value);
    if (missing.length) {
      errors.env = `Re-enter the value of ${missing.join(', ')}: secret values are not kept after a job is submitted`;
    } else if (Object.keys(env.value).length) {
      body.env = env.value;
    }
  }
  if (state.source?.notebook_path) {
    body.source = {
      notebook_path: state.source.notebook_path,
      cell_id: state.source.cell_id ?? null
    };
  }
  return Object.keys(errors).length ? { body: null, errors } : { body, errors };
}

/**
 * What the form would run, if anything: the script (unless it is still the
 * empty default) or the command.
 */
function runnable(
  state: IFormState
): { script: string } | { command: string } | null {
  if (state.mode === 'script') {
    const script = state.script.trim();
    return script && script !== DEFAULT_SCRIPT.trim()
      ? { script: state.script }
      : null;
  }
  const command = state.command.trim();
  return command ? { command } : null;
}

/**
 * The `POST suggestions` body for a form, or null while the form names no
 * cluster or nothing to run. Resource fields that do not parse are left out.
 */
export function suggestionRequest(
  state: IFormState,
  schema: Schema | null
): ISuggestionRequest | null {
  const run = runnable(state);
  if (!state.cluster || !run || !schema) {
    return null;
  }
  const body: ISuggestionRequest = {
    cluster: state.cluster,
    ...run,
    resources: validateResources(schema, state.resources).resources
  };
  const name = state.name.trim();
  if (name) {
    body.name = name;
  }
  return body;
}

/**
 * Resource values (as the API holds them) written into the form's texts, for
 * the fields the schema has; other texts are kept.
 */
export function withResourceValues(
  schema: Schema,
  texts: Record<string, string>,
  values: Record<string, unknown>
): Record<string, string> {
  const next = { ...texts };
  const partition =
    typeof values.partition === 'string' ? values.partition : texts.partition;
  for (const field of resourceFields(schema, partition ? { partition } : {})) {
    if (field.name in values && values[field.name] !== undefined) {
      next[field.name] = fieldText(field, values[field.name]);
    }
  }
  return next;
}

/**
 * Whether the form's texts already hold these resource values.
 */
export function holdsResourceValues(
  schema: Schema,
  texts: Record<string, string>,
  values: Record<string, unknown>
): boolean {
  const filled = withResourceValues(schema, texts, values);
  return Object.keys(filled).every(
    key => (filled[key] ?? '') === (texts[key] ?? '')
  );
}

/**
 * What "Save as template…" sends besides the name and description: the
 * cluster, the resources as parsed, the script or command. The resource
 * errors by field key when a field does not parse.
 */
export function templateDraft(
  state: IFormState,
  schema: Schema | null
):
  | { draft: Omit<ITemplateInput, 'name' | 'description'>; errors: null }
  | { draft: null; errors: Record<string, string> } {
  if (!schema) {
    return { draft: null, errors: { cluster: 'Choose a cluster' } };
  }
  const checked = validateResources(schema, state.resources);
  if (Object.keys(checked.errors).length) {
    return { draft: null, errors: checked.errors };
  }
  return {
    draft: {
      cluster: state.cluster || null,
      resources: checked.resources,
      ...(runnable(state) ?? {})
    },
    errors: null
  };
}

/**
 * The form fields a template sets: its cluster (when it names one), its
 * script or command; resources are applied by the form on the cluster's
 * schema.
 */
export function templateFields(template: ITemplate): Partial<IFormState> {
  const fields: Partial<IFormState> = {};
  if (template.cluster) {
    fields.cluster = template.cluster;
  }
  if (template.script !== null && template.script !== undefined) {
    fields.mode = 'script';
    fields.script = template.script;
  } else if (template.command !== null && template.command !== undefined) {
    fields.mode = 'command';
    fields.command = template.command;
  }
  return fields;
}

/**
 * Server errors by form key: each on the field it names (`resources.gpus`,
 * `working_dir`, or a sub-path of one), the rest as general messages.
 */
export function placeServerErrors(
  errors: readonly IFieldError[],
  resourceNames: readonly string[]
): { fields: Record<string, string>; general: string[] } {
  const keys: string[] = [
    ...FORM_KEYS,
    ...resourceNames.map(name => `resources.${name}`)
  ];
  const fields: Record<string, string> = {};
  const general: string[] = [];
  for (const error of errors) {
    const key = keys.find(
      k => error.field === k || error.field.startsWith(k + '.')
    );
    if (key) {
      fields[key] = fields[key]
        ? `${fields[key]}; ${error.message}`
        : error.message;
    } else {
      general.push(
        error.field ? `${error.field}: ${error.message}` : error.message
      );
    }
  }
  return { fields, general };
}

/**
 * The form state a prefill gives on a cluster with this schema.
 */
export function applyPrefill(
  prefill: IFormPrefill,
  cluster: string,
  schema: Schema | null
): IFormState {
  const { resources, ...rest } = prefill;
  const state: IFormState = { ...emptyForm(cluster), ...rest, cluster };
  if (schema) {
    state.resources = resourceTexts(schema, resources ?? {});
  }
  return state;
}

/**
 * The resource texts for a schema: the request's values where it has them,
 * else the schema's defaults.
 */
export function resourceTexts(
  schema: Schema,
  request: Record<string, unknown>
): Record<string, string> {
  const texts: Record<string, string> = {};
  for (const field of resourceFields(schema, request)) {
    const value = request[field.name];
    texts[field.name] = fieldText(
      field,
      value === undefined || value === null ? field.defaultValue : value
    );
  }
  return texts;
}

/**
 * The folder of a path (`a/b/c.sh` → `a/b`, `c.sh` → '').
 */
export function dirname(path: string): string {
  const index = path.lastIndexOf('/');
  return index < 0 ? '' : path.slice(0, index);
}

/**
 * The last part of a path (`a/b/c.sh` → `c.sh`).
 */
export function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/**
 * A word for bash, single-quoted when it needs to be.
 */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_./+-]+$/.test(word) && !word.startsWith('-')) {
    return word;
  }
  const safe = word.startsWith('-') ? `./${word}` : word;
  return `'${safe.replace(/'/g, `'\\''`)}'`;
}

/**
 * A job name from a file name: no extension, nothing a scheduler may refuse.
 */
export function jobNameFor(path: string): string {
  const stem = basename(path).replace(/\.[^.]+$/, '') || basename(path);
  return stem.replace(/[^A-Za-z0-9_.+-]/g, '_').replace(/^-+/, '') || 'job';
}

/**
 * The prefill for submitting a file: its folder is the working directory; a
 * Python file runs with the cluster's interpreter, anything else is the batch
 * script itself (so its `#SBATCH` lines apply).
 *
 * @param path - the file's path relative to the Jupyter root
 * @param content - the file's text
 * @param python - the interpreter of the target cluster
 */
export function prefillFromFile(
  path: string,
  content: string,
  python = 'python3'
): IFormPrefill {
  const prefill: IFormPrefill = {
    name: jobNameFor(path),
    workingDir: dirname(path)
  };
  if (/\.ipynb$/i.test(path)) {
    prefill.source = { notebook_path: path, cell_id: null };
  }
  if (/\.py$/i.test(path) && !content.startsWith('#!/bin/')) {
    prefill.mode = 'command';
    prefill.command = `${python} ${shellQuote(basename(path))}`;
  } else {
    prefill.mode = 'script';
    prefill.script = content;
  }
  return prefill;
}

/**
 * A path below the Jupyter root as the file browser writes it, or the path
 * itself when it is elsewhere.
 */
export function relativeToRoot(path: string, root: string): string {
  const base = root.replace(/\/+$/, '');
  if (base && (path === base || path.startsWith(base + '/'))) {
    return path.slice(base.length + 1);
  }
  return path;
}

/**
 * The prefill to resubmit a job with edits: same cluster, resources, name,
 * working directory; the script when it is known.
 */
export function prefillFromJob(
  job: IJob,
  serverRoot: string,
  spec?: IJobSubmission
): IFormPrefill {
  const resources: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(job.resources ?? {})) {
    if (value !== null && value !== undefined) {
      resources[key] = value;
    }
  }
  const prefill: IFormPrefill = {
    cluster: job.cluster,
    name: job.name,
    resources,
    workingDir: job.working_dir
      ? relativeToRoot(job.working_dir, serverRoot)
      : ''
  };
  if (spec?.script !== undefined) {
    prefill.mode = 'script';
    prefill.script = spec.script;
  } else if (spec?.command !== undefined) {
    prefill.mode = 'command';
    prefill.command = spec.command;
  }
  if (spec?.env) {
    const redacted = new Set(spec.redacted_env ?? []);
    prefill.env = Object.entries(spec.env)
      .map(([key, value]) =>
        redacted.has(key)
          ? `${REENTER_PREFIX}${key}\n${key}=`
          : `${key}=${value}`
      )
      .join('\n');
  }
  // A job from a notebook cell, resubmitted, still comes from that cell.
  const source = spec?.source ?? job.provenance;
  if (source?.notebook_path) {
    prefill.source = {
      notebook_path: source.notebook_path,
      cell_id: source.cell_id ?? null
    };
  }
  return prefill;
}
