// @peculiar/x509 resolves its ASN.1 serializers through tsyringe, which needs the
// Reflect metadata API; only `berth cert` loads this module, so the server never does.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { KeyObject, randomBytes, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { SetupError } from '../setup-error.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

/** A DNS name in ASCII: labels of letters, digits and inner hyphens, optionally one leading `*.`. */
const DNS_NAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export interface SubjectName {
  type: 'ip' | 'dns';
  value: string;
}

/**
 * What a certificate says for a host a client uses: an IP address in the form the X.509
 * writer encodes correctly (IPv6 with an embedded IPv4 part, `::ffff:192.168.1.10`, is
 * rewritten to plain hex groups first), or a DNS name in ASCII (an internationalized name
 * becomes its punycode A-label, `bücher.lan` -> `xn--bcher-kva.lan`, as clients compare).
 * An IPv6 zone (`fe80::1%eth0`) is refused: it names an interface of one machine, and a
 * certificate has no field for it.
 */
export function subjectName(host: string): SubjectName {
  const bare = /^\[.*\]$/.test(host) ? host.slice(1, -1) : host;
  const zone = bare.indexOf('%');
  if (zone >= 0 && isIP(bare.slice(0, zone)) === 6) {
    throw new SetupError(`--host ${host}: a certificate cannot carry an IPv6 zone (${bare.slice(zone)}); give the address without it, ${bare.slice(0, zone)}`);
  }
  const family = isIP(bare);
  if (family === 4) return { type: 'ip', value: bare };
  // The URL parser writes IPv6 canonically: lowercase hex groups, the IPv4 tail in hex.
  if (family === 6) return { type: 'ip', value: new URL(`http://[${bare}]/`).hostname.slice(1, -1) };
  const ascii = domainToASCII(bare);
  if (ascii.length > 253 || !DNS_NAME.test(ascii)) {
    throw new SetupError(`--host ${host} is neither an IP address nor a DNS name (letters, digits and hyphens between dots)`);
  }
  return { type: 'dns', value: ascii };
}

export interface Issued {
  certificate: string;
  key: string;
}

/** Positive 128-bit serial numbers, as RFC 5280 asks (at most 20 octets, not negative). */
const serialNumber = () => `01${randomBytes(15).toString('hex')}`;

const pem = (key: CryptoKey) => KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }) as string;

/** RFC 4514 string of a name with one common name, escaped for the name parser. */
const commonName = (value: string) => `CN=${value.replace(/[\\,+"<>;=#]/g, (c) => `\\${c}`)}`;

/**
 * A new certificate authority and a server certificate it signs for `hosts` (DNS names
 * and IP addresses; the first is the common name), ECDSA P-256 with SHA-256. Clients
 * trust the CA certificate.
 */
export async function selfSigned(hosts: readonly string[], days: number): Promise<{ ca: Issued; server: Issued }> {
  const names = hosts.map(subjectName);
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(notBefore.getTime() + days * 86_400_000);
  const [caKeys, serverKeys] = await Promise.all([
    webcrypto.subtle.generateKey(ECDSA_P256, true, ['sign', 'verify']) as Promise<CryptoKeyPair>,
    webcrypto.subtle.generateKey(ECDSA_P256, true, ['sign', 'verify']) as Promise<CryptoKeyPair>,
  ]);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: commonName(`Berth CA for ${names[0]!.value}`),
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: ECDSA_P256,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const server = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: commonName(names[0]!.value),
    issuer: ca.subject,
    notBefore,
    notAfter,
    publicKey: serverKeys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: ECDSA_P256,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.SubjectKeyIdentifierExtension.create(serverKeys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  return {
    ca: { certificate: ca.toString('pem'), key: pem(caKeys.privateKey) },
    server: { certificate: server.toString('pem'), key: pem(serverKeys.privateKey) },
  };
}
