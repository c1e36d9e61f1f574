/**
 * The resource form, generated from a cluster's `options_schema` (the JSON
 * Schema of a resource request that the server also checks against, and that
 * the notebook widgets use too). Pure functions: no DOM, no server.
 *
 * The schema names the partition as an enum and narrows the limits per
 * partition with `allOf` / `if` / `then` branches; `x-partitions` carries
 * the raw partition data.
 */
import {
  describeMinutes,
  formatMemory,
  formatWalltime,
  parseMemory,
  parseWalltime,
  type Parsed
} from './units';
import type { IPartition } from './types';

/**
 * A JSON Schema, as far as the form reads it.
 */
export type Schema = Record<string, unknown>;

/**
 * How a field is edited.
 */
export type FieldKind =
  'select' | 'integer' | 'number' | 'walltime' | 'memory' | 'text' | 'boolean';

/**
 * One field of the resource form, with the limits in force.
 */
export interface IFieldSpec {
  /**
   * The property name in the resource request (`cpus_per_task`).
   */
  name: string;
  /**
   * The field path the server names in its errors (`resources.cpus_per_task`).
   */
  key: string;
  label: string;
  description: string;
  kind: FieldKind;
  /**
   * The choices of a `select`.
   */
  options: string[];
  /**
   * Whether the field may be left empty (the server then applies its default).
   */
  optional: boolean;
  defaultValue: unknown;
  minimum: number | null;
  maximum: number | null;
  maxLength: number | null;
  pattern: string | null;
  /**
   * What sets `maximum`, e.g. `partition 'gpu'`, or null for a general bound.
   */
  limitSource: string | null;
}

/**
 * Labels people read, for the fields every cluster has.
 */
const LABELS: Record<string, string> = {
  partition: 'Partition',
  nodes: 'Nodes',
  ntasks: 'Tasks',
  cpus_per_task: 'CPUs per task',
  gpus: 'GPUs',
  memory_mb: 'Memory per node',
  time_limit_minutes: 'Walltime',
  array: 'Array',
  account: 'Account',
  qos: 'QOS'
};

/**
 * The fields of a resource form for the current values: the schema's
 * properties in order, with the limits of the `if`/`then` branches that the
 * values select (e.g. the chosen partition's) applied.
 *
 * @param values - parsed values so far; `partition` selects its branch
 */
export function resourceFields(
  schema: Schema,
  values: Record<string, unknown> = {}
): IFieldSpec[] {
  const properties = asObject(schema.properties);
  const branches = activeBranches(schema, values);
  return Object.entries(properties).map(([name, raw]) => {
    const field = baseField(name, asObject(raw));
    for (const branch of branches) {
      const bounds = asObject(asObject(branch.then.properties)[name]);
      applyBounds(field, bounds, branch.source);
    }
    return field;
  });
}

/**
 * The partition data the schema carries (`x-partitions`).
 */
export function schemaPartitions(schema: Schema): IPartition[] {
  const list = schema['x-partitions'];
  return Array.isArray(list) ? (list as IPartition[]) : [];
}

/**
 * The partition a request goes to: the one named, else the schema's default.
 */
export function selectedPartition(
  schema: Schema,
  name: string | undefined | null
): IPartition | undefined {
  const partitions = schemaPartitions(schema);
  const wanted =
    name || (asObject(asObject(schema.properties).partition).default as string);
  return partitions.find(p => p.name === wanted);
}

/**
 * The text a field starts with: its default, or what `request` holds.
 */
export function fieldText(field: IFieldSpec, value: unknown): string {
  if (value === null || value === undefined || value === '') {
    return '';
  }
  if (field.kind === 'walltime' && typeof value === 'number') {
    return formatWalltime(value);
  }
  return String(value);
}

/**
 * A resource request built from the texts of the form, and what is wrong
 * with it, by field key (`resources.gpus`).
 */
export interface IValidation {
  resources: Record<string, unknown>;
  errors: Record<string, string>;
  fields: IFieldSpec[];
}

/**
 * Parse and check the texts of the resource form against the schema: types,
 * bounds (with the chosen partition's limits, named in the message), patterns,
 * and the CPU and GPU totals the partition can give. Empty optional fields are
 * left out, so the server applies its defaults.
 */
export function validateResources(
  schema: Schema,
  texts: Record<string, string>
): IValidation {
  const errors: Record<string, string> = {};
  const resources: Record<string, unknown> = {};
  // The partition decides the limits of every other field: read it first.
  const partition = (texts.partition ?? '').trim();
  const fields = resourceFields(schema, partition ? { partition } : {});
  for (const field of fields) {
    const result = parseField(field, texts[field.name] ?? '');
    if (!result.ok) {
      errors[field.key] = result.error;
    } else if (result.value !== undefined) {
      resources[field.name] = result.value;
    }
  }
  checkTotals(schema, fields, resources, errors);
  return { resources, errors, fields };
}

/**
 * Parse one field's text; `value` is undefined for an empty optional field.
 */
