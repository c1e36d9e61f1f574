import * as React from 'react';

import type { IJobsAPI } from '../api';
import type {
  IResourceRequest,
  ISuggestion,
  ISuggestionRequest
} from '../types';
import { describeMinutes, formatMemory } from '../units';

/**
 * How long the form must stay unchanged before suggestions are asked for.
 */
export const SUGGESTION_DELAY = 800;

/**
 * The server's suggestion for what the form would submit: asked for once the
 * request has not changed for `delay` ms; errors are ignored (no banner).
 */
export function useSuggestion(
  api: Pick<IJobsAPI, 'suggest'> | null,
  request: ISuggestionRequest | null,
  delay = SUGGESTION_DELAY
): ISuggestion | null {
  const key = api && request ? JSON.stringify(request) : '';
  const [answer, setAnswer] = React.useState<{
    key: string;
    suggestion: ISuggestion;
  } | null>(null);
  React.useEffect(() => {
    if (!key || !api) {
      return;
    }
    let current = true;
    const timer = window.setTimeout(() => {
      api
        .suggest(JSON.parse(key) as ISuggestionRequest)
        .then(suggestion => {
          if (current) {
            setAnswer({ key, suggestion });
          }
        })
        .catch(() => {
          // Suggestions are a help: without them the form works as before.
        });
    }, delay);
    return () => {
      current = false;
      window.clearTimeout(timer);
    };
  }, [api, key, delay]);
  // A suggestion stays shown while the next one is asked for, unless the
  // form no longer names anything to run.
  return key ? (answer?.suggestion ?? null) : null;
}

/**
 * The suggested values in words: `memory 3.7 GiB, time limit 15 min`.
 */
export function describeSuggested(
  resources: Partial<IResourceRequest>
): string {
  const parts: string[] = [];
  for (const [name, value] of Object.entries(resources)) {
    if (value === null || value === undefined) {
      continue;
    }
    if (name === 'memory_mb' && typeof value === 'number') {
      parts.push(`memory ${formatMemory(value)}`);
    } else if (name === 'time_limit_minutes' && typeof value === 'number') {
      parts.push(`time limit ${describeMinutes(value)}`);
    } else {
      parts.push(`${name.replace(/_/g, ' ')} ${String(value)}`);
    }
  }
  return parts.join(', ');
}

/**
 * What earlier runs of the same script or name used, with a button that puts
 * the suggested values in the form. Nothing changes without the click.
 */
export function SuggestionBanner(props: {
  suggestion: ISuggestion | null;
  /**
   * Whether the form already holds these values.
   */
  holds: (resources: Partial<IResourceRequest>) => boolean;
  onApply: (resources: Partial<IResourceRequest>) => void;
}): React.ReactElement | null {
  const { suggestion } = props;
  // The values the button put in the form (JSON), to say so afterwards.
  const [applied, setApplied] = React.useState<string | null>(null);
  if (!suggestion || suggestion.runs < 1 || !suggestion.message) {
    return null;
  }
  const resources = suggestion.resources ?? {};
  const values = describeSuggested(resources);
  const holds = !values || props.holds(resources);
  if (holds && applied !== JSON.stringify(resources)) {
    // Nothing to offer: only the message would repeat what the form says.
    return null;
  }
  const runs =
    suggestion.matched_by === 'name'
      ? `${suggestion.runs} earlier run${suggestion.runs === 1 ? '' : 's'} with this name`
      : `${suggestion.runs} earlier run${suggestion.runs === 1 ? '' : 's'} of this script`;
  return (
    <div
      className="jp-pwlab-suggestion"
      role="status"
      data-pwlab-suggestion={suggestion.runs}
    >
      <p className="jp-pwlab-suggestion-message">{suggestion.message}</p>
      {holds ? (
        <p className="jp-pwlab-suggestion-values" data-pwlab-suggestion-applied>
          The form now asks for {values}, from {runs}.
        </p>
      ) : (
        <p className="jp-pwlab-suggestion-values">
          <button
            type="button"
            className="jp-mod-styled jp-mod-accept jp-pwlab-suggestion-apply"
            data-pwlab-suggestion-apply
            onClick={() => {
              setApplied(JSON.stringify(resources));
              props.onApply(resources);
            }}
          >
            Use these
          </button>{' '}
          {values} (from {runs})
        </p>
      )}
    </div>
  );
}
