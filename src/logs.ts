import type { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import type { IJobsAPI } from './api';
import type { LogStream } from './types';

/**
 * Follows one output stream of a job: reads from the last offset only (never
 * the whole log again) until the server says the job ended and all was read.
 * Holds no DOM.
 */
export class LogFollower implements IDisposable {
  constructor(options: LogFollower.IOptions) {
    this._api = options.api;
    this.jobId = options.jobId;
    this.stream = options.stream;
    this._maxChars = options.maxChars ?? LogFollower.MAX_CHARS;
    this._poll = new Poll({
      auto: options.autoStart ?? true,
      factory: () => this._read(),
      frequency: {
        interval: options.interval ?? LogFollower.DEFAULT_INTERVAL,
        backoff: true,
        max: 30 * 1000
      },
      name: `parallelworks-lab:log:${options.jobId}:${options.stream}`,
      standby: 'when-hidden'
    });
  }

  readonly jobId: string;
  readonly stream: LogStream;

  /**
   * Emitted with each piece of text appended (and on errors and at the end).
   */
  get changed(): ISignal<this, string> {
    return this._changed;
  }

  /**
   * The text read so far (its tail, when longer than `maxChars`).
   */
  get text(): string {
    return this._text;
  }

  /**
   * Whether the head of the log was dropped to keep `maxChars`.
   */
  get truncated(): boolean {
    return this._truncated;
  }

  /**
   * The byte offset to read from next.
   */
  get offset(): number {
    return this._offset;
  }

  /**
   * Whether the job ended and the whole log was read.
   */
  get eof(): boolean {
    return this._eof;
  }

  /**
   * The message of the last failed read, or null.
   */
  get error(): string | null {
    return this._error;
  }

  get isDisposed(): boolean {
    return this._poll.isDisposed;
  }

  /**
   * Start following (only needed with `autoStart: false`).
   */
  start(): void {
    if (!this._eof) {
      void this._poll.start();
    }
  }

  /**
   * Pause following (e.g. while the view is hidden); `start()` resumes.
   */
  stop(): void {
    void this._poll.stop();
  }

  /**
   * Bumped each time the head of the text is dropped, so that a view that
   * appends only the new text knows to redraw it all.
   */
  get generation(): number {
    return this._generation;
  }

  /**
   * Read now, e.g. when the job is known to have changed state.
   */
  async refresh(): Promise<void> {
    if (!this._eof && !this.isDisposed) {
      await this._poll.refresh();
    }
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._poll.dispose();
    Signal.clearData(this);
  }

  /**
   * Read every chunk available now (a chunk is at most 1 MiB).
   */
  private async _read(): Promise<void> {
    try {
      for (let i = 0; i < LogFollower.MAX_CHUNKS_PER_TICK; i++) {
        const chunk = await this._api.readLog(
          this.jobId,
          this.stream,
          this._offset
        );
        if (this.isDisposed) {
          return;
        }
        const advanced = chunk.offset !== this._offset;
        this._offset = chunk.offset;
        this._eof = chunk.eof;
        this._error = null;
        if (chunk.data) {
          this._append(chunk.data);
        }
        if (chunk.eof) {
          this._changed.emit('');
          // Nothing more will come: stop polling.
          void this._poll.stop();
          return;
        }
        if (!advanced || !chunk.data) {
          return;
        }
      }
    } catch (error) {
      if (this.isDisposed) {
        return;
      }
      this._error = error instanceof Error ? error.message : String(error);
      this._changed.emit('');
      throw error;
    }
  }

  private _append(data: string): void {
    let text = this._text + data;
    if (text.length > this._maxChars) {
      text = text.slice(text.length - this._maxChars);
      const newline = text.indexOf('\n');
      if (newline >= 0 && newline < 200) {
        text = text.slice(newline + 1);
      }
      this._truncated = true;
      this._generation++;
    }
    this._text = text;
    this._changed.emit(data);
  }

  private _api: IJobsAPI;
  private _poll: Poll;
  private _maxChars: number;
  private _text = '';
  private _truncated = false;
  private _generation = 0;
  private _offset = 0;
  private _eof = false;
  private _error: string | null = null;
  private _changed = new Signal<this, string>(this);
}

/**
 * The namespace for `LogFollower` statics.
 */
export namespace LogFollower {
  export interface IOptions {
    api: IJobsAPI;
    jobId: string;
    stream: LogStream;
    /**
     * Milliseconds between reads while the job runs.
     */
    interval?: number;
    /**
     * How much text to keep (the tail of longer logs).
     */
    maxChars?: number;
    autoStart?: boolean;
  }

  /**
   * One read a second while the job runs.
   */
  export const DEFAULT_INTERVAL = 1000;

  /**
   * Keep the last 4 million characters.
   */
  export const MAX_CHARS = 4_000_000;

  /**
   * At most this many chunks are read in one go.
   */
  export const MAX_CHUNKS_PER_TICK = 8;
}
