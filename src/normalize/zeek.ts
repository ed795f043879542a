import { z } from 'zod';
import { CONN_STATES, Name, Port, type ConnState, type Flow } from '../events';
import { events, reject, skip, type Normalizer, type Outcome, type RawRecord, type StreamContext } from './normalizer';
import { CanonIp, EpochSeconds, IsoTime, appProtocolsOf, eventId, isGroupAddress, isJsonObject, protocolFromText, rejectReason } from './common';
import { FieldCheck, valueSet } from './fast';
import { hasZeekHeader, isZeekHeaderLine, readTsvLine } from './zeek-tsv';

/**
 * Zeek conn.log, JSON lines: Zeek's own `id.orig_h` keys or the flattened `id_orig_h` keys some
 * pipelines write (the OTRF APT29 recordings). What the connection state means:
 *
 * - REJ (the SYN was answered by a RST: refused) -> DeniedFlow, policy.id "zeek:REJ";
 * - S0 (attempt seen, never answered) -> DeniedFlow, policy.id "zeek:S0" - unless the responder
 *   is a multicast/broadcast address: a NetBIOS or SSDP datagram to a group never gets an answer
 *   (all UDP S0 in the APT29 recordings are such), so that is an AllowedFlow, not a denial;
 * - SF, S1, S2, S3, RSTO, RSTR (the handshake completed) and OTH (midstream traffic seen both
 *   ways) -> AllowedFlow;
 * - RSTOS0, RSTRH, SH, SHR (half-open, no handshake seen: often a capture that started
 *   midstream; neither a refusal nor a completed connection) -> skip;
 * - conn_state absent -> skip (the record is checked first: a record that lacks ts, uid, the
 *   id.* tuple or proto is a reject, not a skip). An unknown conn_state value is a reject.
 *
 * Carried as hints (events.ts): `conn_state`, and `service` (the protocols Zeek recognised in the
 * payload, "gssapi,smb,krb") when it is a short list of protocol names, else left out.
 *
 * Id: `zeek:<uid>`. Time: `ts` (connection start; epoch seconds, or ISO-8601). No identities:
 * conn.log knows addresses only. Observer: the sensor (`@system` / `_system_name`), else "zeek".
 *
 * Zeek's default TSV conn.log is read too (zeek-tsv.ts): each record becomes the object the JSON
 * writer would have written, and is decided the same way.
 */

const PROTOS = ['tcp', 'udp', 'icmp', 'unknown_transport'] as const;

const common = {
  ts: z.union([EpochSeconds, IsoTime]),
  uid: Name,
  proto: z.enum(PROTOS),
  conn_state: z.enum(CONN_STATES).optional(),
  service: z.unknown().transform(appProtocolsOf).optional(),
  '@system': Name.optional(),
  _system_name: Name.optional(),
};
const Dotted = z.object({ ...common, 'id.orig_h': CanonIp, 'id.orig_p': Port, 'id.resp_h': CanonIp, 'id.resp_p': Port });
const Flat = z.object({ ...common, id_orig_h: CanonIp, id_orig_p: Port, id_resp_h: CanonIp, id_resp_p: Port });
type Common = Omit<z.infer<typeof Flat>, 'id_orig_h' | 'id_orig_p' | 'id_resp_h' | 'id_resp_p'>;

type Verdict = { action: 'denied'; policy: { id: string; name: string } } | { action: 'allowed' } | { skip: string };
const ALLOWED: Verdict = { action: 'allowed' };

function verdict(state: ConnState, respH: string): Verdict {
  switch (state) {
    case 'REJ':
      return { action: 'denied', policy: { id: 'zeek:REJ', name: 'connection refused (REJ)' } };
    case 'S0':
      return isGroupAddress(respH)
        ? ALLOWED
        : { action: 'denied', policy: { id: 'zeek:S0', name: 'connection attempt unanswered (S0)' } };
    case 'SF':
    case 'S1':
    case 'S2':
    case 'S3':
    case 'RSTO':
    case 'RSTR':
    case 'OTH':
      return ALLOWED;
    default:
      return { skip: `zeek: conn_state ${state} is a half-open connection, neither refused nor completed` };
  }
}

