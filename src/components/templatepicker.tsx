import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';
import * as React from 'react';

import { APIError, type IJobsAPI } from '../api';
import type { ITemplate, ITemplateInput } from '../types';

/**
 * The template calls of the API.
 */
export type ITemplatesAPI = Pick<
  IJobsAPI,
  'listTemplates' | 'saveTemplate' | 'deleteTemplate'
>;

/**
 * What the form would save as a template, or why it cannot.
 */
export type TemplateDraft =
  | { draft: Omit<ITemplateInput, 'name' | 'description'>; errors: null }
  | { draft: null; errors: Record<string, string> };

/**
 * Props of the template picker.
 */
export interface ITemplatePickerProps {
  api: ITemplatesAPI;
  idPrefix: string;
  /**
   * Fill the form with a template.
   */
  onApply: (template: ITemplate) => void;
  /**
   * What the form holds now, for "Save as template…".
   */
  draft: () => TemplateDraft;
}

/**
 * Templates at the top of the submit form: choose one (site templates are
 * read-only) and apply it, save the form as a template, delete your own.
 */
export function TemplatePicker(
  props: ITemplatePickerProps
): React.ReactElement | null {
  const { api, idPrefix } = props;
  const [templates, setTemplates] = React.useState<ITemplate[] | null>(null);
  const [unsupported, setUnsupported] = React.useState(false);
  const [chosen, setChosen] = React.useState('');
  const [busy, setBusy] = React.useState(false);
  const [status, setStatus] = React.useState('');
  const [errors, setErrors] = React.useState<string[]>([]);

  const reload = React.useCallback(async () => {
    try {
      const list = await api.listTemplates();
      setTemplates(list);
      return list;
    } catch (error) {
      if (error instanceof APIError && error.status === 404) {
        // A server without templates: no picker.
        setUnsupported(true);
      } else {
        setErrors([`Cannot load templates: ${messageOf(error)}`]);
      }
      return null;
    }
  }, [api]);

  React.useEffect(() => {
    void reload();
  }, [reload]);

  if (unsupported) {
    return null;
  }
  const site = (templates ?? []).filter(t => t.read_only);
  const mine = (templates ?? []).filter(t => !t.read_only);
  const selected = templates?.find(t => t.name === chosen);
  const id = `${idPrefix}-template`;

  const apply = () => {
    if (selected) {
      props.onApply(selected);
      setErrors([]);
      setStatus(`Filled in from template “${selected.name}”.`);
    }
  };

  const save = async () => {
    setStatus('');
    setErrors([]);
    const { draft, errors: invalid } = props.draft();
    if (!draft) {
      setErrors([
        'Fix the fields marked in red before saving a template.',
        ...Object.values(invalid)
      ]);
      return;
    }
    const answer = await showDialog({
      title: 'Save as template',
      body: new TemplateNameBody(
        selected && !selected.read_only ? selected : null
      ),
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Save' })],
      focusNodeSelector: 'input'
    });
    const value = answer.value;
    if (!answer.button.accept || !value?.name) {
      return;
    }
    const existing = templates?.find(t => t.name === value.name);
    if (existing && !existing.read_only) {
      const replace = await showDialog({
        title: 'Replace template',
        body: `Replace your template “${value.name}” with what the form holds now?`,
        buttons: [
          Dialog.cancelButton(),
          Dialog.warnButton({ label: 'Replace' })
        ]
      });
      if (!replace.button.accept) {
        return;
      }
    }
    setBusy(true);
    try {
      const saved = await api.saveTemplate({ ...draft, ...value });
      await reload();
      setChosen(saved.name);
      setStatus(`Saved template “${saved.name}”.`);
    } catch (error) {
      setErrors(saveErrors(error, value.name));
    } finally {
      setBusy(false);
    }
  };

  const remove = async () => {
    if (!selected || selected.read_only) {
      return;
    }
    setStatus('');
    setErrors([]);
    const answer = await showDialog({
      title: 'Delete template',
      body: `Delete your template “${selected.name}”? Jobs submitted with it are not affected.`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
    });
    if (!answer.button.accept) {
      return;
    }
    setBusy(true);
    try {
      await api.deleteTemplate(selected.name);
      setStatus(`Deleted template “${selected.name}”.`);
    } catch (error) {
      if (!(error instanceof APIError && error.status === 404)) {
        setErrors([`Cannot delete “${selected.name}”: ${messageOf(error)}`]);
      }
    } finally {
      setChosen('');
      await reload();
      setBusy(false);
    }
  };

  return (
    <div className="jp-pwlab-templates" data-pwlab-templates>
      <div className="jp-pwlab-templates-row">
        <label className="jp-pwlab-field-label" htmlFor={id}>
          Template
        </label>
        <select
          id={id}
          className="jp-mod-styled"
          name="template"
          value={chosen}
          disabled={templates === null}
          onChange={e => {
            setChosen(e.target.value);
            setStatus('');
          }}
          aria-describedby={selected ? `${id}-description` : undefined}
        >
          <option value="">
            {templates === null
              ? 'Loading…'
              : templates.length
                ? 'Choose a template…'
                : 'No templates yet'}
          </option>
          {site.length > 0 && (
            <optgroup label="Site templates (read-only)">
              {site.map(t => (
                <option key={t.name} value={t.name}>
                  {t.name} (read-only)
                </option>
              ))}
            </optgroup>
          )}
          {mine.length > 0 && (
            <optgroup label="My templates">
              {mine.map(t => (
                <option key={t.name} value={t.name}>
                  {t.name}
                </option>
              ))}
            </optgroup>
          )}
        </select>
        <button
          type="button"
          className="jp-mod-styled"
          data-pwlab-template-apply
          disabled={!selected || busy}
          onClick={apply}
        >
          Apply
        </button>
        {selected && !selected.read_only && (
          <button
            type="button"
            className="jp-mod-styled jp-mod-warn"
            data-pwlab-template-delete
            disabled={busy}
            onClick={() => void remove()}
          >
            Delete
          </button>
        )}
        <button
          type="button"
          className="jp-mod-styled"
          data-pwlab-template-save
          disabled={busy}
          onClick={() => void save()}
        >
          Save as template…
        </button>
      </div>
      {selected && (
        <div className="jp-pwlab-field-hint" id={`${id}-description`}>
          {selected.read_only ? 'Site template, read-only. ' : ''}
          {selected.description}
        </div>
      )}
      {status && (
        <div className="jp-pwlab-templates-status" role="status">
          {status}
        </div>
      )}
      {errors.length > 0 && (
        <div
          className="jp-pwlab-error"
          role="alert"
          data-pwlab-error="template"
        >
          {errors.map((message, i) => (
            <div key={i}>{message}</div>
          ))}
        </div>
      )}
    </div>
  );
}

