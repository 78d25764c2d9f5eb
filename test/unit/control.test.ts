// The control socket over real unix sockets in a temporary directory: protocol, credentials, socket file.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, stat, writeFile, lstat } from 'node:fs/promises';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t, { type Test } from 'tap';
import { z } from 'zod';

import {
  ControlClient, ControlConnectionError, ControlRemoteError, ControlTimeoutError, VigildNotRunningError,
  controlRequest, controlStream,
} from '../../src/control/client.js';
import { ControlError, LineSplitter, MAX_REQUEST_LINE } from '../../src/control/protocol.js';
import {
  ControlServer, ControlSocketInUseError, makeAuthorizer, parseGroups, socketFd, supplementaryGroups,
  type ControlConnection, type ControlServerOptions,
} from '../../src/control/server.js';
import { registerControlCommands } from '../../src/daemon/control-commands.js';
import { getPeerCred, type NativeSystemError } from '../../src/native.js';
import { prng } from '../support/prng.js';
import { repoFile } from '../support/paths.js';

const me = { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() };

async function tempPath(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-control-'));
  t.teardown(() => import('node:fs/promises').then((fs) => fs.rm(dir, { recursive: true, force: true })));
  return join(dir, 'run', 'vigild.sock');
}

async function started(t: Test, options: Partial<ControlServerOptions> = {}): Promise<ControlServer> {
  const server = new ControlServer({ path: await tempPath(t), ...options });
  server.handle('echo', z.object({ text: z.string() }), ({ text }) => ({ text }));
  server.handle('whoami', z.object({}), (_p, ctx) => ctx.peer);
  server.handle('boom', z.object({}), () => {
    throw new Error('handler exploded');
  });
  server.handle('refuse', z.object({}), async () => {
    throw new ControlError('not_primary', 'this node does not run that application');
  });
  server.handle('bigint', z.object({}), () => 10n);
  server.handle('nothing', z.object({}), () => undefined);
  await server.start();
  t.teardown(() => server.close());
  return server;
}

/** A raw connection: write lines, read lines. */
async function raw(path: string): Promise<{ socket: Socket; send: (s: string | Buffer) => void; line: () => Promise<unknown>; closed: Promise<void> }> {
  const socket = createConnection(path);
  await new Promise<void>((r, j) => socket.once('connect', r).once('error', j));
  const lines: string[] = [];
  const waiting: ((s: string) => void)[] = [];
  const split = new LineSplitter(1 << 24, (l) => {
    const w = waiting.shift();
    if (w) w(l);
    else lines.push(l);
  });
  socket.on('data', (c: Buffer) => split.push(c));
  socket.on('error', () => {});
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  return {
    socket,
    send: (s) => socket.write(s),
    line: () => new Promise((r) => {
      const l = lines.shift();
      if (l !== undefined) r(JSON.parse(l));
      else waiting.push((s) => r(JSON.parse(s)));
    }),
    closed,
  };
}

t.test('round trip, concurrent requests, results', async (t) => {
  const server = await started(t);
  t.same(await controlRequest(server.path, 'echo', { text: 'hello' }), { text: 'hello' });
  const client = await ControlClient.connect(server.path);
  t.teardown(() => client.close());
  const answers = await Promise.all([client.request('echo', { text: 'a' }), client.request('echo', { text: 'b' }), client.request('nothing')]);
  t.same(answers, [{ text: 'a' }, { text: 'b' }, null], 'undefined is answered as null');
  t.equal(server.connections.size, 1);
});

t.test('the socket file: directory created 0750, socket 0660, group set', async (t) => {
  const server = await started(t, { gid: me.gid });
  const st = await stat(server.path);
  t.ok(st.isSocket());
  t.equal(st.mode & 0o777, 0o660);
  t.equal(st.gid, me.gid);
  t.equal((await stat(join(server.path, '..'))).mode & 0o777, 0o750);
  await server.close();
  await t.rejects(lstat(server.path), { code: 'ENOENT' }, 'removed on close');
  await server.close(); // twice is harmless
});

