/** The dashboard's link in the status (issue 20's `dashboard: {url, vpnOnly}`): the same host the server's nginx serves it on. */
import { dashboardLink } from '../shared/dashboard.ts';
import { computeDesiredState } from '../shared/desired-state.ts';
import { documentOf, example, fileOf } from './helpers/fixtures.ts';

const rg = example('reference-architecture');

test("the reference architecture's dashboard is at the k3s server's fqdn, where its nginx serves it", () => {
  expect(dashboardLink(rg)).toEqual({ url: 'https://kube01.demo.example.com/', vpnOnly: false });
  expect(fileOf(documentOf(computeDesiredState(rg).documents, 'kube01'), 'nginx.conf')).toContain('server_name kube01.demo.example.com;');
});

test('a hostname of its own and VPN-only are what the link says', () => {
  const cluster = rg.cluster!;
  expect(dashboardLink({ ...rg, cluster: { ...cluster, dashboard: { ...cluster.dashboard, hostname: 'k8s.example.org', vpnOnly: true, vpnNetworks: ['10.8.0.0/16'] } } })).toEqual({ url: 'https://k8s.example.org/', vpnOnly: true });
});

test('no link without a cluster, without a server, or with the dashboard disabled', () => {
  expect(dashboardLink({ ...rg, cluster: undefined })).toBeNull();
  expect(dashboardLink({ ...rg, vms: rg.vms.filter((vm) => !vm.roles.includes('k3s-server')) })).toBeNull();
  expect(dashboardLink({ ...rg, cluster: { ...rg.cluster!, dashboard: { ...rg.cluster!.dashboard, enabled: false } } })).toBeNull();
});
