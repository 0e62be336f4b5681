/**
 * The EventQueue port in-process on node:sqlite, for the local control plane: FIFO per group
 * (a group with a message in flight delivers nothing else), deduplication by id for five
 * minutes, a visibility timeout, and a dead-letter table after `maxReceives`. An adapter of
 * our own port, not an SQS server.
 *
 * Durability where it matters: `send` returns only after its transaction is committed and
 * fsynced (WAL, synchronous=FULL), so an accepted event survives a crash of the process or
 * the machine. Sends that arrive together share one commit (group commit): one fsync for a
 * burst of requests instead of one each. Receipts, acks and releases commit without the
 * fsync (synchronous=NORMAL; they survive a crash of the process): losing one to a power cut
 * only delivers a message again, which the reducer recognises.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { DatabaseSync } from 'node:sqlite';
import type { DeadLetter, EventQueue, OutgoingMessage, ReceivedMessage } from '../shared/ports.ts';

export interface SqliteQueueOptions {
  readonly path: string;
  readonly visibilityTimeoutSeconds?: number;
  readonly maxReceives?: number;
  readonly deduplicationSeconds?: number;
  /**
   * The only consumer starts: messages left in flight by a previous process (killed while it
   * worked on them) are delivered again at once instead of after their visibility timeout.
   */
  readonly recoverInFlight?: boolean;
}

interface MessageRow {
  seq: number;
  id: string;
  grp: string;
  body: string;
  sent_at: number;
  receive_count: number;
}

export class SqliteQueue implements EventQueue {
  readonly #db: DatabaseSync;
  readonly #signal = new EventEmitter();
  readonly #visibilityMs: number;
  readonly #maxReceives: number;
  readonly #dedupMs: number;

