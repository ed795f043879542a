import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import YAML, { isAlias, isMap, isScalar, isSeq, LineCounter, type Document, type Node as YamlNode } from 'yaml';
import type { z } from 'zod';
import { deeperThan, yamlProblem } from '../validation';
import { PlaybookSchema, type PlaybookSpec } from './model';

/**
 * Reading playbook files: YAML with source positions kept, validated with the model, every problem
 * reported as `file:line:col: field.path: message` at the node it is about. Reading is the only
 * I/O here; `parsePlaybook` is pure.
 */

export const MAX_PLAYBOOK_BYTES = 256 * 1024;
/** Deeper than any playbook the model allows; deeper documents are refused before validation. */
export const MAX_PLAYBOOK_DEPTH = 32;
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export interface PlaybookIssue {
  file: string;
  line: number;
  col: number;
  /** Dotted field path (`steps.2.ttl`), or `(root)`. */
  path: string;
  message: string;
}

export function formatIssue(i: PlaybookIssue): string {
  return `${i.file}:${i.line}:${i.col}: ${i.path}: ${i.message}`;
}

export interface Position {
  line: number;
  col: number;
}

export interface LoadedPlaybook {
  file: string;
  /** First 12 hex of the SHA-256 of the file content with line endings normalized. */
  version: string;
  /** `name@version`: the identity in job ids and the ledger. */
  id: string;
  spec: PlaybookSpec;
  /** Where `name` and `priority` are written, for errors that involve several files. */
  positions: { name: Position; priority: Position };
}

export type ParseResult = { ok: true; playbook: LoadedPlaybook } | { ok: false; issues: PlaybookIssue[] };

export class PlaybookError extends Error {
  override name = 'PlaybookError';
  constructor(readonly issues: PlaybookIssue[]) {
    super(issues.map(formatIssue).join('\n'));
  }
}

/**
 * The content version: CRLF and lone CR become LF and a UTF-8 BOM is dropped, so a checkout on
 * Windows has the version of the same file on Linux; any other change, comments included, is a
 * new version (the file is what was reviewed).
 */
export function contentVersion(text: string): string {
  return createHash('sha256').update(canonicalContent(text), 'utf8').digest('hex').slice(0, 12);
}

export function canonicalContent(text: string): string {
  return text.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
}

/** Parse and validate one playbook's text. `file` only names it in messages. */
export function parsePlaybook(text: string, file: string): ParseResult {
  const lineCounter = new LineCounter();
  const pos = (offset: number): Position => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, col };
  };
  const issue = (offset: number, path: readonly PathKey[], message: string): PlaybookIssue => ({
    file,
    ...pos(offset),
    path: formatPath(path),
    message,
  });

  if (Buffer.byteLength(text, 'utf8') > MAX_PLAYBOOK_BYTES) {
    return { ok: false, issues: [{ file, line: 1, col: 1, path: '(root)', message: `larger than ${MAX_PLAYBOOK_BYTES} bytes` }] };
  }
  const doc = YAML.parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: true, strict: true });
  // One YAML error usually sets off a cascade of others: the first is the one to fix.
  const syntax = [...doc.errors, ...doc.warnings].slice(0, 1).map((e) => ({
    file,
    ...(e.linePos ? { line: e.linePos[0].line, col: e.linePos[0].col } : pos(e.pos[0])),
    path: '(yaml)',
    message: yamlProblem(e, MAX_PLAYBOOK_DEPTH).replace(/ at line \d+, column \d+:?(?=\)?$)/, ''),
  }));
  if (syntax.length) return { ok: false, issues: syntax };

  const structural: PlaybookIssue[] = [];
  walk(doc.contents, [], (offset, path, message) => structural.push(issue(offset, path, message)));
  if (structural.length) return { ok: false, issues: structural };

  const value: unknown = doc.toJS({ maxAliasCount: 0 });
  const deep = deeperThan(value, MAX_PLAYBOOK_DEPTH);
  if (deep) return { ok: false, issues: [{ file, line: 1, col: 1, path: deep, message: `too deep: nesting goes beyond ${MAX_PLAYBOOK_DEPTH} levels` }] };
  const parsed = PlaybookSchema.safeParse(value, { reportInput: true });
  if (!parsed.success) {
    return { ok: false, issues: sortIssues(parsed.error.issues.flatMap((i) => locateIssue(doc, i, issue))) };
  }
  const version = contentVersion(text);
  const at = (key: string) => pos(nodeAt(doc, [key])?.range?.[0] ?? 0);
  return {
    ok: true,
    playbook: {
      file,
      version,
      id: `${parsed.data.name}@${version}`,
      spec: parsed.data,
      positions: { name: at('name'), priority: at('priority') },
    },
  };
}