t.test('getPeerCred: the kernel reports this process for a real connection', async (t) => {
  const server = await started(t);
  t.same(await controlRequest(server.path, 'whoami'), me, 'through the server');
  // and directly, on both ends of a plain connection
  const path = join(server.path, '..', 'plain.sock');
  const accepted = new Promise<Socket>((r) => {
    const s = createServer(r);
    s.listen(path);
    t.teardown(() => s.close());
  });
  const c = createConnection(path);
  t.teardown(() => c.destroy());
  const a = await accepted;
  t.teardown(() => a.destroy());
  t.ok(socketFd(a) > 2, 'the accepted socket has an fd');
  t.same(getPeerCred(socketFd(a)), me);
});

t.test('getPeerCred errors carry errno, code and syscall', async (t) => {
  const file = join(await mkdtemp(join(tmpdir(), 'vigil-cred-')), 'f');
  await writeFile(file, 'x');
  const { open } = await import('node:fs/promises');
  const fh = await open(file);
  t.teardown(() => fh.close());
  const check = (fd: number, code: string): void => {
    try {
      getPeerCred(fd);
      t.fail('should throw');
    } catch (e) {
      const err = e as NativeSystemError;
      t.ok(err instanceof Error);
      t.match(err, { code, syscall: 'getsockopt', message: new RegExp(`SO_PEERCRED.*fd ${fd}`) });
      t.equal(err.errno, code === 'ENOTSOCK' ? 88 : 9);
    }
  };
  check(fh.fd, 'ENOTSOCK');
  check(-1, 'EBADF');
  t.throws(() => getPeerCred('3' as unknown as number), TypeError);
  t.throws(() => getPeerCred(1.5), RangeError);
});