/**
 * The messages of a failed save: the server's field errors, each named.
 */
function saveErrors(error: unknown, name: string): string[] {
  if (error instanceof APIError) {
    if (error.status === 409) {
      return [
        `“${name}” is a site template, which only administrators change: choose another name. (${error.message})`
      ];
    }
    if (error.errors.length) {
      return error.errors.map(e =>
        e.field ? `${fieldLabel(e.field)}: ${e.message}` : e.message
      );
    }
  }
  return [`Cannot save the template: ${messageOf(error)}`];
}

/**
 * A field path of the API in words (`resources.memory_mb` → `memory mb`).
 */
function fieldLabel(field: string): string {
  const name = field.replace(/^resources\./, '');
  return name.charAt(0).toUpperCase() + name.slice(1).replace(/_/g, ' ');
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The body of the "Save as template" dialog: a name and a description.
 */
class TemplateNameBody
  extends Widget
  implements Dialog.IBodyWidget<{ name: string; description: string }>
{
  constructor(initial: ITemplate | null) {
    super();
    this.addClass('jp-pwlab-template-dialog');
    const row = (label: string, input: HTMLInputElement) => {
      const wrap = document.createElement('label');
      wrap.className = 'jp-pwlab-template-dialog-row';
      const text = document.createElement('span');
      text.textContent = label;
      wrap.append(text, input);
      this.node.appendChild(wrap);
    };
    this._name = document.createElement('input');
    this._name.className = 'jp-mod-styled';
    this._name.name = 'template-name';
    this._name.required = true;
    this._name.value = initial?.name ?? '';
    this._description = document.createElement('input');
    this._description.className = 'jp-mod-styled';
    this._description.name = 'template-description';
    this._description.value = initial?.description ?? '';
    row('Name', this._name);
    row('Description', this._description);
  }

  getValue(): { name: string; description: string } {
    return {
      name: this._name.value.trim(),
      description: this._description.value.trim()
    };
  }

  private _name: HTMLInputElement;
  private _description: HTMLInputElement;
}
