import { LogFollower } from '../logs';
import { FakeAPI, sleep, until } from './fixtures';

describe('LogFollower', () => {
  let api: FakeAPI;
  let follower: LogFollower;

  beforeEach(() => {
    api = new FakeAPI();
    api.logs.set('j1:stdout', { text: 'hello\n', done: false });
  });

  afterEach(() => follower?.dispose());

  it('reads only what is new, from the last offset, until the end', async () => {
    const offsets: number[] = [];
    const readLog = api.readLog.bind(api);
    api.readLog = (id, stream, offset) => {
      offsets.push(offset);
      return readLog(id, stream, offset);
    };
    const pieces: string[] = [];
    follower = new LogFollower({
      api,
      jobId: 'j1',
      stream: 'stdout',
      interval: 10
    });
    follower.changed.connect((_, data) => data && pieces.push(data));
    await until(() => follower.text === 'hello\n');
    api.logs.set('j1:stdout', { text: 'hello\nworld\n', done: false });
    await until(() => follower.text === 'hello\nworld\n');
    expect(pieces).toEqual(['hello\n', 'world\n']);
    expect(follower.eof).toBe(false);
    api.logs.set('j1:stdout', { text: 'hello\nworld\nbye\n', done: true });
    await until(() => follower.eof);
    expect(follower.text).toBe('hello\nworld\nbye\n');
    // Never re-read from the start.
    expect(offsets.filter(o => o === 0)).toHaveLength(1);
    expect(offsets).toContain(6);
    expect(offsets).toContain(12);
    // Stopped at the end: no more reads.
    const calls = api.calls.logs;
    await sleep(40);
    expect(api.calls.logs).toBe(calls);
  });

  it('reads a long log in chunks within one tick', async () => {
    api.chunk = 4;
    api.logs.set('j1:stdout', { text: 'abcdefghij', done: true });
    follower = new LogFollower({
      api,
      jobId: 'j1',
      stream: 'stdout',
      interval: 1000
    });
    await until(() => follower.eof);
    expect(follower.text).toBe('abcdefghij');
  });

  it('keeps the tail of a log longer than maxChars', async () => {
    api.logs.set('j1:stdout', {
      text: Array.from({ length: 100 }, (_, i) => `line ${i}\n`).join(''),
      done: true
    });
    follower = new LogFollower({
      api,
      jobId: 'j1',
      stream: 'stdout',
      maxChars: 50
    });
    await until(() => follower.eof);
    expect(follower.truncated).toBe(true);
    expect(follower.generation).toBe(1);
    expect(follower.text.length).toBeLessThanOrEqual(50);
    expect(follower.text.startsWith('line')).toBe(true);
    expect(follower.text.endsWith('line 99\n')).toBe(true);
  });

  it('waits when stopped and resumes when started', async () => {
    follower = new LogFollower({
      api,
      jobId: 'j1',
      stream: 'stdout',
      interval: 10,
      autoStart: false
    });
    await sleep(30);
    expect(api.calls.logs).toBe(0);
    follower.start();
    await until(() => follower.text === 'hello\n');
    follower.stop();
    await sleep(5);
    const calls = api.calls.logs;
    await sleep(40);
    expect(api.calls.logs).toBe(calls);
  });

  it('records read errors', async () => {
    api.readLog = async () => {
      throw new Error('log gone');
    };
    follower = new LogFollower({
      api,
      jobId: 'j1',
      stream: 'stdout',
      interval: 10
    });
    await until(() => follower.error !== null);
    expect(follower.error).toBe('log gone');
  });
});
