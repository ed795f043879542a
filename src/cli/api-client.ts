import type { Command } from 'commander';
import { z } from 'zod';
import { CliError } from './options';
import type { Terminal } from './terminal';

/** The options every command that talks to Cordon's HTTP API takes; the token is better left in the environment. */
export const ApiOptions = z.object({
  url: z.url({ protocol: /^https?$/, error: 'expected the http(s) URL of a running cordon (env CORDON_URL)' }).default('http://127.0.0.1:8080'),
  token: z
    .string({ error: 'a bearer token is required: set CORDON_TOKEN or pass --token' })
    .regex(/^[A-Za-z0-9._~+/=-]{16,512}$/, 'expected a bearer token of 16 to 512 characters [A-Za-z0-9._~+/=-]'),
  json: z.boolean().default(false),
});
export type ApiOptions = z.infer<typeof ApiOptions>;

/** The API's answers are input too: the two error shapes it has had (RFC 9457 problem details, and {error, message}). */
const ErrorBody = z.union([
  z.object({ title: z.string().max(1000), detail: z.string().max(10_000).optional(), status: z.number().optional() }),
  z.object({ error: z.string().max(1000), message: z.string().max(10_000) }),
]);

/** The API refused, or could not be reached: the command exits 1 with this message. */
export class ApiError extends CliError {
  override name = 'ApiError';
  override readonly exitCode: number = 1;
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface ApiCall {
  command: string;
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
}

/** Calls the API and returns the parsed JSON of a 2xx answer; anything else is an ApiError naming the call. */
export async function callApi(opts: Pick<ApiOptions, 'url' | 'token'>, call: ApiCall, timeoutMs = 30_000): Promise<unknown> {
  const url = new URL(call.path, opts.url.endsWith('/') ? opts.url : `${opts.url}/`);
  const where = `${call.method} ${decodeURIComponent(url.pathname)}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method: call.method,
      headers: { authorization: `Bearer ${opts.token}`, accept: 'application/json', ...(call.body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(call.body === undefined ? {} : { body: JSON.stringify(call.body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new ApiError(`cordon ${call.command}: cannot reach ${url.origin} (${cause?.code ?? cause?.message ?? (err as Error).message}); is cordon running there? (--url, env CORDON_URL)`);
  }
  const text = await res.text();
  if (res.ok) return parseBody(text, call.command, where);
  throw new ApiError(`cordon ${call.command}: ${where} answered ${res.status}: ${errorMessage(text, res.statusText)}`, res.status);
}

function parseBody(text: string, command: string, where: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ApiError(`cordon ${command}: ${where} answered with a body that is not JSON: ${clip(text)}`);
  }
}

export function errorMessage(text: string, statusText: string): string {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return text ? clip(text) : statusText;
  }
  const parsed = ErrorBody.safeParse(json);
  if (!parsed.success) return clip(text);
  const e = parsed.data;
  return 'title' in e ? (e.detail ? `${e.title}: ${e.detail}` : e.title) : `${e.error}: ${e.message}`;
}

const clip = (text: string) => (text.length > 300 ? `${text.slice(0, 297)}...` : text).replace(/[\x00-\x1f\x7f]/g, ' ');

/** Validates a 2xx answer against what the command expects, so a surprise is named rather than printed as `undefined`. */
export function expectBody<S extends z.ZodType>(command: string, schema: S, body: unknown): z.infer<S> {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  throw new ApiError(`cordon ${command}: the API answered with an unexpected body: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
}

/** Adds --url, --token and --json to a command that calls the API. */
export function withApiOptions(command: Command): Command {
  return command
    .option('--url <url>', 'the running cordon (default: env CORDON_URL, else http://127.0.0.1:8080)')
    .option('--token <token>', 'bearer token (default: env CORDON_TOKEN; prefer the env, a flag shows in ps)')
    .option('--json', 'print the API\'s answer as JSON');
}

/** The raw --url/--token of a command with the environment's CORDON_URL/CORDON_TOKEN behind them. */
export function apiInput(raw: { url?: string; token?: string }, env: Readonly<Record<string, string | undefined>>) {
  return { url: raw.url ?? (env.CORDON_URL || undefined), token: raw.token ?? (env.CORDON_TOKEN || undefined) };
}

/** A person's reason for a decision, as the API checks it. */
export const Reason = z.string({ error: 'say why: --reason TEXT' }).trim().min(3, 'say why (at least 3 characters)').max(2000);

/** `--json`: the API's answer as one JSON line; else the human text. */
export function print(term: Terminal, json: boolean, body: unknown, human: (body: unknown) => string): void {
  term.out.write(json ? `${JSON.stringify(body)}\n` : `${human(body)}\n`);
}