t.test('authorisation', async (t) => {
  t.test('the default accepts our own uid', async (t) => {
    const server = await started(t);
    t.same(await controlRequest(server.path, 'echo', { text: 'x' }), { text: 'x' });
  });
  t.test('a uid and group set that excludes us is refused with one error line, then closed', async (t) => {
    const server = await started(t, { authorize: makeAuthorizer({ uids: [me.uid + 12345], gid: me.gid + 54321, groupsOf: async () => [] }) });
    await t.rejects(controlRequest(server.path, 'echo', { text: 'x' }), { name: 'ControlRemoteError', code: 'unauthorized', message: new RegExp(`uid ${me.uid} \\(pid ${me.pid}\\)`) });
    const c = await raw(server.path);
    t.match(await c.line(), { id: null, error: { code: 'unauthorized' } });
    await c.closed;
    t.equal(server.connections.size, 0);
  });
  t.test('an authoriser that throws refuses', async (t) => {
    const server = await started(t, { authorize: () => { throw new Error('no'); } });
    await t.rejects(controlRequest(server.path, 'echo', { text: 'x' }), { code: 'unauthorized' });
  });
  t.test('makeAuthorizer: admins by uid or the admin group, readers by the control group (primary or supplementary)', async (t) => {
    const peer = { pid: 1, uid: 1000, gid: 100 };
    const groups = async (): Promise<number[]> => [27, 998];
    t.equal(await makeAuthorizer({ uids: [0, 1000] })(peer), 'admin', 'listed uid');
    t.equal(await makeAuthorizer({ uids: [0] })(peer), undefined, 'no group configured');
    t.equal(await makeAuthorizer({ uids: [0], gid: 100, groupsOf: groups })(peer), 'reader', 'primary gid');
    t.equal(await makeAuthorizer({ uids: [0], gid: 998, groupsOf: groups })(peer), 'reader', 'supplementary gid');
    t.equal(await makeAuthorizer({ uids: [0], gid: 999, groupsOf: groups })(peer), undefined, 'not a member');
    t.equal(await makeAuthorizer({ uids: [0], gid: 100, adminGid: 27, groupsOf: groups })(peer), 'admin', 'the admin group outranks the control group');
    t.equal(await makeAuthorizer({ uids: [0], adminGid: 100, groupsOf: groups })(peer), 'admin', 'admin group as primary gid');
  });
  t.test('per method: a reader calls the read-only methods, a mutation is forbidden and the connection stays open', async (t) => {
    const server = new ControlServer({ path: await tempPath(t), authorize: () => 'reader' });
    server.handle('get', z.object({}), () => 'value', 'read');
    server.handle('set', z.object({}), () => 'changed');
    await server.start();
    t.teardown(() => server.close());
    const c = await raw(server.path);
    c.send('{"id":1,"method":"get"}\n');
    t.same(await c.line(), { id: 1, result: 'value' });
    c.send('{"id":2,"method":"set"}\n');
    t.match(await c.line(), { id: 2, error: { code: 'forbidden', message: /set changes the cluster: for root or the admin group .* is a reader/ } });
    c.send('{"id":3,"method":"get"}\n');
    t.same(await c.line(), { id: 3, result: 'value' }, 'still connected');
    c.socket.destroy();
    t.same(server.methods(), [{ method: 'get', access: 'read' }, { method: 'set', access: 'admin' }], 'a method is admin unless said otherwise');
  });
  t.test('debug methods answer only where the config enables them, and then for admins only', async (t) => {
    for (const [debug, role, answer] of [[false, 'admin', /off unless the config sets control.debug/], [true, 'reader', /is a reader/], [true, 'admin', undefined]] as const) {
      const server = new ControlServer({ path: await tempPath(t), authorize: () => role, debug });
      server.handle('debug.poke', z.object({}), () => 'poked', 'debug');
      await server.start();
      const r = controlRequest(server.path, 'debug.poke', {});
      if (answer) await t.rejects(r, { code: 'forbidden', message: answer }, `debug ${debug}, ${role}`);
      else t.equal(await r, 'poked', `debug ${debug}, ${role}`);
      await server.close();
    }
  });
  t.test('app methods: an admin, or a process of the app the request names', async (t) => {
    const asked: [string, number][] = [];
    const server = new ControlServer({
      path: await tempPath(t), authorize: () => 'reader',
      isAppProcess: (tag, pid) => { asked.push([tag, pid]); return tag === 'mine'; },
    });
    server.handle('app.poke', z.object({ tag: z.string() }), ({ tag }) => tag, 'app');
    await server.start();
    t.teardown(() => server.close());
    t.equal(await controlRequest(server.path, 'app.poke', { tag: 'mine' }), 'mine', 'its own process');
    await t.rejects(controlRequest(server.path, 'app.poke', { tag: 'theirs' }), { code: 'forbidden', message: /acts for theirs: for root, the admin group or that app's own processes/ });
    t.same(asked, [['mine', process.pid], ['theirs', process.pid]], 'asked with the peer\'s pid from SO_PEERCRED');
  });
  t.test('supplementary groups come from /proc/<pid>/status', async (t) => {
    t.same(parseGroups('Name:\tx\nGid:\t100\t100\t100\t100\nGroups:\t27 998 \nNSpid:\t1\n'), [27, 998]);
    t.same(parseGroups('Groups:\t\n'), [], 'none');
    t.same(parseGroups('Name:\tx\n'), [], 'no line at all');
    // Node's getgroups() adds the effective gid to the supplementary groups
    const ours = new Set([...await supplementaryGroups(process.pid), process.getegid!()]);
    t.same([...ours].sort(), [...new Set(process.getgroups!())].sort(), 'our own entry');
    t.same(await supplementaryGroups(2 ** 30), [], 'no such process');
  });
});

t.test('protocol errors', async (t) => {
  const server = await started(t);
  const c = await raw(server.path);
  t.teardown(() => c.socket.destroy());

  c.send('{"id": 1, "method": "echo", "params": {"text": "ok"}}\r\n\n   \n');
  t.same(await c.line(), { id: 1, result: { text: 'ok' } }, 'CRLF and blank lines are fine');

  c.send('this is not json\n');
  t.match(await c.line(), { id: null, error: { code: 'parse_error' } }, 'malformed JSON');
  c.send('{"id": 2, "params": {}}\n');
  t.match(await c.line(), { id: 2, error: { code: 'invalid_request', message: /method/ } }, 'no method');
  c.send('[1, 2]\n');
  t.match(await c.line(), { id: null, error: { code: 'invalid_request' } }, 'not an object');
  c.send('null\n');
  t.match(await c.line(), { id: null, error: { code: 'invalid_request' } }, 'null');
  c.send('{"id": 3, "method": "echo", "params": {"text": 7}}\n');
  t.match(await c.line(), { id: 3, error: { code: 'invalid_params', message: /echo: text: .*string/ } }, 'schema failure');
  c.send('{"id": 4, "method": "echo"}\n');
  t.match(await c.line(), { id: 4, error: { code: 'invalid_params' } }, 'absent params are checked as {}');
  c.send('{"id": "five", "method": "nope"}\n');
  t.match(await c.line(), { id: 'five', error: { code: 'unknown_method', message: /nope/ } }, 'unknown method');
  c.send('{"id": 6, "method": "boom"}\n');
  t.same(await c.line(), { id: 6, error: { code: 'internal', message: 'handler exploded' } }, 'a throwing handler');
  c.send('{"id": 7, "method": "refuse"}\n');
  t.same(await c.line(), { id: 7, error: { code: 'not_primary', message: 'this node does not run that application' } }, 'a ControlError keeps its code');
  c.send('{"id": 8, "method": "bigint"}\n');
  t.match(await c.line(), { id: 8, error: { code: 'internal', message: /not JSON/ } }, 'a result that is not JSON');
  // split across writes, with a multi-byte character cut in two
  const bytes = Buffer.from('{"id": 9, "method": "echo", "params": {"text": "é"}}\n');
  c.send(bytes.subarray(0, 47));
  await new Promise((r) => setTimeout(r, 20));
  c.send(bytes.subarray(47));
  t.same(await c.line(), { id: 9, result: { text: 'é' } }, 'a line in pieces');
  t.equal(server.connections.size, 1, 'the connection survived all of that');
});

t.test('a line over 64 KiB: error response, connection closed', async (t) => {
  const server = await started(t);
  for (const [name, withNewline] of [['a complete line', true], ['a line that never ends', false]] as const) {
    const c = await raw(server.path);
    const big = `{"id": 1, "method": "echo", "params": {"text": "${'x'.repeat(MAX_REQUEST_LINE)}"}}`;
    c.send(big + (withNewline ? '\n' : ''));
    t.match(await c.line(), { id: null, error: { code: 'line_too_long' } }, name);
    await c.closed;
  }
  // exactly at the limit is fine
  const c = await raw(server.path);
  t.teardown(() => c.socket.destroy());
  const head = '{"id": 1, "method": "echo", "params": {"text": "';
  const tail = '"}}';
  c.send(head + 'y'.repeat(MAX_REQUEST_LINE - head.length - tail.length) + tail + '\n');
  t.match(await c.line(), { id: 1, result: { text: /^y+$/ } });
});

t.test('client errors', async (t) => {
  const path = await tempPath(t);
  await t.rejects(controlRequest(path, 'status'), new VigildNotRunningError(path, 'ENOENT'));
  await t.rejects(controlRequest(path, 'status'), { message: `vigild is not running (no socket at ${path})`, code: 'ENOENT' });

  const server = await started(t);
  await t.rejects(controlRequest(server.path, 'nope'), ControlRemoteError);
  await t.rejects(controlRequest(server.path, 'nope'), { code: 'unknown_method' });
  await t.rejects(controlRequest(server.path, 'boom'), { code: 'internal', message: 'handler exploded' });

  let release!: () => void;
  server.handle('slow', z.object({}), () => new Promise<string>((r) => { release = () => r('late'); }));
  await t.rejects(controlRequest(server.path, 'slow', {}, { timeoutMs: 50 }), ControlTimeoutError);
  release();

  const client = await ControlClient.connect(server.path);
  const pending = client.request('slow');
  await new Promise((r) => setTimeout(r, 20));
  await server.close();
  await t.rejects(pending, ControlConnectionError, 'the server went away');
  t.equal(client.closed, true);
  await t.rejects(client.request('echo', { text: 'x' }), ControlConnectionError, 'a closed client refuses');
  release();
});

t.test('a stale socket file is replaced; a live one, or a file that is not a socket, is refused', async (t) => {
  const path = await tempPath(t);
  await import('node:fs/promises').then((fs) => fs.mkdir(join(path, '..'), { recursive: true }));
  // an agent that crashed: its socket file stays behind
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
  await new Promise((r) => child.once('exit', r));
  t.ok((await lstat(path)).isSocket(), 'stale socket file present');
  await t.rejects(controlRequest(path, 'echo'), { code: 'ECONNREFUSED', message: /vigild is not running/ });

  const first = new ControlServer({ path });
  first.handle('echo', z.object({ text: z.string() }), ({ text }) => text);
  await first.start();
  t.teardown(() => first.close());
  t.equal(await controlRequest(path, 'echo', { text: 'replaced' }), 'replaced');

  const second = new ControlServer({ path });
  await t.rejects(second.start(), ControlSocketInUseError);
  await t.rejects(new ControlServer({ path }).start(), { code: 'EADDRINUSE', message: `another vigild is listening on ${path}` });
  t.equal(await controlRequest(path, 'echo', { text: 'still there' }), 'still there', 'the first is untouched');
  await t.rejects(first.start(), /already started/);

  const file = join(path, '..', 'not-a-socket');
  await writeFile(file, 'precious');
  await t.rejects(new ControlServer({ path: file }).start(), /not a socket/);
  t.ok((await lstat(file)).isFile(), 'left alone');
});

t.test('notifications pushed on a kept connection', async (t) => {
  const server = await started(t);
  const subscribers = new Set<ControlConnection>();
  let closedSeen = 0;
  server.handle('watch', z.object({ app: z.string() }), ({ app }, ctx) => {
    subscribers.add(ctx.connection);
    ctx.connection.onClose(() => {
      subscribers.delete(ctx.connection);
      closedSeen++;
    });
    ctx.connection.notify('hello', { app }); // may precede the answer: the client keeps it
    return { watching: app };
  });
  const { result, client } = await controlStream(server.path, 'watch', { app: 'db' });
  t.same(result, { watching: 'db' });
  for (const c of subscribers) {
    c.notify('unload', { app: 'db', reason: 'failback' });
    c.notify('ready');
  }
  const seen = [];
  for await (const e of client.events()) {
    seen.push(e);
    if (seen.length === 3) break; // return(): closes the client
  }
  t.same(seen, [
    { event: 'hello', data: { app: 'db' } },
    { event: 'unload', data: { app: 'db', reason: 'failback' } },
    { event: 'ready', data: null },
  ]);
  t.equal(client.closed, true);
  await new Promise((r) => setTimeout(r, 50));
  t.equal(closedSeen, 1, 'the handler learnt the connection closed');
  t.equal(subscribers.size, 0);

  // the iterator ends when the server drops the connection
  const second = await controlStream(server.path, 'watch', { app: 'web' });
  const [conn] = subscribers;
  t.equal(conn!.peer.pid, process.pid);
  conn!.close();
  t.equal(conn!.notify('late'), false, 'nothing is sent on a closed connection');
  let lateListener = false;
  conn!.onClose(() => { lateListener = true; });
  const rest = [];
  for await (const e of second.client.events()) rest.push(e);
  t.same(rest, [{ event: 'hello', data: { app: 'web' } }]);
  t.equal(lateListener, true, 'onClose on a closed connection still runs');

  // failing stream request closes its client
  await t.rejects(controlStream(server.path, 'watch', { app: 1 }), { code: 'invalid_params' });
});

t.test('a client that stops reading is dropped instead of buffering forever', async (t) => {
  const server = await started(t, { maxBufferedBytes: 64 * 1024 });
  let conn: ControlConnection | undefined;
  server.handle('sub', z.object({}), (_p, ctx) => {
    conn = ctx.connection;
    return true;
  });
  const c = await raw(server.path);
  c.send('{"id": 1, "method": "sub"}\n');
  await c.line();
  c.socket.pause();
  const chunk = 'z'.repeat(16 * 1024);
  let sent = 0;
  while (conn!.notify('fill', chunk) && sent < 10000) sent++;
  t.ok(sent < 10000, `dropped after ${sent} notifications`);
  t.equal(conn!.closed, true);
  c.socket.destroy();
});

t.test('odds and ends', async (t) => {
  const warnings: string[] = [];
  const server = await started(t, { log: { warn: (_f, m) => warnings.push(m) } });
  t.throws(() => server.handle('echo', z.object({}), () => 1), /registered twice/);
  server.handle('throw-string', z.object({}), () => {
    throw 'a string';
  });
  server.handle('listener', z.object({}), (_p, ctx) => {
    ctx.connection.onClose(() => {
      throw new Error('listener bug');
    });
    return 'ok';
  });
  await t.rejects(controlRequest(server.path, 'throw-string'), { code: 'internal', message: 'a string' });
  t.equal(await controlRequest(server.path, 'listener'), 'ok');
  await new Promise((r) => setTimeout(r, 50));
  t.ok(warnings.includes('control: a close listener threw'), 'a close listener that throws is logged, not fatal');
  t.ok(warnings.includes('control: handler failed'));

  // a server that answers garbage, or late
  const path = join(server.path, '..', 'fake.sock');
  const fake = createServer((s) => {
    s.on('data', (d: Buffer) => {
      const req = JSON.parse(d.toString()) as { id: number; method: string };
      if (req.method === 'garbage') s.write('not json\n');
      else setTimeout(() => s.write(JSON.stringify({ id: req.id, result: 'late' }) + '\n{"id": 999, "result": 1}\n'), 60);
    });
  });
  await new Promise<void>((r) => fake.listen(path, r));
  t.teardown(() => fake.close());
  await t.rejects(controlRequest(path, 'garbage'), { code: 'EPROTO' });
  const client = await ControlClient.connect(path);
  await t.rejects(client.request('late', {}, { timeoutMs: 20 }), ControlTimeoutError);
  await new Promise((r) => setTimeout(r, 100));
  t.equal(client.closed, false, 'a late answer, or one for no request, is ignored');
  client.close();
  const it = client.events();
  t.same(await it.next(), { value: undefined, done: true }, 'the events of a closed client end at once');
});

t.test('fuzz: random and mutated request lines get one answer each; the server keeps serving', async (t) => {
  const server = await started(t);
  const c = await raw(server.path);
  const rand = prng(0xc0ffee);
  const good = JSON.stringify({ id: 1, method: 'echo', params: { text: 'hi' } });
  const N = 500;
  for (let i = 0; i < N; i++) {
    let line: string;
    if (i % 2 === 0) {
      line = Array.from({ length: Math.floor(rand() * 120) }, () => String.fromCharCode(32 + Math.floor(rand() * 95))).join('');
    } else {
      const chars = [...good];
      for (let k = 0; k < 1 + Math.floor(rand() * 3); k++) chars[Math.floor(rand() * chars.length)] = String.fromCharCode(32 + Math.floor(rand() * 95));
      line = chars.join('');
    }
    if (line.trim() === '') line = '?';
    c.send(`${line}\n`);
    const answer = await c.line() as { error?: { code: string }; result?: unknown };
    if (!('error' in answer) && !('result' in answer)) t.fail(`no error or result for ${JSON.stringify(line)}`);
  }
  c.send(`${good}\n`);
  t.same(await c.line(), { id: 1, result: { text: 'hi' } }, 'after 500 bad lines the same connection still works');
});

t.test('docs/cli.md\'s table of who may call what is the one vigild registers', async (t) => {
  const server = new ControlServer({ path: '/nonexistent/never-started.sock' });
  registerControlCommands(server, {} as never);
  const doc = readFileSync(repoFile('docs', 'cli.md'), 'utf8');
  const table = doc.slice(doc.indexOf('## Who may do what'));
  const rows = [...table.matchAll(/^\| `([a-z.-]+)` \| (read|admin|app|debug) \|$/gm)].map((m) => ({ method: m[1], access: m[2] }));
  t.same(rows, server.methods());
});