export function parseField(
  field: IFieldSpec,
  text: string
): Parsed<unknown | undefined> {
  const value = text.trim();
  if (value === '') {
    if (field.optional) {
      return { ok: true, value: undefined };
    }
    return { ok: false, error: 'Required' };
  }
  let parsed: Parsed<unknown>;
  switch (field.kind) {
    case 'select':
      parsed = field.options.includes(value)
        ? { ok: true, value }
        : { ok: false, error: `Choose one of ${field.options.join(', ')}` };
      break;
    case 'integer':
      parsed = /^[-+]?\d+$/.test(value)
        ? { ok: true, value: Number(value) }
        : { ok: false, error: 'Enter a whole number' };
      break;
    case 'number':
      parsed = Number.isFinite(Number(value))
        ? { ok: true, value: Number(value) }
        : { ok: false, error: 'Enter a number' };
      break;
    case 'walltime':
      parsed = parseWalltime(value);
      break;
    case 'memory':
      parsed = parseMemory(value);
      break;
    case 'boolean':
      parsed =
        value === 'true' || value === 'false'
          ? { ok: true, value: value === 'true' }
          : { ok: false, error: 'Choose yes or no' };
      break;
    default:
      parsed = checkText(field, value);
  }
  if (!parsed.ok || typeof parsed.value !== 'number') {
    return parsed;
  }
  const error = checkBounds(field, parsed.value);
  return error ? { ok: false, error } : parsed;
}

/**
 * A value of a field as people read it: `1:30:00`, `4 GiB`, `12`.
 */
export function formatFieldValue(field: IFieldSpec, value: number): string {
  switch (field.kind) {
    case 'walltime':
      return `${formatWalltime(value)} (${describeMinutes(value)})`;
    case 'memory':
      return formatMemory(value);
    default:
      return String(value);
  }
}

/**
 * The limit of a field as a hint: `max 1:00:00 (1 h) on partition 'local'`.
 */
export function limitHint(field: IFieldSpec): string {
  if (field.maximum === null) {
    return '';
  }
  const where = field.limitSource ? ` on ${field.limitSource}` : '';
  return `max ${formatFieldValue(field, field.maximum)}${where}`;
}

interface IBranch {
  then: Schema;
  source: string | null;
}

function baseField(name: string, raw: Schema): IFieldSpec {
  // Pydantic writes optional fields as anyOf [the type, null].
  let spec = raw;
  let optional = raw.default !== undefined;
  if (Array.isArray(raw.anyOf)) {
    const branches = raw.anyOf.map(asObject);
    optional = optional || branches.some(b => b.type === 'null');
    const typed = branches.find(b => b.type !== 'null');
    if (typed) {
      spec = { ...typed, ...raw };
      delete spec.anyOf;
    }
  }
  const type = Array.isArray(spec.type)
    ? (spec.type as unknown[]).find(t => t !== 'null')
    : spec.type;
  if (Array.isArray(spec.type) && spec.type.includes('null')) {
    optional = true;
  }
  const options = Array.isArray(spec.enum)
    ? spec.enum.filter(v => v !== null).map(String)
    : [];
  let kind: FieldKind;
  if (name === 'time_limit_minutes') {
    kind = 'walltime';
  } else if (name === 'memory_mb') {
    kind = 'memory';
  } else if (options.length > 0) {
    kind = 'select';
  } else if (type === 'integer') {
    kind = 'integer';
  } else if (type === 'number') {
    kind = 'number';
  } else if (type === 'boolean') {
    kind = 'boolean';
  } else {
    kind = 'text';
  }
  return {
    name,
    key: `resources.${name}`,
    label: LABELS[name] ?? (typeof spec.title === 'string' ? spec.title : name),
    description: typeof spec.description === 'string' ? spec.description : '',
    kind,
    options,
    optional,
    defaultValue: spec.default ?? null,
    minimum: numberOrNull(spec.minimum),
    maximum: numberOrNull(spec.maximum),
    maxLength: numberOrNull(spec.maxLength),
    pattern: typeof spec.pattern === 'string' ? spec.pattern : null,
    limitSource: null
  };
}

function applyBounds(
  field: IFieldSpec,
  bounds: Schema,
  source: string | null
): void {
  const maximum = numberOrNull(bounds.maximum);
  if (
    maximum !== null &&
    (field.maximum === null || maximum <= field.maximum)
  ) {
    field.maximum = maximum;
    field.limitSource = source;
  }
  const minimum = numberOrNull(bounds.minimum);
  if (minimum !== null && (field.minimum === null || minimum > field.minimum)) {
    field.minimum = minimum;
  }
  if (Array.isArray(bounds.enum)) {
    const allowed = bounds.enum.filter(v => v !== null).map(String);
    if (field.kind === 'text') {
      // Free text on the cluster, a fixed list on this partition (e.g. its accounts).
      field.kind = 'select';
      field.options = allowed;
      field.limitSource = source;
    } else {
      field.options = field.options.filter(o => allowed.includes(o));
    }
  }
}

/**
 * The `then` parts of the `allOf` branches whose `if` the values satisfy.
 */
