import * as React from 'react';

import { stateBadgeClass, stateLabel } from '../jobs';

/**
 * A job's state as a colored badge (colors from the theme).
 */
export function StateBadge(props: {
  state: string;
  title?: string;
}): React.ReactElement {
  return (
    <span
      className={`jp-pwlab-state ${stateBadgeClass(props.state)}`}
      data-state={props.state}
      title={props.title}
    >
      {stateLabel(props.state)}
    </span>
  );
}
