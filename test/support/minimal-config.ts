// The smallest valid cluster configuration, for unit tests that add one section to it.
export const MINIMAL_CONFIG = `
cluster: c1
keyFile: /etc/vigil/key
networks: [{ name: n1, port: 7400 }]
nodes:
  - { name: x, id: 1, addresses: { n1: 192.0.2.1 } }
  - { name: y, id: 2, addresses: { n1: 192.0.2.2 } }
`;
