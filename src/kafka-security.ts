import { readFileSync } from 'node:fs';
import { z } from 'zod';

/**
 * How Cordon authenticates to Kafka: TLS (a private CA, a client certificate for mTLS) and SASL
 * SCRAM-SHA-256/512. Files are checked when the config loads and read again when a client is made;
 * the config keeps paths, never key material, and the password is never logged.
 */

type PemKind = 'certificate' | 'private key';

/** A readable PEM file holding at least one block of the kind; the error names what was found instead. */
function pemFile(kind: PemKind) {
  return z
    .string()
    .min(1)
    .superRefine((path, ctx) => {
      const problem = pemProblem(path, kind);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    });
}

function pemProblem(path: string, kind: PemKind): string | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'latin1');
  } catch (err) {
    return `cannot read ${kind} file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
  }
  if (kind === 'private key' && /-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(text)) {
    return 'expected an unencrypted PEM private key (an encrypted key needs a passphrase Cordon does not take)';
  }
  const begin = kind === 'certificate' ? /-----BEGIN CERTIFICATE-----/ : /-----BEGIN (RSA |EC )?PRIVATE KEY-----/;
  return begin.test(text) ? undefined : `expected a PEM ${kind} (-----BEGIN ${kind.toUpperCase()}-----)`;
}

const SecretFile = z
  .string()
  .min(1)
  .superRefine((path, ctx) => {
    try {
      if (readFileSync(path, 'utf8').trim() === '') ctx.addIssue({ code: 'custom', message: 'password file is empty' });
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `cannot read password file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
    }
  });

/** TLS to the brokers (their SSL or SASL_SSL listener). Present means on; the server certificate is always verified. */
export const KafkaTlsConfig = z
  .strictObject({
    /** PEM bundle of the CA(s) that signed the brokers' certificates; the system CAs when absent. */
    caFile: pemFile('certificate').optional(),
    /** Client certificate and its key (PEM), for a listener with ssl.client.auth=required. */
    certFile: pemFile('certificate').optional(),
    keyFile: pemFile('private key').optional(),
    /** Name checked against the broker certificate, when it differs from the host in `brokers`. */
    servername: z.string().min(1).optional(),
  })
  .refine((t) => (t.certFile === undefined) === (t.keyFile === undefined), 'expected both certFile and keyFile, or neither');
export type KafkaTlsConfig = z.infer<typeof KafkaTlsConfig>;

export const SASL_MECHANISMS = ['SCRAM-SHA-256', 'SCRAM-SHA-512'] as const;

/** SASL SCRAM login. The password comes from `passwordFile` or CORDON_KAFKA_SASL_PASSWORD, never the config file. */
export const KafkaSaslConfig = z
  .strictObject({
    mechanism: z.preprocess((v) => (typeof v === 'string' ? v.toUpperCase() : v), z.enum(SASL_MECHANISMS)),
    username: z.string().min(1),
    password: z.string().min(1).optional(),
    passwordFile: SecretFile.optional(),
  })
  .refine((s) => (s.password === undefined) !== (s.passwordFile === undefined), 'expected exactly one of password (CORDON_KAFKA_SASL_PASSWORD), passwordFile');
export type KafkaSaslConfig = z.infer<typeof KafkaSaslConfig>;

export interface KafkaSecurityConfig {
  tls?: KafkaTlsConfig | undefined;
  sasl?: KafkaSaslConfig | undefined;
}

/** SCRAM sends a proof, not the password, but without TLS anyone on the path reads every record. */
export function saslNeedsTls(kafka: KafkaSecurityConfig): boolean {
  return kafka.sasl === undefined || kafka.tls !== undefined;
}

/** What a client needs, read from the configured files: PEM buffers and the SASL login. */
export interface KafkaCredentials {
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer; servername?: string };
  sasl?: { mechanism: (typeof SASL_MECHANISMS)[number]; username: string; password: string };
}

export function readKafkaCredentials(kafka: KafkaSecurityConfig): KafkaCredentials {
  const out: KafkaCredentials = {};
  const { tls, sasl } = kafka;
  if (tls) {
    out.tls = {
      ...(tls.caFile ? { ca: readFileSync(tls.caFile) } : {}),
      ...(tls.certFile && tls.keyFile ? { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) } : {}),
      ...(tls.servername ? { servername: tls.servername } : {}),
    };
  }
  if (sasl) {
    const password = sasl.password ?? readFileSync(sasl.passwordFile as string, 'utf8').trim();
    out.sasl = { mechanism: sasl.mechanism, username: sasl.username, password };
  }
  return out;
}

/** A TLS alert from a broker refusing Cordon's certificate (Node's code names the alert; OpenSSL 3.2+ says SSL/TLS, older SSLV3/TLSV13). */
const REFUSED_CLIENT_CERT = /^ERR_SSL_.*ALERT_(BAD_CERTIFICATE|CERTIFICATE_REQUIRED|CERTIFICATE_UNKNOWN|UNKNOWN_CA|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED|UNSUPPORTED_CERTIFICATE)$/;
/** Node's verification codes for a broker certificate Cordon does not trust. */
const UNTRUSTED_BROKER_CERT = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * What a TLS failure means for the operator, naming the config keys to look at; undefined for
 * errors that are not about certificates (a broker that is down, a timeout).
 */
export function explainTlsFailure(code: string | undefined, broker: string, tls: KafkaTlsConfig): string | undefined {
  if (code === undefined) return undefined;
  if (REFUSED_CLIENT_CERT.test(code)) {
    return tls.certFile
      ? `broker ${broker} refused Cordon's client certificate ${tls.certFile} (${code}): is it signed by a CA the broker trusts?`
      : `broker ${broker} requires a client certificate (${code}): set kafka.tls.certFile and kafka.tls.keyFile`;
  }
  if (UNTRUSTED_BROKER_CERT.has(code)) {
    return `Cordon does not trust the certificate of broker ${broker} (${code}): ${tls.caFile ? `is it signed by the CA in ${tls.caFile}` : 'set kafka.tls.caFile to the CA that signed it'}${code === 'ERR_TLS_CERT_ALTNAME_INVALID' ? ', or set kafka.tls.servername to the name it carries' : ''}?`;
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'EPROTO') {
    return `broker ${broker} does not speak TLS (${code}): is it a PLAINTEXT listener? Remove kafka.tls or use its SSL/SASL_SSL port`;
  }
  return undefined;
}
