// Node annotation names of the Kubernetes subnet manager: prefix normalisation and the full set; pure
// (docs/COMPATIBILITY.md, "Kubernetes node annotations").

export const DEFAULT_ANNOTATION_PREFIX = 'flannel.alpha.coreos.com';

const PREFIX_RE = /^(?:[a-z0-9_-]+\.)+[a-z0-9_-]+\/(?:[a-z0-9_-]+-)?$/;

export class AnnotationPrefixError extends Error {
  readonly code = 'EBADPREFIX';
}

/**
 * `--kube-annotation-prefix` as flannel joins it with names: at most one `/`; no slash → `/` appended; a prefix not
 * ending in `/` or `-` gets a `-` (so `example.com/team` names `example.com/team-backend-data`).
 */
export function normalizeAnnotationPrefix(prefix: string): string {
  const slashes = prefix.split('/').length - 1;
  if (slashes > 1) {
    throw new AnnotationPrefixError(
      `subnet/kube: prefix can contain at most single slash (--kube-annotation-prefix "${prefix}")`,
    );
  }
  let p = slashes === 0 ? `${prefix}/` : prefix;
  if (!p.endsWith('/') && !p.endsWith('-')) p += '-';
  if (!PREFIX_RE.test(p)) {
    throw new AnnotationPrefixError(
      `subnet/kube: prefix must be in a format: fqdn/[0-9a-z-_]* (--kube-annotation-prefix "${prefix}"; e.g. ${DEFAULT_ANNOTATION_PREFIX})`,
    );
  }
  return p;
}

export interface AnnotationNames {
  subnetKubeManaged: string;
  backendType: string;
  backendData: string;
  backendV6Data: string;
  publicIP: string;
  publicIPv6: string;
  publicIPOverwrite: string;
  publicIPv6Overwrite: string;
  nodePublicIP: string;
  nodePublicIPv6: string;
}

/** Every annotation name for a (not yet normalised) prefix. */
export function annotationNames(prefix: string = DEFAULT_ANNOTATION_PREFIX): AnnotationNames {
  const p = normalizeAnnotationPrefix(prefix);
  return {
    subnetKubeManaged: `${p}kube-subnet-manager`,
    backendType: `${p}backend-type`,
    backendData: `${p}backend-data`,
    backendV6Data: `${p}backend-v6-data`,
    publicIP: `${p}public-ip`,
    publicIPv6: `${p}public-ipv6`,
    publicIPOverwrite: `${p}public-ip-overwrite`,
    publicIPv6Overwrite: `${p}public-ipv6-overwrite`,
    nodePublicIP: `${p}node-public-ip`,
    nodePublicIPv6: `${p}node-public-ipv6`,
  };
}
