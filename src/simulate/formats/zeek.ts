import type { FlowActivity } from '../activity';
import { Rng } from '../random';
import type { Entity } from '../topology';

/**
 * Zeek `conn.log` in its JSON writer form as the OTRF APT29 recordings ship it (`@stream`,
 * `@system`, `@proc` envelope, then the conn fields in Zeek's column order). One record a
 * connection; Zeek folds SYN retransmissions of one 4-tuple into one record.
 *
 * - permitted TCP: `SF` (`ShADadfF`), sometimes `RSTO` (`ShADadfR`) or `RSTR`;
 * - refused by a host firewall that rejects: `REJ` (`Sr`), one record per SYN the client sends
 *   after the reset (Windows clients retry once);
 * - dropped by a host firewall: `S0` (`S`), the retransmissions counted in `orig_pkts`;
 * - a broadcast datagram: `S0` (`D`), `resp_l2_addr` ff:ff:ff:ff:ff:ff.
 */

export type ZeekState = 'SF' | 'RSTO' | 'RSTR' | 'REJ' | 'S0';

export class ZeekWriter {
  private readonly rng: Rng;

  constructor(
    seed: number,
    private readonly sensor: string,
  ) {
    this.rng = Rng.derive(seed, 'format:zeek');
  }

  /** One conn record for `f`, first packet at `t` (ms); `state` as the sensor saw it. */
  record(f: FlowActivity, t: number, state: ZeekState, srcPort: number): string {
    const rng = this.rng;
    const ts = Math.round(t * 1000 + rng.int(1, 999)) / 1e6;
    const broadcast = f.dst.role === 'broadcast';
    const udp = f.proto === 'udp';
    const out: Record<string, unknown> = {
      '@stream': 'conn',
      '@system': this.sensor,
      '@proc': 'zeek',
      ts,
      uid: 'C' + rng.base62(17),
      id_orig_h: f.src.ip,
      id_orig_p: srcPort,
      id_resp_h: f.dst.ip,
      id_resp_p: f.dstPort,
      proto: f.proto,
    };
    const l2 = { orig_l2_addr: f.src.subnet && f.src.subnet === f.dst.subnet ? f.src.mac : ROUTER_MAC, resp_l2_addr: f.dst.mac };
    if (broadcast) {
      l2.orig_l2_addr = f.src.mac;
      if (f.dstPort === 137) {
        out.service = 'dns';
        out.duration = rng.real(0.5, 1.6);
        out.orig_bytes = 150;
        out.resp_bytes = 0;
      }
      Object.assign(out, { conn_state: 'S0', missed_bytes: 0, history: 'D', orig_pkts: f.dstPort === 137 ? 3 : 1 });
      Object.assign(out, { orig_ip_bytes: f.dstPort === 137 ? 234 : rng.int(180, 240), resp_pkts: 0, resp_ip_bytes: 0 });
      Object.assign(out, l2);
      return JSON.stringify(out);
    }
    switch (state) {
      case 'REJ':
        Object.assign(out, {
          duration: rng.real(0.0003, 0.003),
          orig_bytes: 0,
          resp_bytes: 0,
          conn_state: 'REJ',
          missed_bytes: 0,
          history: 'Sr',
          orig_pkts: 1,
          orig_ip_bytes: 52,
          resp_pkts: 1,
          resp_ip_bytes: 40,
        });
        break;
      case 'S0': {
        const pkts = Math.max(1, Math.min(f.tries, 3));
        if (pkts > 1) Object.assign(out, { duration: pkts === 2 ? rng.real(1.0, 1.01) : rng.real(3.0, 3.01), orig_bytes: 0, resp_bytes: 0 });
        Object.assign(out, {
          conn_state: 'S0',
          missed_bytes: 0,
          history: 'S',
          orig_pkts: pkts,
          orig_ip_bytes: 52 * pkts,
          resp_pkts: 0,
          resp_ip_bytes: 0,
        });
        break;
      }
      default: {
        const service = f.service;
        if (service) out.service = service;
        const ob = f.bytesOut ?? rng.int(200, 4000);
        const ib = f.bytesIn ?? rng.int(300, 40_000);
        const op = udp ? 1 : Math.max(3, Math.ceil(ob / 1200) + 3);
        const ip = udp ? 1 : Math.max(3, Math.ceil(ib / 1400) + 2);
        Object.assign(out, {
          duration: udp ? rng.real(0.0005, 0.07) : rng.real(0.02, 12),
          orig_bytes: ob,
          resp_bytes: ib,
          conn_state: udp ? 'SF' : state,
          missed_bytes: 0,
          history: udp ? 'Dd' : state === 'SF' ? 'ShADadfF' : state === 'RSTO' ? 'ShADadfR' : 'ShADadFr',
          orig_pkts: op,
          orig_ip_bytes: ob + op * (udp ? 28 : 40),
          resp_pkts: ip,
          resp_ip_bytes: ib + ip * (udp ? 28 : 40),
        });
      }
    }
    Object.assign(out, l2);
    return JSON.stringify(out);
  }
}

const ROUTER_MAC = '12:34:56:78:9a:bc';

/** Zeek's view of the outcome of a flow towards `dst`. */
export function zeekState(allowed: boolean, dst: Entity, rng: Rng): ZeekState {
  if (!allowed) return dst.rejects ? 'REJ' : 'S0';
  const r = rng.next();
  return r < 0.8 ? 'SF' : r < 0.93 ? 'RSTO' : 'RSTR';
}
