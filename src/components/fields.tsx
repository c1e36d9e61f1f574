import * as React from 'react';

import {
  formatFieldValue,
  limitHint,
  parseField,
  type IFieldSpec
} from '../schema';
import { MEMORY_HINT, WALLTIME_HINT } from '../units';

/**
 * What every form field shows around its control.
 */
export interface IFieldFrame {
  /**
   * The control's DOM id; the hint and error ids derive from it.
   */
  id: string;
  /**
   * The key errors are filed under (`name`, `resources.nodes`).
   */
  fieldKey: string;
  label: string;
  hint?: string;
  error?: string;
}

/**
 * A labelled form row: the control, a hint, and the error (announced).
 */
export function FieldRow(
  props: IFieldFrame & { children: React.ReactNode }
): React.ReactElement {
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
 * The attributes a field's control needs: its id, and the aria attributes
 * that tie it to the field's hint and error.
 */
export type FieldControlProps = { id: string } & Record<
  string,
  string | boolean | undefined
>;

/**
 * A form field: the label, the control `children` renders (given the
 * attributes it must carry), the hint, and the error.
 */
export function FormField(
  props: IFieldFrame & {
    children: (control: FieldControlProps) => React.ReactElement;
  }
): React.ReactElement {
  const { children, ...frame } = props;
  const { id, hint, error } = frame;
  return (
    <FieldRow {...frame}>
      {children({ id, ...describedBy(id, hint, error) })}
    </FieldRow>
  );
}

/**
 * A free-text form field: a one-line input, or a textarea with `rows`.
 */
export function TextField(
  props: IFieldFrame & {
    name: string;
    value: string;
    onChange: (value: string) => void;
    /**
     * Classes beside `jp-mod-styled`.
     */
    className?: string;
    /**
     * Lines of a textarea; a one-line input without.
     */
    rows?: number;
    placeholder?: string;
    spellCheck?: boolean;
  }
): React.ReactElement {
  const { name, value, rows, placeholder, spellCheck, ...rest } = props;
  const { onChange, className: extra, ...frame } = rest;
  const className = `jp-mod-styled${extra ? ` ${extra}` : ''}`;
  const text = { name, value, spellCheck, className };
  return (
    <FormField {...frame}>
      {control =>
        rows === undefined ? (
          <input
            {...control}
            {...text}
            type="text"
            autoComplete="off"
            placeholder={placeholder}
            onChange={e => onChange(e.target.value)}
          />
        ) : (
          <textarea
            {...control}
            {...text}
            rows={rows}
            onChange={e => onChange(e.target.value)}
          />
        )
      }
    </FormField>
  );
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
  const onChange = (
    e: React.ChangeEvent<HTMLSelectElement | HTMLInputElement>
  ) => props.onChange(e.target.value);
  const numeric = field.kind === 'integer' || field.kind === 'number';
  return (
    <FormField
      {...{ id, hint, error, fieldKey: field.key, label: field.label }}
    >
      {control =>
        field.kind === 'select' || field.kind === 'boolean' ? (
          <select
            {...control}
            className="jp-mod-styled"
            name={field.name}
            value={value}
            onChange={onChange}
          >
            {field.optional && field.defaultValue === null && (
              <option value="">(default)</option>
            )}
            {(field.kind === 'boolean' ? ['true', 'false'] : field.options).map(
              option => (
                <option key={option} value={option}>
                  {option}
                </option>
              )
            )}
          </select>
        ) : (
          <input
            {...control}
            className="jp-mod-styled"
            name={field.name}
            type="text"
            inputMode={numeric ? 'numeric' : undefined}
            autoComplete="off"
            spellCheck={false}
            placeholder={placeholderFor(field)}
            value={value}
            onChange={onChange}
          />
        )
      }
    </FormField>
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
