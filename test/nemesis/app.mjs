// The nemesis campaign's application: `node app.mjs --nemesis-app TAG VIP PORT [--local]`. The marker
// `--nemesis-app TAG` on its command line is how the campaign finds every running copy in the node
// namespaces (/proc), without asking an agent. It answers every connection to VIP:PORT with the name
// of its node (VIGIL_NODE, set by vigild) and a newline, so the client names whoever answers.
//
// --local also listens on 127.0.0.1:PORT, for the agent's TCP health probe (at most one app per layout
// has one, since the port is shared). SIGUSR1 closes every listener while the process keeps running:
// a hung app, as the health probe sees it.
import { createServer } from 'node:net';

const [, , flag, tag, vip, port, local] = process.argv;
if (flag !== '--nemesis-app' || !tag || !vip || !port) {
  process.stderr.write('usage: app.mjs --nemesis-app TAG VIP PORT [--local]\n');
  process.exit(2);
}
const answer = `${process.env.VIGIL_NODE ?? '?'}\n`;
const servers = [];

function listen(host) {
  const s = createServer((c) => { c.on('error', () => {}); c.end(answer); });
  // No address to bind (the VIP is not on this node): exit, so the agent sees a failed start rather
  // than a copy that runs without serving.
  s.on('error', (e) => { process.stderr.write(`nemesis app ${tag}: ${host}:${port}: ${e.message}\n`); process.exit(3); });
  s.listen(Number(port), host);
  servers.push(s);
}

listen(vip);
if (local === '--local') listen('127.0.0.1');
process.on('SIGUSR1', () => { for (const s of servers) s.close(); });
// Keeps the process alive once the listeners are closed (hung, not exited).
setInterval(() => {}, 60_000);
