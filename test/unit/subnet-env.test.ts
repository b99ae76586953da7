import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IPv4Net } from '../../src/ip/ipv4.ts';
import { IPv6Net } from '../../src/ip/ipv6.ts';
import { formatSubnetEnv, parseSubnetEnv, readPreviousSubnet, writeSubnetEnv } from '../../src/subnet/subnet-env.ts';

const APPENDIX_A =
  'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n';

describe('subnet.env format (flanneld side)', () => {
  it("writes the vxlan example of docs/COMPATIBILITY.md, 'Kernel state per backend', byte for byte (subnet with its first host address)", () => {
    const text = formatSubnetEnv({
      network: IPv4Net.parse('10.244.0.0/16'),
      subnet: IPv4Net.parse('10.244.1.0/24'),
      mtu: 1450,
      ipMasq: true,
    });
    assert.equal(text, APPENDIX_A);
  });

  it('writes FLANNEL_IPMASQ=false and the backend MTU', () => {
    const text = formatSubnetEnv({
      network: IPv4Net.parse('10.5.0.0/16'),
      subnet: IPv4Net.parse('10.5.72.0/24'),
      mtu: 1472,
      ipMasq: false,
    });
    assert.equal(
      text,
      'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.72.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=false\n',
    );
  });

  it('places the IPv6 lines between the IPv4 ones and FLANNEL_MTU, and omits IPv4 when disabled', () => {
    const dual = formatSubnetEnv({
      network: IPv4Net.parse('10.244.0.0/16'),
      subnet: IPv4Net.parse('10.244.1.0/24'),
      ipv6Network: IPv6Net.parse('2001:cafe:42::/56'),
      ipv6Subnet: IPv6Net.parse('2001:cafe:42::/64'),
      mtu: 1450,
      ipMasq: true,
    });
    assert.equal(
      dual,
      'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_IPV6_NETWORK=2001:cafe:42::/56\nFLANNEL_IPV6_SUBNET=2001:cafe:42::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n',
    );
    const v6only = formatSubnetEnv({
      ipv6Network: IPv6Net.parse('fd00::/56'),
      ipv6Subnet: IPv6Net.parse('fd00:0:0:3::/64'),
      mtu: 1430,
      ipMasq: false,
    });
    assert.equal(
      v6only,
      'FLANNEL_IPV6_NETWORK=fd00::/56\nFLANNEL_IPV6_SUBNET=fd00:0:0:3::1/64\nFLANNEL_MTU=1430\nFLANNEL_IPMASQ=false\n',
    );
  });
});

