import { createPrivateKey, createPublicKey, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto';
import { appendFile, readFile } from 'node:fs/promises';
import { z } from 'zod';
import { describeIssues, parseJson } from '../validation';
import { canonicalJson } from './canonical';

/**
 * Signed checkpoints: an Ed25519 signature over where the ledger's chain stood (topic, partition,
 * offset, seq, head hash, time), kept outside Kafka and Redis, so that cutting the ledger's tail or
 * rewriting the whole chain is found by `audit verify`.
 */

export const CheckpointBody = z.object({
  topic: z.string().min(1),
  partition: z.number().int().min(0),
  offset: z.string().regex(/^\d+$/),
  seq: z.number().int().min(0),
  head: z.string().regex(/^[0-9a-f]{64}$/),
  at: z.number().int().min(0),
});
export type CheckpointBody = z.infer<typeof CheckpointBody>;
export const Checkpoint = CheckpointBody.extend({ sig: z.string().regex(/^[A-Za-z0-9+/]+=*$/) });
export type Checkpoint = z.infer<typeof Checkpoint>;

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

export function loadPrivateKey(pem: string): KeyObject {
  const key = createPrivateKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') throw new CheckpointError(`checkpoint key: expected an ed25519 private key, got ${key.asymmetricKeyType}`);
  return key;
}

export function loadPublicKey(pem: string): KeyObject {
  const key = createPublicKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') throw new CheckpointError(`checkpoint public key: expected ed25519, got ${key.asymmetricKeyType}`);
  return key;
}

function bodyBytes(body: CheckpointBody): Buffer {
  const { topic, partition, offset, seq, head, at } = body;
  return Buffer.from(canonicalJson({ topic, partition, offset, seq, head, at }), 'utf8');
}

export function signCheckpoint(body: CheckpointBody, key: KeyObject): Checkpoint {
  const parsed = CheckpointBody.parse(body);
  return { ...parsed, sig: edSign(null, bodyBytes(parsed), key).toString('base64') };
}

/** True when one of the public keys signed this checkpoint. */
export function checkpointSigned(checkpoint: Checkpoint, keys: KeyObject[]): boolean {
  const sig = Buffer.from(checkpoint.sig, 'base64');
  return keys.some((key) => edVerify(null, bodyBytes(checkpoint), key, sig));
}

/** A store of checkpoints: append-only JSON lines in a file. */
export class FileCheckpointStore {
  constructor(readonly file: string) {}

  async append(checkpoint: Checkpoint): Promise<void> {
    await appendFile(this.file, `${canonicalJson(Checkpoint.parse(checkpoint))}\n`, { encoding: 'utf8', flag: 'a' });
  }

  /** Every checkpoint in the file; a line that is not a checkpoint throws, naming the line. */
  async list(): Promise<Checkpoint[]> {
    const text = await readFile(this.file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return '';
      throw err;
    });
    return text
      .split('\n')
      .map((line, i) => ({ line, n: i + 1 }))
      .filter(({ line }) => line.trim() !== '')
      .map(({ line, n }) => {
        const json = parseJson(line);
        if (!json.ok) throw new CheckpointError(`${this.file} line ${n}: ${json.reason}`);
        const parsed = Checkpoint.safeParse(json.value);
        if (!parsed.success) throw new CheckpointError(`${this.file} line ${n}: ${describeIssues(parsed.error)}`);
        return parsed.data;
      });
  }
}

/** Where the chain stood at a seq, as read back from the topic. */
export interface ChainPoint {
  seq: number;
  hash: string;
}

export interface CheckpointFailure {
  checkpoint: Checkpoint;
  reason: string;
}

/**
 * Checks checkpoints of `topic` against the chain read back: each checkpoint's signature, that the
 * chain reaches its seq (tail cut otherwise), and that the record at its seq has its head hash
 * (rewritten otherwise). `hashAt(seq)`: the hash of the verified record at seq (undefined: absent).
 * Returns the first failure, latest checkpoint first.
 */
export function checkCheckpoints(
  checkpoints: Checkpoint[],
  topic: string,
  head: ChainPoint,
  hashAt: (seq: number) => string | undefined,
  keys: KeyObject[],
): CheckpointFailure | undefined {
  const mine = checkpoints.filter((c) => c.topic === topic).sort((a, b) => b.seq - a.seq);
  for (const checkpoint of mine) {
    const failure = checkOne(checkpoint, head, hashAt, keys);
    if (failure) return { checkpoint, reason: failure };
  }
  return undefined;
}

function checkOne(c: Checkpoint, head: ChainPoint, hashAt: (seq: number) => string | undefined, keys: KeyObject[]): string | undefined {
  if (!checkpointSigned(c, keys)) return 'its signature is invalid (no configured public key signed it)';
  if (head.seq < c.seq) return `the ledger ends at seq ${head.seq}, below the checkpointed seq ${c.seq}: its tail was cut`;
  const hash = c.seq === 0 ? head.hash : hashAt(c.seq);
  if (c.seq === 0) return undefined;
  if (hash !== c.head) return `the record at seq ${c.seq} has hash ${hash ?? '(none)'}, the checkpoint says ${c.head}: the chain was rewritten`;
  return undefined;
}

export function describeCheckpoint(c: Checkpoint): string {
  return `checkpoint of ${c.topic}[${c.partition}] at seq ${c.seq} (offset ${c.offset}, ${new Date(c.at).toISOString()})`;
}
