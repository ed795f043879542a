import { Rng } from '../random';
import { WIN, type Enterprise, type Entity } from '../topology';

/**
 * Windows Filtering Platform audit events (Security 5156 permitted / 5157 blocked) as NXLog ships
 * them through a Windows Event Collector to Logstash: the field set, field order, value types and
 * the `Message` text of the OTRF recordings' records (`mordorDataset` shape, 40 fields).
 */

const PROVIDER_GUID = '{54849625-5478-4994-A5BA-3E3B0328C30D}';
/** Keywords are 64-bit masks NXLog writes as signed JSON integers, beyond a double's precision. */
const KEYWORDS_SUCCESS = '-9214364837600034816';
const KEYWORDS_FAILURE = '-9218868437227405312';

interface HostState {
  recordNumber: number;
  blockFilter: number;
  allowFilterIn: number;
  allowFilterOut: number;
  pids: Map<string, number>;
  threads: number[];
}

export class WfpWriter {
  private readonly hosts = new Map<number, HostState>();
  private readonly rng: Rng;

  constructor(
    private readonly enterprise: Enterprise,
    private readonly seed: number,
    private readonly utcOffsetMinutes: number,
  ) {
    this.rng = Rng.derive(seed, 'format:wfp');
  }

  /**
   * One record logged on `host`. Inbound: `host` is the destination, the process is the one that
   * owns the listening socket. Outbound: `host` is the source, `image` the initiating process.
   */
  record(
    host: Entity,
    t: number,
    blocked: boolean,
    inbound: boolean,
    srcIp: string,
    srcPort: number,
    dstIp: string,
    dstPort: number,
    proto: 'tcp' | 'udp' | 'icmp',
    image: string,
  ): string {
    const st = this.state(host);
    const rng = this.rng;
    const pid = image === WIN.system ? 4 : this.pid(st, image);
    const protoNum = proto === 'tcp' ? 6 : proto === 'udp' ? 17 : 1;
    const layerRtid = inbound ? '44' : '48';
    const filter = String(blocked ? st.blockFilter : inbound ? st.allowFilterIn : st.allowFilterOut);
    const lagMs = rng.int(250, 3200);
    const img = this.escaped(image);
    const dir = inbound ? 'Inbound' : 'Outbound';
    // the Message, already JSON-escaped (\r\n\t written as escapes)
    const message =
      `The Windows Filtering Platform has ${blocked ? 'blocked' : 'permitted'} a connection.\\r\\n\\r\\n` +
      `Application Information:\\r\\n\\tProcess ID:\\t\\t${pid}\\r\\n\\tApplication Name:\\t${img}\\r\\n\\r\\n` +
      `Network Information:\\r\\n\\tDirection:\\t\\t${dir}\\r\\n` +
      `\\tSource Address:\\t\\t${srcIp}\\r\\n\\tSource Port:\\t\\t${srcPort}\\r\\n` +
      `\\tDestination Address:\\t${dstIp}\\r\\n\\tDestination Port:\\t\\t${dstPort}\\r\\n\\tProtocol:\\t\\t${protoNum}\\r\\n\\r\\n` +
      `Filter Information:\\r\\n\\tFilter Run-Time ID:\\t${filter}\\r\\n\\tLayer Name:\\t\\t${inbound ? 'Receive/Accept' : 'Connect'}\\r\\n` +
      `\\tLayer Run-Time ID:\\t${layerRtid}`;
    const thread = st.threads[rng.int(0, st.threads.length - 1)];
    const eventTime = this.local(t - lagMs, 0);
    const received = this.local(t - rng.int(0, 400), 1);
    const recordNumber = st.recordNumber++;
    // occasionally another event interleaves in the host's Security log
    if (rng.chance(0.3)) st.recordNumber += rng.int(1, 6);
    // field order, names and value types of the recordings' NXLog records
    return (
      `{"tags":["mordorDataset"],"@version":"1","EventType":"${blocked ? 'AUDIT_FAILURE' : 'AUDIT_SUCCESS'}","Version":1,` +
      `"ThreadID":${thread},"EventTime":"${eventTime}","Task":12810,"DestAddress":"${dstIp}","SourcePort":"${srcPort}",` +
      `"Channel":"Security","SourceName":"Microsoft-Windows-Security-Auditing","OpcodeValue":0,"Hostname":${this.quoted(host.name)},` +
      `"@timestamp":"${new Date(t).toISOString()}","Message":"${message}","Category":"Filtering Platform Connection","Opcode":"Info",` +
      `"SourceModuleName":"eventlog","ProcessId":"${pid}","EventReceivedTime":"${received}","port":${this.enterprise.wec.port},` +
      `"Application":"${img}","ExecutionProcessID":4,"Direction":"${inbound ? '%%14592' : '%%14593'}","RemoteMachineID":"S-1-0-0",` +
      `"host":${this.quoted(this.enterprise.wec.host)},"DestPort":"${dstPort}","Severity":"${blocked ? 'ERROR' : 'INFO'}","LayerRTID":"${layerRtid}",` +
      `"LayerName":"${inbound ? '%%14610' : '%%14611'}","SeverityValue":${blocked ? 4 : 2},"EventID":${blocked ? 5157 : 5156},` +
      `"SourceAddress":"${srcIp}","ProviderGuid":"${PROVIDER_GUID}","RecordNumber":${recordNumber},"SourceModuleType":"im_msvistalog",` +
      `"Keywords":${blocked ? KEYWORDS_FAILURE : KEYWORDS_SUCCESS},"FilterRTID":"${filter}","Protocol":"${protoNum}","RemoteUserID":"S-1-0-0"}`
    );
  }

  private readonly escapes = new Map<string, string>();

  /** A string's JSON escape without the quotes (cached: few distinct images and host names). */
  private escaped(s: string): string {
    let e = this.escapes.get(s);
    if (e === undefined) {
      e = JSON.stringify(s).slice(1, -1);
      this.escapes.set(s, e);
    }
    return e;
  }

  private quoted(s: string): string {
    return `"${this.escaped(s)}"`;
  }

  private readonly lastSecond = [NaN, NaN];
  private readonly lastLocal = ['', ''];

  /** EventTime / EventReceivedTime: the host's local wall clock, no zone, whole seconds. */
  private local(t: number, slot: 0 | 1): string {
    const sec = Math.floor(t / 1000);
    if (sec !== this.lastSecond[slot]) {
      const d = new Date(sec * 1000 + this.utcOffsetMinutes * 60_000).toISOString();
      this.lastSecond[slot] = sec;
      this.lastLocal[slot] = `${d.slice(0, 10)} ${d.slice(11, 19)}`;
    }
    return this.lastLocal[slot]!;
  }

  private state(host: Entity): HostState {
    let st = this.hosts.get(host.idx);
    if (!st) {
      const r = Rng.derive(this.seed, `wfp-host:${host.idx}`);
      st = {
        recordNumber: r.int(20_000, 900_000),
        blockFilter: r.int(65_000, 80_000),
        allowFilterIn: r.int(65_000, 80_000),
        allowFilterOut: r.int(65_000, 80_000),
        pids: new Map(),
        threads: [r.int(300, 9000), r.int(300, 9000), r.int(300, 9000)],
      };
      this.hosts.set(host.idx, st);
    }
    return st;
  }

  private pid(st: HostState, image: string): number {
    let pid = st.pids.get(image);
    if (pid === undefined) {
      pid = image === WIN.lsass ? this.rng.int(600, 760) : image === WIN.services ? this.rng.int(560, 740) : this.rng.int(800, 12_000) & ~3;
      st.pids.set(image, pid);
    }
    return pid;
  }
}
