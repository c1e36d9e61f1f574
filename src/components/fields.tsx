import * as React from 'react';

import {
  formatFieldValue,
  limitHint,
  parseField,
  type IFieldSpec
} from '../schema';
import { MEMORY_HINT, WALLTIME_HINT } from '../units';

/**
 * A labelled form row: the control, a hint, and the error (announced).
 */
export function FieldRow(props: {
  id: string;
  fieldKey: string;
  label: string;
  hint?: string;
  error?: string;
  children: React.ReactNode;
}): React.ReactElement {
  return (
    <div
      className={`jp-pwlab-field${props.error ? ' jp-mod-invalid' : ''}`}
      data-pwlab-field={props.fieldKey}
    >
      <label className="jp-pwlab-field-label" htmlFor={props.id}>
        {props.label}
      </label>
      <div className="jp-pwlab-field-control">{props.children}</div>
      {props.hint && (
        <div className="jp-pwlab-field-hint" id={`${props.id}-hint`}>
          {props.hint}
        </div>
      )}
      {props.error && (
        <div
          className="jp-pwlab-field-error"
          id={`${props.id}-error`}
          role="alert"
          data-pwlab-error={props.fieldKey}
        >
          {props.error}
        </div>
      )}
    </div>
  );
}

/**
 * The aria attributes that tie a control to its hint and error.
 */
export function describedBy(
  id: string,
  hint: string | undefined,
  error: string | undefined
): Record<string, string | boolean | undefined> {
  const ids = [hint ? `${id}-hint` : '', error ? `${id}-error` : '']
    .filter(Boolean)
    .join(' ');
  return {
    'aria-invalid': error ? true : undefined,
    'aria-describedby': ids || undefined
  };
}

/**
 * The hint under a resource field: what the text means and the limit.
 */
export function resourceHint(field: IFieldSpec, text: string): string {
  const parts: string[] = [];
  if (text.trim() && (field.kind === 'walltime' || field.kind === 'memory')) {
    const parsed = parseField({ ...field, maximum: null, minimum: null }, text);
    if (parsed.ok && typeof parsed.value === 'number') {
      parts.push(`= ${formatFieldValue(field, parsed.value)}`);
    }
  }
  const limit = limitHint(field);
  if (limit) {
    parts.push(limit);
  }
  if (!text.trim() && field.kind === 'walltime') {
    parts.push(WALLTIME_HINT);
  } else if (!text.trim() && field.kind === 'memory') {
    parts.push(MEMORY_HINT);
  }
  return parts.join(' · ');
}

/**
 * One resource field, as its schema kind asks.
 */
export function ResourceField(props: {
  field: IFieldSpec;
  idPrefix: string;
  value: string;
  error?: string;
  onChange: (value: string) => void;
}): React.ReactElement {
  const { field, value, error } = props;
  const id = `${props.idPrefix}-${field.name}`;
  const hint = resourceHint(field, value);
  const aria = describedBy(id, hint, error);
  let control: React.ReactElement;
  if (field.kind === 'select' || field.kind === 'boolean') {
    const options =
      field.kind === 'boolean' ? ['true', 'false'] : field.options;
    control = (
      <select
        id={id}
        className="jp-mod-styled"
        name={field.name}
        value={value}
        onChange={e => props.onChange(e.target.value)}
        {...aria}
      >
        {field.optional && field.defaultValue === null && (
          <option value="">(default)</option>
        )}
        {options.map(option => (
          <option key={option} value={option}>
            {option}
          </option>
        ))}
      </select>
    );
  } else {
    const numeric = field.kind === 'integer' || field.kind === 'number';
    control = (
      <input
        id={id}
        className="jp-mod-styled"
        name={field.name}
        type="text"
        inputMode={numeric ? 'numeric' : undefined}
        autoComplete="off"
        spellCheck={false}
        placeholder={placeholderFor(field)}
        value={value}
        onChange={e => props.onChange(e.target.value)}
        {...aria}
      />
    );
  }
  return (
    <FieldRow
      id={id}
      fieldKey={field.key}
      label={field.label}
      hint={hint}
      error={error}
    >
      {control}
    </FieldRow>
  );
}

function placeholderFor(field: IFieldSpec): string | undefined {
  switch (field.kind) {
    case 'walltime':
      return '1:00:00';
    case 'memory':
      return '4G';
    default:
      if (field.name === 'array') {
        return '1-10';
      }
      return field.optional ? '(default)' : undefined;
  }
}