function activeBranches(
  schema: Schema,
  values: Record<string, unknown>
): IBranch[] {
  const allOf = Array.isArray(schema.allOf) ? schema.allOf.map(asObject) : [];
  const active: IBranch[] = [];
  for (const branch of allOf) {
    const condition = asObject(branch.if);
    if (!branch.then || !matches(condition, values)) {
      continue;
    }
    active.push({ then: asObject(branch.then), source: describe(condition) });
  }
  return active;
}

/**
 * Whether values satisfy an `if` schema (the subset the server writes:
 * `required` and per-property `const` / `enum`).
 */
function matches(condition: Schema, values: Record<string, unknown>): boolean {
  const present = (name: string) =>
    values[name] !== undefined && values[name] !== null && values[name] !== '';
  const required = Array.isArray(condition.required)
    ? condition.required.map(String)
    : [];
  if (!required.every(present)) {
    return false;
  }
  for (const [name, raw] of Object.entries(asObject(condition.properties))) {
    if (!present(name)) {
      continue; // an absent property satisfies its subschema
    }
    const rule = asObject(raw);
    if ('const' in rule && values[name] !== rule.const) {
      return false;
    }
    if (Array.isArray(rule.enum) && !rule.enum.includes(values[name])) {
      return false;
    }
  }
  return true;
}

/**
 * A branch condition in words: `partition 'gpu'`.
 */
function describe(condition: Schema): string | null {
  const parts = Object.entries(asObject(condition.properties))
    .map(([name, raw]) => {
      const rule = asObject(raw);
      return 'const' in rule ? `${name} '${String(rule.const)}'` : null;
    })
    .filter((part): part is string => part !== null);
  return parts.length ? parts.join(', ') : null;
}

function checkText(field: IFieldSpec, value: string): Parsed<string> {
  if (field.maxLength !== null && value.length > field.maxLength) {
    return {
      ok: false,
      error: `At most ${field.maxLength} characters`
    };
  }
  if (field.pattern !== null) {
    let pattern: RegExp | null = null;
    try {
      pattern = new RegExp(field.pattern, 'u');
    } catch {
      pattern = null; // a pattern this browser cannot compile: the server checks
    }
    if (pattern && !pattern.test(value)) {
      return {
        ok: false,
        error:
          field.name === 'array'
            ? 'Use e.g. 1-10, 1,3,5 or 0-99%10'
            : 'Invalid value'
      };
    }
  }
  return { ok: true, value };
}

function checkBounds(field: IFieldSpec, value: number): string | null {
  if (field.maximum !== null && value > field.maximum) {
    const where = field.limitSource ? ` on ${field.limitSource}` : '';
    if (field.maximum === 0) {
      return `Not available${where} (limit 0)`;
    }
    return `${formatFieldValue(field, value)} exceeds the limit of ${formatFieldValue(field, field.maximum)}${where}`;
  }
  if (field.minimum !== null && value < field.minimum) {
    return `Must be at least ${formatFieldValue(field, field.minimum)}`;
  }
  return null;
}

/**
 * The checks the server makes across fields, on the chosen partition's data:
 * tasks × CPUs per task must fit on the nodes, and GPUs too.
 */
function checkTotals(
  schema: Schema,
  fields: IFieldSpec[],
  resources: Record<string, unknown>,
  errors: Record<string, string>
): void {
  const partition = selectedPartition(
    schema,
    resources.partition as string | undefined
  );
  if (!partition) {
    return;
  }
  const valueOf = (name: string): number => {
    const value = resources[name];
    if (typeof value === 'number') {
      return value;
    }
    const field = fields.find(f => f.name === name);
    return typeof field?.defaultValue === 'number' ? field.defaultValue : 1;
  };
  const has = (name: string) => fields.some(f => f.name === name);
  const nodes = valueOf('nodes');
  const where = `partition '${partition.name}'`;
  if (
    partition.cpus_per_node &&
    has('ntasks') &&
    !errors['resources.ntasks'] &&
    !errors['resources.cpus_per_task'] &&
    !errors['resources.nodes']
  ) {
    const ntasks = valueOf('ntasks');
    const perTask = has('cpus_per_task') ? valueOf('cpus_per_task') : 1;
    const total = nodes * partition.cpus_per_node;
    if (ntasks * perTask > total) {
      errors['resources.ntasks'] =
        `${ntasks} tasks × ${perTask} CPUs = ${ntasks * perTask} CPUs exceeds ` +
        `the limit of ${total} CPUs on ${nodes} node(s) of ${where}`;
    }
  }
  if (has('gpus') && !errors['resources.gpus'] && !errors['resources.nodes']) {
    const gpus = resources.gpus as number | undefined;
    const total = partition.gpus_per_node * nodes;
    if (gpus && gpus > total) {
      errors['resources.gpus'] =
        total === 0
          ? `Not available on ${where} (limit 0)`
          : `${gpus} exceeds the limit of ${total} GPUs on ${nodes} node(s) of ${where}`;
    }
  }
}

function asObject(value: unknown): Schema {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Schema)
    : {};
}

function numberOrNull(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}
