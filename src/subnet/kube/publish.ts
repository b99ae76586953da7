// What a node publishes about itself: the desired annotation set and the patch when it differs; pure
// (docs/COMPATIBILITY.md, "Kubernetes subnet manager").
import { isIPv4 } from '../../ip/ipv4.ts';
import { isIPv6 } from '../../ip/ipv6.ts';
import type { LeaseAttrs } from '../lease.ts';
import type { AnnotationNames } from './annotations.ts';

/** Go's json.RawMessage as text: absent backend data is written as `null` (host-gw). */
function rawJson(value: unknown): string {
  return value === undefined ? 'null' : JSON.stringify(value);
}

export interface Overwrite {
  attrs: LeaseAttrs;
  /** "Overriding public ip with …" lines for the log. */
  notes: string[];
}

/** Applies the admin-set public-ip(-v6)-overwrite annotations to the attrs this node advertises. */
export function applyPublicIPOverwrite(
  attrs: LeaseAttrs,
  annotations: Record<string, string>,
  names: AnnotationNames,
): Overwrite {
  const out: LeaseAttrs = { ...attrs };
  const notes: string[] = [];
  const v4 = annotations[names.publicIPOverwrite];
  if (v4 !== undefined && v4 !== '') {
    if (!isIPv4(v4))
      throw new Error(`node annotation ${names.publicIPOverwrite} "${v4}" is not an IPv4 address; fix or remove it`);
    notes.push(`Overriding public ip with '${v4}' from node annotation '${names.publicIPOverwrite}'`);
    out.publicIP = v4;
  }
  const v6 = annotations[names.publicIPv6Overwrite];
  if (v6 !== undefined && v6 !== '' && attrs.publicIPv6 !== null) {
    if (!isIPv6(v6))
      throw new Error(`node annotation ${names.publicIPv6Overwrite} "${v6}" is not an IPv6 address; fix or remove it`);
    notes.push(`Overriding public ipv6 with '${v6}' from node annotation '${names.publicIPv6Overwrite}'`);
    out.publicIPv6 = v6;
  }
  return { attrs: out, notes };
}

/** The annotations flannel keeps on its own node for `attrs` (already overwritten). */
export function desiredAnnotations(attrs: LeaseAttrs, names: AnnotationNames): Record<string, string> {
  const want: Record<string, string> = {
    [names.backendData]: rawJson(attrs.backendData),
    [names.backendType]: attrs.backendType,
    [names.subnetKubeManaged]: 'true',
    [names.publicIP]: attrs.publicIP,
  };
  if (attrs.publicIPv6 !== null) {
    want[names.backendV6Data] = rawJson(attrs.backendV6Data);
    want[names.publicIPv6] = attrs.publicIPv6;
  }
  return want;
}

/** The annotations that differ from the node's (the body of a strategic-merge patch), or null when none does. */
export function annotationPatch(
  current: Record<string, string>,
  desired: Record<string, string>,
): Record<string, string> | null {
  const patch: Record<string, string> = {};
  for (const [k, v] of Object.entries(desired)) if (current[k] !== v) patch[k] = v;
  return Object.keys(patch).length > 0 ? patch : null;
}

/**
 * The NetworkUnavailable=False condition flannel sets once it runs (docs/COMPATIBILITY.md,
 * "Kubernetes subnet manager"), fields in the order Go marshals v1.NodeCondition; times are RFC 3339 seconds like
 * metav1.Time.
 */
export function networkUnavailableCondition(now: Date): Record<string, string> {
  const t = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return {
    type: 'NetworkUnavailable',
    status: 'False',
    lastHeartbeatTime: t,
    lastTransitionTime: t,
    reason: 'FlannelIsUp',
    message: 'Flannel is running on this node',
  };
}
