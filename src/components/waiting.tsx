import * as React from 'react';

import { startEstimate } from '../guidance';
import type { IJob, IPartitionLoad } from '../types';

/**
 * Why a waiting job waits, when the scheduler expects to start it, and how
 * busy its partition is. Always says something: the raw code when the server
 * cannot explain it, or that the scheduler gave no reason yet.
 */
export function WaitingInfo(props: {
  job: IJob;
  now: number;
  /**
   * The partition load from the last `GET jobs/{id}` (events do not carry it).
   */
  load: IPartitionLoad | null;
}): React.ReactElement {
  const { job, now, load } = props;
  const explained = job.reason_explained ?? null;
  const code = explained?.code || job.reason || null;
  const estimate = startEstimate(job, now);
  return (
    <section
      className="jp-pwlab-waiting"
      aria-label="Why is it waiting?"
      data-pwlab-waiting={code ?? ''}
    >
      <h3 className="jp-pwlab-section-title">Why is it waiting?</h3>
      {explained ? (
        <>
          <p className="jp-pwlab-reason-summary" data-pwlab-reason-summary>
            {explained.summary}
          </p>
          {explained.advice && (
            <p className="jp-pwlab-reason-advice" data-pwlab-reason-advice>
              <span className="jp-pwlab-reason-advice-label">
                What you can do:
              </span>{' '}
              {explained.advice}
            </p>
          )}
          {explained.details && explained.details.length > 0 && (
            <div className="jp-pwlab-reason-details" data-pwlab-reason-details>
              <span className="jp-pwlab-reason-advice-label">
                The scheduler says:
              </span>
              <ul>
                {explained.details.map(line => (
                  <li key={line}>{line}</li>
                ))}
              </ul>
            </div>
          )}
        </>
      ) : code ? (
        <p className="jp-pwlab-reason-summary" data-pwlab-reason-summary>
          The scheduler gives the reason <code>{code}</code>.
        </p>
      ) : (
        <p className="jp-pwlab-reason-summary" data-pwlab-reason-summary>
          The scheduler has not given a reason yet.
        </p>
      )}
      {explained && code && (
        <p className="jp-pwlab-reason-code" data-pwlab-reason-code={code}>
          Scheduler reason: <code>{code}</code>
          {explained.known ? '' : ' (not a reason this extension knows)'}
        </p>
      )}
      {estimate && (
        <p className="jp-pwlab-estimate" data-pwlab-estimate={estimate.iso}>
          <span className="jp-pwlab-estimate-label">Expected to start:</span>{' '}
          <time dateTime={estimate.iso}>{estimate.time}</time> (
          {estimate.fromNow}){' '}
          <span className="jp-pwlab-estimate-note">
            — the scheduler's estimate, it can change
          </span>
        </p>
      )}
      {load?.text && (
        <p className="jp-pwlab-partition-load" data-pwlab-partition-load>
          {load.text}
        </p>
      )}
    </section>
  );
}