/** Read and parse one file. */
export function loadPlaybookFile(file: string): ParseResult {
  let text: string;
  try {
    const size = statSync(file).size;
    if (size > MAX_PLAYBOOK_BYTES) {
      return { ok: false, issues: [{ file, line: 1, col: 1, path: '(root)', message: `larger than ${MAX_PLAYBOOK_BYTES} bytes` }] };
    }
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return { ok: false, issues: [{ file, line: 0, col: 0, path: '(file)', message: `cannot read: ${(err as Error).message}` }] };
  }
  return parsePlaybook(text, file);
}

/** Playbook files named by paths: a file as given, a directory's *.yaml / *.yml (not recursive), sorted. */
export function playbookFiles(paths: readonly string[]): { files: string[]; issues: PlaybookIssue[] } {
  const files: string[] = [];
  const issues: PlaybookIssue[] = [];
  for (const p of paths) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch (err) {
      issues.push({ file: p, line: 0, col: 0, path: '(file)', message: `cannot read: ${(err as Error).message}` });
      continue;
    }
    if (!isDir) files.push(p);
    else {
      const found = readdirSync(p)
        .filter((f) => /\.ya?ml$/i.test(f))
        .sort()
        .map((f) => join(p, f));
      if (found.length === 0) issues.push({ file: p, line: 0, col: 0, path: '(file)', message: 'no *.yaml or *.yml playbook files in this directory' });
      files.push(...found);
    }
  }
  return { files, issues };
}

export interface LoadResult {
  playbooks: LoadedPlaybook[];
  /** Every problem: each file's own, then those across files. */
  issues: PlaybookIssue[];
}

/**
 * Load a set of playbooks (files and directories) and check the set: names and priorities are
 * unique, so which playbook runs never depends on file order.
 */
export function loadPlaybooks(paths: readonly string[]): LoadResult {
  const { files, issues } = playbookFiles(paths);
  const playbooks: LoadedPlaybook[] = [];
  for (const file of files) {
    const r = loadPlaybookFile(file);
    if (r.ok) playbooks.push(r.playbook);
    else issues.push(...r.issues);
  }
  issues.push(...checkSet(playbooks));
  return { playbooks, issues };
}

/** Set-level rules: unique names, unique priorities. */
export function checkSet(playbooks: readonly LoadedPlaybook[]): PlaybookIssue[] {
  const issues: PlaybookIssue[] = [];
  const byName = new Map<string, LoadedPlaybook>();
  const byPriority = new Map<number, LoadedPlaybook>();
  for (const p of playbooks) {
    const sameName = byName.get(p.spec.name);
    if (sameName) {
      issues.push({ file: p.file, ...p.positions.name, path: 'name', message: `"${p.spec.name}" is also the name of ${sameName.file}` });
    } else byName.set(p.spec.name, p);
    const samePriority = byPriority.get(p.spec.priority);
    if (samePriority) {
      issues.push({
        file: p.file,
        ...p.positions.priority,
        path: 'priority',
        message: `${p.spec.priority} is also the priority of ${samePriority.spec.name} (${samePriority.file}); priorities decide which playbook runs, so they are unique`,
      });
    } else byPriority.set(p.spec.priority, p);
  }
  return issues;
}

type PathKey = string | number;

function formatPath(path: readonly PathKey[]): string {
  return path.length ? path.map(String).join('.') : '(root)';
}

