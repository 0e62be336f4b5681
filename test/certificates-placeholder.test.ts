/**
 * A fresh webgateway with TLS hosts, on a folder with nothing prepared (no certificate, no
 * folder): the real agent puts a self-signed placeholder for each host before nginx validates,
 * so the real nginx accepts the document, serves port 80 (the ACME challenge from the webroot,
 * a redirect otherwise) and answers TLS with the placeholder. systemd is stood in for
 * (test/helpers/vm-in-a-folder.ts starts and reloads haproxy and nginx); no ACME server here:
 * the directory is one nothing answers at.
 */
import { statSync } from 'node:fs';
import { request } from 'node:http';
import { loopbackAddress, servedCertificate, startTlsGateway, type TlsGateway } from './helpers/tls-gateway.ts';

let gateway: TlsGateway;

beforeAll(async () => {
  gateway = await startTlsGateway({ address: loopbackAddress(1), acme: { directoryUrl: 'https://127.0.0.1:9/directory' } });
}, 30_000);
afterAll(() => gateway.stop());

function getPort80(host: string, path: string): Promise<{ status: number; location?: string }> {
  return new Promise((resolve, reject) => {
    const sent = request({ host: gateway.address, port: 80, path, agent: false, headers: { host } }, (response) => {
      response.resume();
      response.on('end', () => resolve({ status: response.statusCode ?? 0, ...(response.headers.location ? { location: response.headers.location } : {}) }));
    });
    sent.on('error', reject);
    sent.end();
  });
}

test('real agent, real nginx, fresh folder: the first document applies; each TLS host gets a placeholder (key 0600) nginx serves', async () => {
  const generation = await gateway.publish(['myapp.example.com', 'shop.example.com']);
  expect(await gateway.agent.poll()).toMatchObject({ kind: 'applied', generation });
  for (const host of ['myapp.example.com', 'shop.example.com']) {
    const certificate = await servedCertificate(gateway.address, host);
    expect(certificate.subject).toMatchObject({ CN: host, O: 'Ringmaster placeholder' });
    expect(certificate.issuer).toMatchObject({ CN: host, O: 'Ringmaster placeholder' });
    expect(certificate.subjectaltname).toBe(`DNS:${host}`);
    expect(statSync(`${gateway.layout.acmeDir}/${host}/key.pem`).mode & 0o777).toBe(0o600);
  }
});

test('port 80 answers the ACME challenge path from the webroot, and redirects everything else to https', async () => {
  expect(await getPort80('myapp.example.com', '/')).toEqual({ status: 301, location: 'https://myapp.example.com/' });
  // No such token: nginx looked in the webroot (a 404), it did not redirect.
  expect(await getPort80('myapp.example.com', '/.well-known/acme-challenge/no-such-token')).toEqual({ status: 404 });
});

test('a placeholder stays as it is when the next document keeps its host', async () => {
  const before = await servedCertificate(gateway.address, 'myapp.example.com');
  const generation = await gateway.publish(['myapp.example.com']);
  expect(await gateway.agent.poll()).toMatchObject({ kind: 'applied', generation });
  expect((await servedCertificate(gateway.address, 'myapp.example.com')).fingerprint256).toBe(before.fingerprint256);
});
