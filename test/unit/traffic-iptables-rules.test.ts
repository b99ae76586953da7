import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IPv4Net } from '../../src/ip/ipv4.ts';
import { deletePlan, restorePayload, setupPlan } from '../../src/traffic/iptables/restore.ts';
import { forwardRuleSet, masqRuleSet, ruleText, type IptRule } from '../../src/traffic/iptables/rules.ts';
import { featuresOf, parseVersion } from '../../src/traffic/iptables/runner.ts';

const NET = IPv4Net.parse('10.244.0.0/16');
const POD = IPv4Net.parse('10.244.1.0/24');

describe('masquerade rule set (docs/COMPATIBILITY.md, "iptables rules")', () => {
  it('renders exactly the spec rules, jump first, with --random-fully', () => {
    assert.deepEqual(
      masqRuleSet(NET, POD, true).rules.map((r) => ruleText(r)),
      [
        '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
        '-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN',
        '-A FLANNEL-POSTRTG -s 10.244.1.0/24 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j RETURN',
        '-A FLANNEL-POSTRTG -s 10.244.0.0/16 -d 10.244.1.0/24 -m comment --comment "flanneld masq" -j RETURN',
        '-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.1.0/24 -m comment --comment "flanneld masq" -j RETURN',
        '-A FLANNEL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
        '-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
      ],
    );
  });

  it('drops --random-fully when disabled or unsupported', () => {
    const texts = masqRuleSet(NET, POD, false).rules.map((r) => ruleText(r));
    assert.equal(texts.filter((t) => t.includes('random-fully')).length, 0);
    assert.equal(
      texts[5],
      '-A FLANNEL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE',
    );
  });

  it('lives in the nat table with FLANNEL-POSTRTG as its chain', () => {
    const set = masqRuleSet(NET, POD, true);
    assert.equal(set.table, 'nat');
    assert.equal(set.chain, 'FLANNEL-POSTRTG');
    assert.ok(set.rules.every((r) => r.table === 'nat'));
  });

  it('keeps the comment as one argv word for iptables -C', () => {
    const spec = masqRuleSet(NET, POD, true).rules[0]!.spec;
    assert.deepEqual(spec, ['-m', 'comment', '--comment', 'flanneld masq', '-j', 'FLANNEL-POSTRTG']);
  });
});

describe('forward rule set (docs/COMPATIBILITY.md, "iptables rules")', () => {
  it('renders exactly the spec rules in the filter table', () => {
    const set = forwardRuleSet(NET);
    assert.equal(set.table, 'filter');
    assert.equal(set.chain, 'FLANNEL-FWD');
    assert.deepEqual(
      set.rules.map((r) => ruleText(r)),
      [
        '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD',
        '-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT',
        '-A FLANNEL-FWD -d 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT',
      ],
    );
  });
});

describe('iptables-restore payloads', () => {
  it('creates/flushes the chain and appends everything on a clean host', () => {
    const payload = restorePayload(setupPlan(forwardRuleSet(NET), () => 0));
    assert.equal(
      payload,
      [
        '*filter',
        ':FLANNEL-FWD - [0:0]',
        '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD',
        '-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT',
        '-A FLANNEL-FWD -d 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT',
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  it('deletes every present copy of the jump before re-appending it', () => {
    const set = masqRuleSet(NET, POD, false);
    const copies = (r: IptRule) => (r.chain === 'POSTROUTING' ? 2 : 1);
    const lines = restorePayload(setupPlan(set, copies)).split('\n');
    assert.equal(lines[0], '*nat');
    assert.equal(lines[1], ':FLANNEL-POSTRTG - [0:0]');
    assert.equal(lines[2], '-D POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG');
    assert.equal(lines[3], '-D POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG');
    // Rules inside FLANNEL-POSTRTG are not deleted one by one: the chain line flushes them.
    assert.equal(lines.filter((l) => l.startsWith('-D FLANNEL-POSTRTG')).length, 0);
    assert.equal(lines.filter((l) => l.startsWith('-A ')).length, 7);
    assert.equal(lines[4], '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG');
    assert.deepEqual(lines.slice(-2), ['COMMIT', '']);
  });

  it('deletes only the rules that are present when recycling an old set', () => {
    const old = masqRuleSet(IPv4Net.parse('10.5.0.0/16'), IPv4Net.parse('10.5.3.0/24'), true);
    const present = new Set([old.rules[0], old.rules[2]]);
    const payload = restorePayload(deletePlan(old, (r) => (present.has(r) ? 1 : 0)));
    assert.equal(
      payload,
      [
        '*nat',
        '-D POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
        '-D FLANNEL-POSTRTG -s 10.5.3.0/24 -d 10.5.0.0/16 -m comment --comment "flanneld masq" -j RETURN',
        'COMMIT',
        '',
      ].join('\n'),
    );
  });
});

describe('iptables feature detection', () => {
  it('parses versions', () => {
    assert.deepEqual(parseVersion('iptables v1.8.9 (nf_tables)'), [1, 8, 9]);
    assert.equal(parseVersion('command not found'), undefined);
  });

  it('enables --random-fully and restore --wait from 1.6.2 on', () => {
    assert.deepEqual(featuresOf('iptables v1.8.9 (nf_tables)', 'iptables-restore v1.8.9 (nf_tables)'), {
      version: [1, 8, 9],
      randomFully: true,
      wait: true,
      restoreWait: true,
    });
    const old = featuresOf('iptables v1.6.1', '');
    assert.equal(old.randomFully, false);
    assert.equal(old.restoreWait, false);
    assert.equal(old.wait, true);
    assert.equal(featuresOf('iptables v1.6.2', '').randomFully, true);
    assert.equal(featuresOf('iptables v1.4.19', '').wait, false);
  });

  it('assumes nothing when the version is unknown', () => {
    assert.deepEqual(featuresOf('', ''), { version: undefined, randomFully: false, wait: false, restoreWait: false });
  });
});
