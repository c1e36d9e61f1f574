import type { CommandRegistry } from '@lumino/commands';
import * as React from 'react';

import { shortCommit } from '../guidance';
import { CommandIDs } from '../tokens';
import type { IProvenance } from '../types';

/**
 * Where a job came from: who submitted it, the notebook and cell (with a
 * button back to the cell), the git commit, the environment modules.
 * Nothing when the server recorded nothing.
 */
export function ProvenanceSection(props: {
  provenance: IProvenance | null | undefined;
  commands: CommandRegistry;
}): React.ReactElement | null {
  const p = props.provenance;
  if (!p) {
    return null;
  }
  const modules = p.modules ?? [];
  const rows: [string, string, React.ReactNode][] = [];
  if (p.user) {
    rows.push(['user', 'Submitted by', p.user]);
  }
  if (p.notebook_path) {
    const args = { path: p.notebook_path, cell: p.cell_id ?? '' };
    rows.push([
      'notebook',
      'Notebook',
      <>
        <code className="jp-pwlab-provenance-path">{p.notebook_path}</code>{' '}
        <button
          type="button"
          className="jp-pwlab-action"
          data-pwlab-open-cell={p.cell_id ?? ''}
          disabled={!props.commands.isEnabled(CommandIDs.openCell, args)}
          title={props.commands.caption(CommandIDs.openCell, args)}
          onClick={() => void props.commands.execute(CommandIDs.openCell, args)}
        >
          {p.cell_id ? 'Open the cell' : 'Open the notebook'}
        </button>
      </>
    ]);
  }
  if (p.git_commit) {
    rows.push([
      'git',
      'Git commit',
      <>
        <code title={p.git_commit}>{shortCommit(p.git_commit)}</code>
        {p.git_dirty && (
          <span className="jp-pwlab-provenance-dirty">
            {' '}
            + uncommitted changes
          </span>
        )}
      </>
    ]);
  }
  if (modules.length) {
    rows.push([
      'modules',
      'Modules',
      <span className="jp-pwlab-provenance-modules">
        {modules.map(m => (
          <code key={m}>{m}</code>
        ))}
      </span>
    ]);
  }
  if (!rows.length) {
    return null;
  }
  return (
    <section className="jp-pwlab-provenance" aria-label="Where it came from">
      <h3 className="jp-pwlab-section-title">Where it came from</h3>
      <dl className="jp-pwlab-fields">
        {rows.map(([key, label, value]) => (
          <React.Fragment key={key}>
            <dt>{label}</dt>
            <dd data-pwlab-provenance={key}>{value}</dd>
          </React.Fragment>
        ))}
      </dl>
    </section>
  );
}
