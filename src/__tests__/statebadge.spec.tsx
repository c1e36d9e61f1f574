import * as React from 'react';

import { StateBadge } from '../components/statebadge';
import { JOB_STATES } from '../types';
import { renderElement } from './dom';

describe('StateBadge', () => {
  it('shows a state with its class, its name and a readable label', async () => {
    const { node, widget } = await renderElement(
      <StateBadge state="OUT_OF_MEMORY" />
    );
    expect(node.innerHTML).toBe(
      '<span class="jp-pwlab-state jp-pwlab-state-out_of_memory" data-state="OUT_OF_MEMORY">out of memory</span>'
    );
    widget.dispose();
  });

  it('gives every normalized state its own class', async () => {
    const { node, widget } = await renderElement(
      <div>
        {JOB_STATES.map(state => (
          <StateBadge key={state} state={state} />
        ))}
      </div>
    );
    const classes = Array.from(node.querySelectorAll('.jp-pwlab-state')).map(
      badge => badge.className
    );
    expect(classes).toHaveLength(JOB_STATES.length);
    expect(new Set(classes).size).toBe(JOB_STATES.length);
    expect(node.querySelector('.jp-pwlab-state-unknown')!.textContent).toBe(
      'unknown'
    );
    widget.dispose();
  });

  it('falls back to unknown for anything else, as text', async () => {
    const { node, widget } = await renderElement(
      <StateBadge state={'<b>odd</b>'} />
    );
    expect(node.querySelector('.jp-pwlab-state-unknown')).not.toBeNull();
    expect(node.querySelector('b')).toBeNull();
    widget.dispose();
  });
});
