import { DYN_RPC, type Entity } from './topology';

/**
 * The enterprise's segmentation policy: host firewalls on Windows and Linux, Kubernetes network
 * policies in both clusters, a host-firewall policy on the nodes. Background, scanners and attacks
 * all go through it, so whether an attempt is denied follows from who tries what, never from who
 * is "the attacker".
 */

const DC_TCP = new Set([53, 88, 135, 389, 445, 464, 636, 3268, 3269, 9389]);
const DC_UDP = new Set([53, 88, 123, 389, 464]);
/** Ports a Windows host is administered over. */
export const WINDOWS_ADMIN = new Set([135, 139, 445, 3389, 5985, 5986]);

const isDynRpc = (port: number) => port >= DYN_RPC.lo && port <= DYN_RPC.hi;
const isDomainMember = (e: Entity) =>
  e.role === 'workstation' || e.role === 'server' || e.role === 'dc' || e.role === 'jump' || e.role === 'scanner' || e.role === 'monitor';
const isUserOrServerSubnet = (e: Entity) => e.role === 'workstation' || e.role === 'server';

export function permits(src: Entity, dst: Entity, port: number, proto: 'tcp' | 'udp' | 'icmp'): boolean {
  if (dst.role === 'broadcast') return false; // host firewalls drop inbound NetBIOS / LLMNR / SSDP announcements
  if (dst.role === 'external') return src.role !== 'pod' || port === 443;
  if (proto === 'icmp') return src.role === 'scanner' || src.role === 'monitor' || src.role === 'jump';
  const listens = (p: number, pr: 'tcp' | 'udp' = proto as 'tcp' | 'udp') =>
    dst.services.some((s) => s.port === p && s.proto === pr);

  switch (dst.role) {
    case 'dc': {
      if (src.role === 'jump') return true;
      if (src.role === 'monitor') return port === 10050;
      if (!isDomainMember(src) && src.role !== 'pod') return false;
      if (proto === 'udp') return DC_UDP.has(port);
      return DC_TCP.has(port) || isDynRpc(port);
    }
    case 'workstation': {
      if (src.role === 'jump') return WINDOWS_ADMIN.has(port) || isDynRpc(port);
      if (src.role === 'scanner') return port === 445 || port === 135;
      return false; // nothing else may connect to a workstation
    }
    case 'server': {
      if (src.role === 'jump') return true;
      if (src.role === 'monitor') return port === 10050 || (dst.os === 'windows' && port === 5985);
      if (src.role === 'scanner') return listens(port) && (port === 445 || port === 135 || port === 22 || !isAdminPort(dst, port));
      const admin = isAdminPort(dst, port) || (dst.os === 'windows' && isDynRpc(port));
      if (admin) {
        if (dst.serverKind === 'file' && port === 445) return isUserOrServerSubnet(src) || src.role === 'dc';
        const open = dst.exposed?.includes(isDynRpc(port) ? 'dyn' : port) ?? false;
        return open && isUserOrServerSubnet(src);
      }
      return listens(port) && (isUserOrServerSubnet(src) || src.role === 'pod' || src.role === 'dc');
    }
    case 'node': {
      if (src.role === 'node') return src.cluster === dst.cluster && (src.controlPlane || port === 10250);
      if (src.role === 'pod') {
        if (src.cluster !== dst.cluster) return false;
        if (port === 6443) return !!dst.controlPlane; // the kubernetes service
        if (port === 10250) return src.app === src.cluster?.prometheus; // metrics scraping
        return false;
      }
      return src.role === 'jump' && (port === 22 || port === 6443);
    }
    case 'pod': {
      const app = dst.app!;
      if (src.role !== 'pod' || !src.app) return port === app.port && src.role !== 'scanner';
      if (src.cluster !== dst.cluster) return false;
      if (app === dst.cluster?.dns) return port === 53;
      if (src.app === dst.cluster?.prometheus) return port === 9090 && app.scrapeAllowed;
      return port === app.port && src.app.calls.includes(app);
    }
    default:
      return false;
  }
}

/** Ports whose use towards this entity means remote administration, not service use. */
export function isAdminPort(dst: Entity, port: number): boolean {
  if (dst.os === 'windows') return WINDOWS_ADMIN.has(port);
  return port === 22;
}
