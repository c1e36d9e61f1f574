import {
  limitHint,
  parseField,
  resourceFields,
  selectedPartition,
  validateResources,
  type Schema
} from '../schema';
import { makePartition, makeSchema } from './fixtures';
import servedSchema from './data/options_schema.json';

const partitions = [
  makePartition({
    name: 'cpu',
    default: true,
    cpus_per_node: 8,
    max_nodes: 4,
    max_time_minutes: 60,
    memory_mb_per_node: 16384
  }),
  makePartition({
    name: 'gpu',
    cpus_per_node: 32,
    max_nodes: 2,
    gpus_per_node: 4,
    max_time_minutes: 2880,
    memory_mb_per_node: 262144
  })
];
const schema = makeSchema(partitions, { array: true });

describe('resourceFields', () => {
  it('makes one field per property, in order, with kinds and labels', () => {
    const fields = resourceFields(schema);
    expect(fields.map(f => [f.name, f.kind, f.label])).toEqual([
      ['partition', 'select', 'Partition'],
      ['nodes', 'integer', 'Nodes'],
      ['ntasks', 'integer', 'Tasks'],
      ['cpus_per_task', 'integer', 'CPUs per task'],
      ['gpus', 'integer', 'GPUs'],
      ['memory_mb', 'memory', 'Memory per node'],
      ['time_limit_minutes', 'walltime', 'Walltime'],
      ['array', 'text', 'Array'],
      ['account', 'text', 'Account'],
      ['qos', 'text', 'QOS']
    ]);
    const partition = fields[0];
    expect(partition.options).toEqual(['cpu', 'gpu']);
    expect(partition.defaultValue).toBe('cpu');
    expect(partition.key).toBe('resources.partition');
  });

  it('unwraps optional fields (anyOf with null)', () => {
    const memory = resourceFields(schema).find(f => f.name === 'memory_mb')!;
    expect(memory.optional).toBe(true);
    expect(memory.minimum).toBe(1);
    const nodes = resourceFields(schema).find(f => f.name === 'nodes')!;
    expect(nodes.defaultValue).toBe(1);
  });

  it('applies the default partition limits when none is chosen', () => {
    const fields = resourceFields(schema);
    const time = fields.find(f => f.name === 'time_limit_minutes')!;
    expect(time.maximum).toBe(60);
    expect(time.limitSource).toBe("partition 'cpu'");
    expect(fields.find(f => f.name === 'gpus')!.maximum).toBe(0);
  });

  it('applies the chosen partition limits', () => {
    const fields = resourceFields(schema, { partition: 'gpu' });
    const byName = Object.fromEntries(fields.map(f => [f.name, f]));
    expect(byName.time_limit_minutes.maximum).toBe(2880);
    expect(byName.gpus.maximum).toBe(8);
    expect(byName.cpus_per_task.maximum).toBe(32);
    expect(byName.nodes.maximum).toBe(2);
    expect(byName.nodes.limitSource).toBe("partition 'gpu'");
    expect(limitHint(byName.time_limit_minutes)).toBe(
      "max 2-00:00:00 (2 d) on partition 'gpu'"
    );
    expect(limitHint(byName.memory_mb)).toBe("max 256 GiB on partition 'gpu'");
  });

  it("offers a partition's accounts and QOS as choices, free text elsewhere", () => {
    const restricted = makeSchema([
      makePartition({ name: 'open', default: true }),
      makePartition({
        name: 'proj',
        accounts: ['physics', 'chem'],
        qos: ['normal', 'high']
      })
    ]);
    const byName = (values: Record<string, unknown>) =>
      Object.fromEntries(
        resourceFields(restricted, values).map(f => [f.name, f])
      );
    const open = byName({});
    expect([open.account.kind, open.qos.kind]).toEqual(['text', 'text']);
    const proj = byName({ partition: 'proj' });
    expect(proj.account.kind).toBe('select');
    expect(proj.account.options).toEqual(['physics', 'chem']);
    expect(proj.account.optional).toBe(true); // "(default)": the scheduler picks
    expect(proj.account.limitSource).toBe("partition 'proj'");
    expect(proj.qos.options).toEqual(['normal', 'high']);
  });

  it('leaves out fields the cluster does not support', () => {
    const local = makeSchema([makePartition({ name: 'local', default: true })]);
    expect(resourceFields(local).map(f => f.name)).not.toContain('array');
  });

  it('finds the partition data', () => {
    expect(selectedPartition(schema, '')!.name).toBe('cpu');
    expect(selectedPartition(schema, 'gpu')!.gpus_per_node).toBe(4);
    expect(selectedPartition(schema, 'nope')).toBeUndefined();
  });
});