  constructor(options: SqliteQueueOptions) {
    this.#visibilityMs = (options.visibilityTimeoutSeconds ?? 30) * 1000;
    this.#maxReceives = options.maxReceives ?? 5;
    this.#dedupMs = (options.deduplicationSeconds ?? 300) * 1000;
    this.#db = new DatabaseSync(options.path);
    this.#db.exec(`
      PRAGMA journal_mode = WAL;
      PRAGMA synchronous = FULL;
      PRAGMA busy_timeout = 5000;
      CREATE TABLE IF NOT EXISTS messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, grp TEXT NOT NULL, body TEXT NOT NULL,
        sent_at INTEGER NOT NULL, visible_at INTEGER NOT NULL DEFAULT 0, receive_count INTEGER NOT NULL DEFAULT 0, receipt TEXT UNIQUE);
      CREATE INDEX IF NOT EXISTS messages_by_group ON messages (grp, seq);
      CREATE TABLE IF NOT EXISTS dedup (id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS dead (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, grp TEXT NOT NULL, body TEXT NOT NULL,
        reason TEXT NOT NULL, failed_at INTEGER NOT NULL);
    `);
    this.#signal.setMaxListeners(0);
    // A delivery cut short by this process dying (SIGKILL, a crash) is not an attempt that failed:
    // it is given back without counting, so restarts alone never push an event to the dead letters.
    if (options.recoverInFlight) this.#db.prepare('UPDATE messages SET visible_at = 0, receive_count = MAX(receive_count - 1, 0) WHERE receive_count > 0 AND visible_at > ?').run(Date.now());
  }

  #transaction<T>(work: () => T, durable = false): T {
    this.#db.exec(durable ? 'PRAGMA synchronous = FULL' : 'PRAGMA synchronous = NORMAL');
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const result = work();
      this.#db.exec('COMMIT');
      return result;
    } catch (error) {
      this.#db.exec('ROLLBACK');
      throw error;
    }
  }

  #pending: Array<{ messages: readonly OutgoingMessage[]; done: (error?: Error) => void }> = [];

  send(messages: readonly OutgoingMessage[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.#pending.length === 0) setImmediate(() => this.#flush());
      this.#pending.push({ messages, done: (error) => (error ? reject(error) : resolve()) });
    });
  }

  /** One fsynced commit for every send that arrived since the last one. */
  #flush(): void {
    const batch = this.#pending;
    this.#pending = [];
    const now = Date.now();
    try {
      this.#transaction(() => {
        this.#db.prepare('DELETE FROM dedup WHERE expires_at < ?').run(now);
        const seen = this.#db.prepare('SELECT 1 FROM dedup WHERE id = ?');
        const remember = this.#db.prepare('INSERT INTO dedup (id, expires_at) VALUES (?, ?)');
        const insert = this.#db.prepare('INSERT INTO messages (id, grp, body, sent_at) VALUES (?, ?, ?, ?)');
        for (const { messages } of batch) {
          for (const message of messages) {
            if (seen.get(message.id)) continue;
            remember.run(message.id, now + this.#dedupMs);
            insert.run(message.id, message.group, message.body, now);
          }
        }
      }, true);
    } catch (error) {
      for (const { done } of batch) done(error as Error);
      return;
    }
    for (const { done } of batch) done();
    this.#signal.emit('sent');
  }

  #take(max: number): ReceivedMessage[] {
    const now = Date.now();
    return this.#transaction(() => {
      const taken: ReceivedMessage[] = [];
      // Groups with nothing in flight, oldest first.
      const groups = this.#db
        .prepare('SELECT grp FROM messages GROUP BY grp HAVING MAX(CASE WHEN receive_count > 0 AND visible_at > ? THEN 1 ELSE 0 END) = 0 ORDER BY MIN(seq)')
        .all(now) as Array<{ grp: string }>;
      const ofGroup = this.#db.prepare('SELECT seq, id, grp, body, sent_at, receive_count FROM messages WHERE grp = ? ORDER BY seq LIMIT ?');
      const mark = this.#db.prepare('UPDATE messages SET receive_count = receive_count + 1, visible_at = ?, receipt = ? WHERE seq = ?');
      for (const { grp } of groups) {
        if (taken.length >= max) break;
        for (const row of ofGroup.all(grp, max - taken.length) as unknown as MessageRow[]) {
          if (row.receive_count >= this.#maxReceives) {
            this.#bury(row, `not processed after ${row.receive_count} receives`);
            continue;
          }
          const receipt = randomUUID();
          mark.run(now + this.#visibilityMs, receipt, row.seq);
          taken.push({ id: row.id, group: row.grp, body: row.body, receipt, receiveCount: row.receive_count + 1, sentAt: row.sent_at });
        }
      }
      return taken;
    });
  }

  #bury(row: Pick<MessageRow, 'seq' | 'id' | 'grp' | 'body'>, reason: string): void {
    this.#db.prepare('INSERT INTO dead (id, grp, body, reason, failed_at) VALUES (?, ?, ?, ?, ?)').run(row.id, row.grp, row.body, reason, Date.now());
    this.#db.prepare('DELETE FROM messages WHERE seq = ?').run(row.seq);
  }

  async receive(max: number, waitSeconds: number): Promise<ReceivedMessage[]> {
    const deadline = Date.now() + waitSeconds * 1000;
    for (;;) {
      const messages = this.#take(max);
      const left = deadline - Date.now();
      if (messages.length > 0 || left <= 0) return messages;
      // Wake on a send, or when a visibility timeout may have run out.
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.#signal.off('sent', done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(left, 1000));
        this.#signal.once('sent', done);
      });
    }
  }

  async ack(receipts: readonly string[]): Promise<void> {
    if (receipts.length === 0) return;
    this.#transaction(() => {
      const remove = this.#db.prepare('DELETE FROM messages WHERE receipt = ?');
      for (const receipt of receipts) remove.run(receipt);
    });
    this.#signal.emit('sent');
  }

  /** Makes messages visible again after `delaySeconds` (a failed batch is retried sooner than the timeout). */
  async release(receipts: readonly string[], delaySeconds: number): Promise<void> {
    const visibleAt = Date.now() + delaySeconds * 1000;
    this.#transaction(() => {
      const update = this.#db.prepare('UPDATE messages SET visible_at = ? WHERE receipt = ?');
      for (const receipt of receipts) update.run(visibleAt, receipt);
    });
  }

  async deadLetter(message: ReceivedMessage, reason: string): Promise<void> {
    this.#transaction(() => {
      const row = this.#db.prepare('SELECT seq, id, grp, body FROM messages WHERE receipt = ?').get(message.receipt) as Pick<MessageRow, 'seq' | 'id' | 'grp' | 'body'> | undefined;
      if (row) this.#bury(row, reason);
    });
    this.#signal.emit('sent');
  }

  async listDeadLetters(max: number): Promise<DeadLetter[]> {
    const rows = this.#db.prepare('SELECT seq, id, grp, body, reason FROM dead ORDER BY seq LIMIT ?').all(max) as Array<{ seq: number; id: string; grp: string; body: string; reason: string }>;
    return rows.map((row) => ({ id: row.id, group: row.grp, body: row.body, reason: row.reason, receipt: `dead-${row.seq}` }));
  }

  async replayDeadLetters(ids?: readonly string[]): Promise<number> {
    const now = Date.now();
    const count = this.#transaction(() => {
      const rows = this.#db.prepare('SELECT seq, id, grp, body FROM dead ORDER BY seq').all() as Array<{ seq: number; id: string; grp: string; body: string }>;
      let replayed = 0;
      for (const row of rows) {
        if (ids && !ids.includes(row.id)) continue;
        this.#db.prepare('INSERT INTO messages (id, grp, body, sent_at) VALUES (?, ?, ?, ?)').run(`${row.id}#replay-${now}`.slice(0, 128), row.grp, row.body, now);
        this.#db.prepare('DELETE FROM dead WHERE seq = ?').run(row.seq);
        replayed++;
      }
      return replayed;
    });
    this.#signal.emit('sent');
    return count;
  }

  /** Messages waiting or in flight, for status and tests. */
  depth(): number {
    return (this.#db.prepare('SELECT COUNT(*) AS n FROM messages').get() as { n: number }).n;
  }

  close(): void {
    this.#signal.emit('sent');
    this.#db.close();
  }
}
