// The captured LIO responses that the unit tests use as vectors are themselves well formed.
import t from 'tap';

import { capture, captures, data, hex, sense } from '../support/captures.js';

t.test('every captured response has a status, a resid and well-formed hex', async (t) => {
  t.ok(captures.size >= 20, `${captures.size} captures`);
  for (const [name, c] of captures) {
    t.match(c.status, /^(GOOD|CHECK CONDITION|RESERVATION CONFLICT)$/, `${name} status`);
    t.type(c.resid, 'number', `${name} resid`);
    if (c.data !== null) t.ok(hex(c.data).length > 0, `${name} data`);
    if (c.sense !== null) t.ok(hex(c.sense.raw).length >= 8, `${name} sense`);
    t.equal(c.status === 'CHECK CONDITION', c.sense !== null, `${name} has sense exactly when CHECK CONDITION`);
  }
});
t.test('capture() refuses a name that was not captured', async (t) => {
  t.throws(() => capture('tcm_loop.no.such.command'), /no capture named/);
  t.throws(() => data('tcm_loop.tur.preempted'), /has no data/);
  t.throws(() => sense('tcm_loop.inquiry.vpd00'), /has no sense/);
  t.throws(() => hex('abc'), /bad hex/);
});