describe('validateResources', () => {
  const texts = (extra: Record<string, string>) => ({
    partition: 'cpu',
    nodes: '1',
    ntasks: '1',
    cpus_per_task: '1',
    gpus: '0',
    memory_mb: '',
    time_limit_minutes: '',
    array: '',
    ...extra
  });

  it('builds the request from valid texts, leaving empty optional fields out', () => {
    const result = validateResources(
      schema,
      texts({
        time_limit_minutes: '1:30:00',
        partition: 'gpu',
        memory_mb: '8G'
      })
    );
    expect(result.errors).toEqual({});
    expect(result.resources).toEqual({
      partition: 'gpu',
      nodes: 1,
      ntasks: 1,
      cpus_per_task: 1,
      gpus: 0,
      memory_mb: 8192,
      time_limit_minutes: 90
    });
  });

  it('flags a walltime over the partition limit, with the limit', () => {
    const result = validateResources(
      schema,
      texts({ time_limit_minutes: '2:00:00' })
    );
    expect(result.errors['resources.time_limit_minutes']).toBe(
      "2:00:00 (2 h) exceeds the limit of 1:00:00 (1 h) on partition 'cpu'"
    );
  });

  it('checks against the chosen partition, not the default one', () => {
    const ok = validateResources(
      schema,
      texts({ partition: 'gpu', time_limit_minutes: '2-00:00:00', gpus: '4' })
    );
    expect(ok.errors).toEqual({});
    const over = validateResources(schema, texts({ gpus: '1' }));
    expect(over.errors['resources.gpus']).toBe(
      "Not available on partition 'cpu' (limit 0)"
    );
  });

  it('flags each bad field', () => {
    const result = validateResources(
      schema,
      texts({
        nodes: '0',
        cpus_per_task: 'four',
        memory_mb: '32G',
        time_limit_minutes: 'soon',
        array: '1-10%%'
      })
    );
    expect(result.errors).toEqual({
      'resources.nodes': 'Must be at least 1',
      'resources.cpus_per_task': 'Enter a whole number',
      'resources.memory_mb':
        "32 GiB exceeds the limit of 16 GiB on partition 'cpu'",
      'resources.time_limit_minutes': expect.stringContaining('Use minutes'),
      'resources.array': 'Use e.g. 1-10, 1,3,5 or 0-99%10'
    });
  });

  it('refuses a partition the schema does not offer', () => {
    const result = validateResources(schema, texts({ partition: 'bigmem' }));
    expect(result.errors['resources.partition']).toBe('Choose one of cpu, gpu');
  });

  it('checks that the tasks fit on the nodes, like the server', () => {
    const result = validateResources(
      schema,
      texts({ ntasks: '8', cpus_per_task: '2' })
    );
    expect(result.errors['resources.ntasks']).toBe(
      "8 tasks × 2 CPUs = 16 CPUs exceeds the limit of 8 CPUs on 1 node(s) of partition 'cpu'"
    );
    const two = validateResources(
      schema,
      texts({ nodes: '2', ntasks: '8', cpus_per_task: '2' })
    );
    expect(two.errors).toEqual({});
  });

  it('accepts valid array specs', () => {
    for (const spec of ['1-10', '1,3,5', '0-15:2', '1-100%10']) {
      expect(
        validateResources(schema, texts({ partition: 'gpu', array: spec }))
          .errors
      ).toEqual({});
    }
  });
});

describe('parseField', () => {
  it('requires a value for a field without default', () => {
    const field = {
      ...resourceFields(schema)[1],
      optional: false
    };
    expect(parseField(field, '  ')).toEqual({ ok: false, error: 'Required' });
  });
});

/**
 * The schema the server writes for three partitions, generated by
 * tests/test_frontend_fixture.py (which fails when it is stale), so these
 * checks break if the server's schema changes in a way the form misreads.
 */
describe('the schema the server writes', () => {
  const served = servedSchema as Schema;

  it('gives the form its fields, in order, with kinds and limits', () => {
    const fields = resourceFields(served);
    expect(fields.map(f => [f.name, f.kind])).toEqual([
      ['partition', 'select'],
      ['nodes', 'integer'],
      ['ntasks', 'integer'],
      ['cpus_per_task', 'integer'],
      ['gpus', 'integer'],
      ['memory_mb', 'memory'],
      ['time_limit_minutes', 'walltime'],
      ['array', 'text'],
      ['account', 'text'],
      ['qos', 'text']
    ]);
    expect(fields.find(f => f.name === 'account')!.optional).toBe(true);
    expect(fields[0].options).toEqual(['cpu', 'gpu', 'proj']);
    expect(fields[0].defaultValue).toBe('cpu');
    const gpu = validateResources(served, {
      partition: 'gpu',
      gpus: '9',
      time_limit_minutes: '2-00:00:00'
    });
    expect(gpu.errors).toEqual({
      'resources.gpus': "9 exceeds the limit of 8 on partition 'gpu'"
    });
  });

  it("offers a partition's accounts and allowed QOS, and refuses others", () => {
    const byName = Object.fromEntries(
      resourceFields(served, { partition: 'proj' }).map(f => [f.name, f])
    );
    expect(byName.account.options).toEqual(['physics', 'chem']);
    expect(byName.qos.options).toEqual(['normal']); // 'high' is denied there
    const bad = validateResources(served, {
      partition: 'proj',
      account: 'bio'
    });
    expect(bad.errors['resources.account']).toBe('Choose one of physics, chem');
    const ok = validateResources(served, {
      partition: 'proj',
      account: 'chem',
      qos: 'normal'
    });
    expect(ok.errors).toEqual({});
    expect(ok.resources).toMatchObject({ account: 'chem', qos: 'normal' });
  });
});
