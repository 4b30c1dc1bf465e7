import { BlockList, isIP } from 'node:net';
import { badRequest } from './errors.js';

/** "::ffff:10.0.0.1", as a dual-stack listener reports an IPv4 client, is the IPv4 address it stands for. */
function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/**
 * Parses CIDR blocks ("10.0.0.0/8", "2001:db8::/32"; a bare address is a block of one) into node's BlockList.
 * Throws a 400 naming the field and the block that is not one.
 */
export function parseCidrs(blocks: string[], field: string): BlockList {
  const list = new BlockList();
  for (const block of blocks) {
    const [address = '', prefixText] = block.split('/');
    const family = isIP(address);
    const max = family === 4 ? 32 : 128;
    const prefix = prefixText === undefined ? max : Number(prefixText);
    if (family === 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > max || prefixText === '') {
      throw badRequest(`invalid CIDR block in "${field}": ${JSON.stringify(block)}`);
    }
    list.addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6');
  }
  return list;
}

/** Parsed once per list: a bound token's entry keeps its list across requests while it is cached. */
const parsed = new WeakMap<string[], BlockList>();

/** Whether a client address lies in one of the blocks; no blocks means no binding. */
export function addressAllowed(blocks: string[] | undefined, address: string): boolean {
  if (!blocks || blocks.length === 0) return true;
  const plain = plainAddress(address);
  const family = isIP(plain);
  if (family === 0) return false;
  let list = parsed.get(blocks);
  if (!list) parsed.set(blocks, (list = parseCidrs(blocks, 'bound CIDRs')));
  return list.check(plain, family === 4 ? 'ipv4' : 'ipv6');
}