/** Refuse what the model cannot see: aliases, non-string keys, prototype-pollution keys. */
function walk(node: unknown, path: PathKey[], report: (offset: number, path: PathKey[], message: string) => void): void {
  if (isAlias(node)) {
    report(node.range?.[0] ?? 0, path, `aliases (*${node.source}) are not allowed in playbooks: write the value out, a playbook is reviewed as read`);
    return;
  }
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = pair.key;
      if (!isScalar(key) || (typeof key.value !== 'string' && typeof key.value !== 'number')) {
        report((key as YamlNode | null)?.range?.[0] ?? node.range?.[0] ?? 0, path, 'keys must be plain strings');
        continue;
      }
      const name = String(key.value);
      if (FORBIDDEN_KEYS.has(name)) {
        report(key.range?.[0] ?? 0, [...path, name], 'is a forbidden key (prototype pollution)');
        continue;
      }
      walk(pair.value, [...path, name], report);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => walk(item, [...path, i], report));
  }
}

function nodeAt(doc: Document, path: readonly PathKey[]): YamlNode | undefined {
  if (path.length === 0) return (doc.contents as YamlNode | null) ?? undefined;
  const n = doc.getIn(path, true);
  return n !== null && typeof n === 'object' && 'range' in n ? (n as YamlNode) : undefined;
}

/** The nearest node that exists along the path, and how much of the path it covers. */
function nearest(doc: Document, path: readonly PathKey[]): { node: YamlNode | undefined; depth: number } {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = nodeAt(doc, path.slice(0, depth));
    if (node) return { node, depth };
  }
  return { node: undefined, depth: 0 };
}

/** The key node of `key` in the map at `path`, for issues about a key rather than its value. */
function keyNode(doc: Document, path: readonly PathKey[], key: string): YamlNode | undefined {
  const map = nodeAt(doc, path);
  if (!isMap(map)) return undefined;
  const pair = map.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
  return pair && isScalar(pair.key) ? pair.key : undefined;
}

type MakeIssue = (offset: number, path: readonly PathKey[], message: string) => PlaybookIssue;

function locateIssue(doc: Document, zi: z.core.$ZodIssue, make: MakeIssue): PlaybookIssue[] {
  const path = zi.path.filter((k): k is PathKey => typeof k === 'string' || typeof k === 'number');
  if (zi.code === 'unrecognized_keys') {
    return zi.keys.map((k) => make(keyNode(doc, path, k)?.range?.[0] ?? nearest(doc, path).node?.range?.[0] ?? 0, [...path, k], 'unknown field'));
  }
  if (zi.code === 'invalid_key') {
    const key = path[path.length - 1];
    const at = typeof key === 'string' ? keyNode(doc, path.slice(0, -1), key) : undefined;
    const why = zi.issues.map((i) => i.message).join('; ');
    return [make(at?.range?.[0] ?? nearest(doc, path).node?.range?.[0] ?? 0, path, `invalid key: ${why}`)];
  }
  const { node } = nearest(doc, path);
  return [make(node?.range?.[0] ?? 0, path, messageOf(zi))];
}

/** Zod's default texts, made to read like the rest: `required`, `expected a mapping, found a list`. */
function messageOf(zi: z.core.$ZodIssue): string {
  if (zi.code === 'invalid_type' && /^Invalid input/.test(zi.message)) {
    if (zi.input === undefined) return 'required';
    const found = zi.input === null ? 'nothing (null)' : Array.isArray(zi.input) ? 'a list' : typeof zi.input === 'object' ? 'a mapping' : `${typeof zi.input} ${JSON.stringify(zi.input)}`;
    return `expected ${zi.expected === 'object' ? 'a mapping' : zi.expected === 'array' ? 'a list' : `a ${zi.expected}`}, found ${found}`;
  }
  return zi.message.replace(/^Invalid input: /, '');
}

function sortIssues(issues: PlaybookIssue[]): PlaybookIssue[] {
  return issues.sort((a, b) => a.line - b.line || a.col - b.col);
}
