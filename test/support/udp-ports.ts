// UDP ports free on loopback right now, for tests that bind native threads' sockets to them.
import { createSocket, type Socket } from 'node:dgram';

export async function freeUdpPorts(n: number): Promise<number[]> {
  const sockets = await Promise.all(Array.from({ length: n }, () => new Promise<Socket>((resolve) => {
    const s = createSocket('udp4');
    s.bind(0, '127.0.0.1', () => resolve(s));
  })));
  const ports = sockets.map((s) => s.address().port);
  await Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}
