/**
 * One contract for both queue adapters: the embedded node:sqlite queue, and SQS FIFO as
 * moto_server implements it (an independent implementation of the AWS API).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { SqliteQueue } from '../adapters/sqlite-queue.ts';
import { SqsQueue } from '../adapters/sqs-queue.ts';
import type { EventQueue, ReceivedMessage } from '../shared/ports.ts';
import { type RunningServer, startMoto, TEST_CREDENTIALS } from './helpers/servers.ts';

interface Harness {
  readonly queue: EventQueue;
  close(): Promise<void>;
}

let moto: RunningServer;
beforeAll(async () => {
  moto = await startMoto();
}, 30000);
afterAll(async () => moto.stop());

let serial = 0;
async function sqsHarness(): Promise<Harness> {
  const client = new SQSClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials: TEST_CREDENTIALS });
  const name = `q${++serial}-${Date.now()}`;
  const dlq = await client.send(new CreateQueueCommand({ QueueName: `${name}-dlq.fifo`, Attributes: { FifoQueue: 'true' } }));
  const dlqArn = (await client.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
  const main = await client.send(
    new CreateQueueCommand({
      QueueName: `${name}.fifo`,
      Attributes: { FifoQueue: 'true', VisibilityTimeout: '30', RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 3 }) },
    }),
  );
  return { queue: new SqsQueue({ queueUrl: main.QueueUrl!, deadLetterQueueUrl: dlq.QueueUrl!, endpoint: moto.endpoint, credentials: TEST_CREDENTIALS }), close: async () => undefined };
}

function sqliteHarness(): Harness {
  const dir = mkdtempSync(join(tmpdir(), 'ringmaster-queue-'));
  const queue = new SqliteQueue({ path: join(dir, 'queue.db'), maxReceives: 3 });
  return {
    queue,
    close: async () => {
      queue.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function drain(queue: EventQueue, rounds = 5): Promise<ReceivedMessage[]> {
  const all: ReceivedMessage[] = [];
  for (let i = 0; i < rounds; i++) {
    const batch = await queue.receive(10, 0);
    all.push(...batch);
    await queue.ack(batch.map((m) => m.receipt));
    if (batch.length === 0) break;
  }
  return all;
}

const send = (queue: EventQueue, ...specs: string[]) => queue.send(specs.map((spec) => ({ id: spec, group: spec[0]!, body: `body-${spec}` })));

describe.each([
  ['node:sqlite queue', async () => sqliteHarness()],
  ['SQS FIFO on moto_server', sqsHarness],
])('%s', (_name, make) => {
  let harness: Harness;
  beforeEach(async () => {
    harness = await make();
  });
  afterEach(async () => harness.close());

  test('keeps the order within a group and delivers every group', async () => {
    await send(harness.queue, 'A1', 'B1', 'A2', 'C1', 'A3', 'B2');
    const all = await drain(harness.queue);
    const order = (group: string) => all.filter((m) => m.group === group).map((m) => m.id);
    expect(order('A')).toEqual(['A1', 'A2', 'A3']);
    expect(order('B')).toEqual(['B1', 'B2']);
    expect(order('C')).toEqual(['C1']);
    expect(all.map((m) => m.body)).toContain('body-A2');
  });

  test('a group with a message in flight delivers nothing else of that group', async () => {
    await send(harness.queue, 'A1', 'A2');
    const [first] = await harness.queue.receive(1, 0);
    expect(first?.id).toBe('A1');
    expect(await harness.queue.receive(10, 0)).toEqual([]);
    await harness.queue.ack([first!.receipt]);
    expect((await harness.queue.receive(10, 0)).map((m) => m.id)).toEqual(['A2']);
  });

  test('a message sent twice with the same id is delivered once', async () => {
    await send(harness.queue, 'A1');
    await send(harness.queue, 'A1');
    expect((await drain(harness.queue)).map((m) => m.id)).toEqual(['A1']);
  });

  test('a released message comes back, counted, before anything after it', async () => {
    await send(harness.queue, 'A1', 'A2');
    const first = await harness.queue.receive(1, 0);
    await harness.queue.release(first.map((m) => m.receipt), 0);
    const again = await harness.queue.receive(1, 0);
    expect(again.map((m) => [m.id, m.receiveCount])).toEqual([['A1', 2]]);
  });

  test('the listing shows every dead letter, not only the first ten', async () => {
    const specs = Array.from({ length: 25 }, (_, i) => `${String.fromCharCode(65 + (i % 26))}${i}`);
    await send(harness.queue, ...specs);
    let batch: ReceivedMessage[];
    while ((batch = await harness.queue.receive(10, 0)).length > 0) for (const message of batch) await harness.queue.deadLetter(message, `reason of ${message.id}`);
    const listed = await harness.queue.listDeadLetters(1000);
    expect(listed.map((d) => [d.id, d.reason]).sort()).toEqual(specs.map((id) => [id, `reason of ${id}`]).sort());
    // Listing hides nothing: listed again, and replayed, all are there.
    expect(await harness.queue.listDeadLetters(1000)).toHaveLength(25);
    expect(await harness.queue.replayDeadLetters()).toBe(25);
  });

  test('a dead letter keeps its reason and can be replayed', async () => {
    await send(harness.queue, 'A1', 'B1');
    const batch = await harness.queue.receive(10, 0);
    const poison = batch.find((m) => m.id === 'A1')!;
    await harness.queue.deadLetter(poison, 'payload.vm.cpu: must be at least 1');
    await harness.queue.ack(batch.filter((m) => m !== poison).map((m) => m.receipt));
    expect((await harness.queue.listDeadLetters(10)).map((d) => [d.id, d.group, d.reason])).toEqual([['A1', 'A', 'payload.vm.cpu: must be at least 1']]);
    expect(await harness.queue.replayDeadLetters(['A1'])).toBe(1);
    const replayed = await drain(harness.queue);
    expect(replayed.map((m) => m.body)).toEqual(['body-A1']);
    expect(await harness.queue.listDeadLetters(10)).toEqual([]);
  });
});

test('node:sqlite queue: after maxReceives a message goes to the dead letters with the reason', async () => {
  const { queue, close } = sqliteHarness();
  try {
    await send(queue, 'A1');
    for (let i = 0; i < 3; i++) {
      const batch = await queue.receive(1, 0);
      expect(batch).toHaveLength(1);
      await queue.release(batch.map((m) => m.receipt), 0);
    }
    expect(await queue.receive(1, 0)).toEqual([]);
    expect((await queue.listDeadLetters(10)).map((d) => d.reason)).toEqual(['not processed after 3 receives']);
  } finally {
    await close();
  }
});

test('node:sqlite queue: a sent message survives closing and reopening the database', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringmaster-queue-'));
  try {
    const first = new SqliteQueue({ path: join(dir, 'q.db') });
    await send(first, 'A1');
    first.close();
    const second = new SqliteQueue({ path: join(dir, 'q.db') });
    expect((await second.receive(10, 0)).map((m) => m.id)).toEqual(['A1']);
    second.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('node:sqlite queue: receive waits for a send instead of polling', async () => {
  const { queue, close } = sqliteHarness();
  try {
    const waiting = queue.receive(10, 5);
    setTimeout(() => void send(queue, 'A1'), 50);
    const started = Date.now();
    expect((await waiting).map((m) => m.id)).toEqual(['A1']);
    expect(Date.now() - started).toBeLessThan(1000);
  } finally {
    await close();
  }
});

test('node:sqlite queue: a restart delivers what the killed consumer had in flight at once, without counting the cut-short receive', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringmaster-queue-'));
  try {
    const first = new SqliteQueue({ path: join(dir, 'q.db'), visibilityTimeoutSeconds: 300 });
    await send(first, 'A1', 'A2');
    expect((await first.receive(10, 0)).map((m) => m.id)).toEqual(['A1', 'A2']);
    first.close();
    const second = new SqliteQueue({ path: join(dir, 'q.db'), visibilityTimeoutSeconds: 300, recoverInFlight: true });
    expect((await second.receive(10, 0)).map((m) => [m.id, m.receiveCount])).toEqual([['A1', 1], ['A2', 1]]);
    second.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SQS on moto: replay reaches past the first ten dead letters of a group', async () => {
  const { queue } = await sqsHarness();
  const ids = Array.from({ length: 13 }, (_, i) => `A${String(i).padStart(2, '0')}`);
  await send(queue, ...ids);
  let batch: ReceivedMessage[];
  while ((batch = await queue.receive(10, 0)).length > 0) for (const message of batch) await queue.deadLetter(message, 'test');
  expect(await queue.replayDeadLetters()).toBe(13);
  expect((await drain(queue, 10)).map((m) => m.body)).toEqual(ids.map((id) => `body-${id}`));
});