describe('subnet.env parse (plugin side)', () => {
  it('reads that documented file and normalises FLANNEL_SUBNET to its network', () => {
    const env = parseSubnetEnv(APPENDIX_A, '/run/flannel/subnet.env');
    assert.deepEqual(env.networks.map(String), ['10.244.0.0/16']);
    assert.equal(env.subnet?.toString(), '10.244.1.0/24');
    assert.equal(env.mtu, 1450);
    assert.equal(env.ipMasq, true);
    assert.deepEqual(env.ipv6Networks, []);
    assert.equal(env.ipv6Subnet, undefined);
  });

  it('splits network lists on commas, drops duplicates and keeps order', () => {
    const env = parseSubnetEnv(
      'FLANNEL_NETWORK=10.244.0.0/16,10.1.0.0/16,10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n',
      'f',
    );
    assert.deepEqual(env.networks.map(String), ['10.244.0.0/16', '10.1.0.0/16']);
  });

  it('reads the IPv6 keys (list and subnet normalised)', () => {
    const env = parseSubnetEnv(
      'FLANNEL_IPV6_NETWORK=2001:cafe:42::/56,2001:cafe:42:0::/56\nFLANNEL_IPV6_SUBNET=2001:cafe:42:1::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n',
      'f',
    );
    assert.deepEqual(env.ipv6Networks.map(String), ['2001:cafe:42::/56']);
    assert.equal(env.ipv6Subnet?.toString(), '2001:cafe:42:1::/64');
    assert.deepEqual(env.networks, []);
  });

  it('treats FLANNEL_IPMASQ as true only for exactly "true"', () => {
    const base = 'FLANNEL_NETWORK=10.0.0.0/8\nFLANNEL_SUBNET=10.1.2.1/24\nFLANNEL_MTU=1500\n';
    for (const [v, want] of [
      ['true', true],
      ['True', false],
      ['1', false],
      ['', false],
      ['true ', false],
    ] as const) {
      assert.equal(parseSubnetEnv(`${base}FLANNEL_IPMASQ=${v}\n`, 'f').ipMasq, want, `FLANNEL_IPMASQ=${v}`);
    }
  });

  it('splits on the first "=" only and tolerates CRLF and unknown lines', () => {
    const env = parseSubnetEnv(
      '# comment\r\nOTHER=a=b\r\nFLANNEL_NETWORK=10.0.0.0/8\r\nFLANNEL_SUBNET=10.1.2.1/24\r\nFLANNEL_MTU=1500\r\nFLANNEL_IPMASQ=true\r\n',
      'f',
    );
    assert.equal(env.mtu, 1500);
    assert.equal(env.ipMasq, true);
  });

  it('names every missing key, pairing the IPv4/IPv6 alternatives', () => {
    assert.throws(() => parseSubnetEnv('', '/run/flannel/subnet.env'), {
      message:
        '/run/flannel/subnet.env is missing FLANNEL_NETWORK, FLANNEL_IPV6_NETWORK, FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ',
    });
    assert.throws(() => parseSubnetEnv('FLANNEL_NETWORK=10.0.0.0/8\nFLANNEL_SUBNET=10.1.2.1/24\n', '/x/s.env'), {
      message: '/x/s.env is missing FLANNEL_MTU, FLANNEL_IPMASQ',
    });
    assert.throws(() => parseSubnetEnv('FLANNEL_IPV6_NETWORK=fd00::/56\nFLANNEL_MTU=1\nFLANNEL_IPMASQ=true\n', 'f'), {
      message: 'f is missing FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET',
    });
  });

  it('rejects a bad MTU or CIDR, naming the file and the key', () => {
    const rest = 'FLANNEL_NETWORK=10.0.0.0/8\nFLANNEL_SUBNET=10.1.2.1/24\nFLANNEL_IPMASQ=true\n';
    assert.throws(
      () => parseSubnetEnv(`${rest}FLANNEL_MTU=-1\n`, 'f'),
      /f: FLANNEL_MTU "-1" is not an unsigned integer/,
    );
    assert.throws(() => parseSubnetEnv(`${rest}FLANNEL_MTU=1450x\n`, 'f'), /FLANNEL_MTU/);
    assert.throws(
      () =>
        parseSubnetEnv(
          'FLANNEL_NETWORK=10.0.0.0/8,banana\nFLANNEL_SUBNET=10.1.2.1/24\nFLANNEL_MTU=1\nFLANNEL_IPMASQ=true\n',
          'f',
        ),
      /f: FLANNEL_NETWORK entry "banana" is not a valid CIDR/,
    );
    assert.throws(
      () =>
        parseSubnetEnv(
          'FLANNEL_NETWORK=10.0.0.0/8\nFLANNEL_SUBNET=10.1.2.1\nFLANNEL_MTU=1\nFLANNEL_IPMASQ=true\n',
          'f',
        ),
      /f: FLANNEL_SUBNET "10.1.2.1" is not a valid CIDR/,
    );
  });
});

describe('subnet.env files', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'subnet-env-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('creates the directory 0755 and the file 0644 even under umask 077, leaving no temp file', () => {
    const path = join(dir, 'run', 'flannel', 'subnet.env');
    const old = process.umask(0o077);
    try {
      writeSubnetEnv(path, APPENDIX_A);
    } finally {
      process.umask(old);
    }
    assert.equal(readFileSync(path, 'utf8'), APPENDIX_A);
    assert.equal(statSync(path).mode & 0o777, 0o644);
    assert.equal(statSync(join(dir, 'run', 'flannel')).mode & 0o777, 0o755);
    assert.deepEqual(readdirSync(join(dir, 'run', 'flannel')), ['subnet.env']);
  });

  it('replaces an existing file with a new inode (readers never see a partial file)', () => {
    const path = join(dir, 'replace.env');
    writeFileSync(path, 'old');
    const before = statSync(path).ino;
    writeSubnetEnv(path, APPENDIX_A);
    assert.notEqual(statSync(path).ino, before);
    assert.equal(readFileSync(path, 'utf8'), APPENDIX_A);
  });

  it('reads a previous run (normalised) and returns undefined without a file', () => {
    const path = join(dir, 'prev.env');
    assert.equal(readPreviousSubnet(path), undefined);
    writeFileSync(path, APPENDIX_A);
    const prev = readPreviousSubnet(path);
    assert.equal(prev?.network?.toString(), '10.244.0.0/16');
    assert.equal(prev?.subnet?.toString(), '10.244.1.0/24');
    assert.equal(prev?.ipv6Subnet, undefined);
  });

  it('ignores a key holding more than one entry, keeps the rest, accepts dotenv quoting', () => {
    const path = join(dir, 'multi.env');
    writeFileSync(
      path,
      'FLANNEL_NETWORK=10.244.0.0/16,10.1.0.0/16\nexport FLANNEL_SUBNET="10.244.7.1/24"\nFLANNEL_IPV6_SUBNET=fd00:0:0:7::1/64\n',
    );
    const prev = readPreviousSubnet(path);
    assert.equal(prev?.network, undefined);
    assert.equal(prev?.subnet?.toString(), '10.244.7.0/24');
    assert.equal(prev?.ipv6Subnet?.toString(), 'fd00:0:0:7::/64');
  });
});