function toFlow(record: RawRecord, c: Common, origH: string, origP: number, respH: string, respP: number): Outcome {
  if (c.conn_state === undefined) return skip('zeek: no conn_state');
  const v = verdict(c.conn_state, respH);
  if ('skip' in v) return skip(v.skip);
  const flow: Flow = {
    id: eventId('zeek', c.uid, record.text),
    time: c.ts,
    src: { ip: origH, port: origP },
    dst: { ip: respH, port: respP },
    protocol: protocolFromText(c.proto),
    dstPort: respP,
    action: v.action,
    observer: { type: 'zeek', name: c['@system'] ?? c._system_name ?? 'zeek' },
    connState: c.conn_state,
  };
  if (c.service !== undefined) flow.appProtocols = c.service;
  if (v.action === 'denied') flow.policy = v.policy;
  return events(flow);
}

// The fast path: the same fields checked by hand (see fast.ts); on any doubt zod decides.
const check = new FieldCheck();
const PROTO_SET = valueSet(PROTOS);
const CONN_STATE_SET = valueSet(CONN_STATES);

/** `ts`: EpochSeconds for a number, IsoTime for a string (the union's members, in order). */
function fastTs(c: FieldCheck, v: unknown): number {
  return typeof v === 'number' ? c.epochSeconds(v) : c.isoTime(v);
}

function fastZeek(record: RawRecord, json: Record<string, unknown>, dotted: boolean): Outcome | undefined {
  const c = check.reset();
  const common: Common = {
    ts: fastTs(c, json.ts),
    uid: c.name(json.uid),
    proto: c.oneOf(json.proto, PROTO_SET),
    conn_state: c.optOneOf(json.conn_state, CONN_STATE_SET),
    service: appProtocolsOf(json.service),
    '@system': c.optName(json['@system']),
    _system_name: c.optName(json._system_name),
  };
  const origH = c.ip(dotted ? json['id.orig_h'] : json.id_orig_h);
  const origP = c.port(dotted ? json['id.orig_p'] : json.id_orig_p);
  const respH = c.ip(dotted ? json['id.resp_h'] : json.id_resp_h);
  const respP = c.port(dotted ? json['id.resp_p'] : json.id_resp_p);
  return c.doubt ? undefined : toFlow(record, common, origH, origP, respH, respP);
}

function normalizeWith(record: RawRecord, ctx: StreamContext, fast: boolean): Outcome {
  let json = record.json;
  if (json === undefined) {
    const tsv = readTsvLine(record.text, ctx);
    if (tsv.kind === 'outcome') return tsv.outcome;
    json = tsv.json;
  }
  if (!isJsonObject(json)) return reject('zeek: expected a JSON object');
  const dotted = 'id.orig_h' in json;
  const done = fast ? fastZeek(record, json, dotted) : undefined;
  if (done) return done;
  if (dotted) {
    const p = Dotted.safeParse(json);
    if (!p.success) return reject(rejectReason('zeek', p.error));
    const r = p.data;
    return toFlow(record, r, r['id.orig_h'], r['id.orig_p'], r['id.resp_h'], r['id.resp_p']);
  }
  const p = Flat.safeParse(json);
  if (!p.success) return reject(rejectReason('zeek', p.error));
  const r = p.data;
  return toFlow(record, r, r.id_orig_h, r.id_orig_p, r.id_resp_h, r.id_resp_p);
}

const detect = (record: RawRecord, ctx?: StreamContext): boolean => {
  const j = record.json;
  if (j === undefined) return isZeekHeaderLine(record.text) || hasZeekHeader(ctx);
  return isJsonObject(j) && 'uid' in j && 'ts' in j && ('id.orig_h' in j || 'id_orig_h' in j);
};

export const zeek: Normalizer = { format: 'zeek', detect, normalize: (record, ctx) => normalizeWith(record, ctx, true) };

/** The same normalizer with zod alone deciding: the reference the fast path is tested and measured against. */
export const zeekSchemaOnly: Normalizer = {
  format: 'zeek',
  detect,
  normalize: (record, ctx) => normalizeWith(record, ctx, false),
};
