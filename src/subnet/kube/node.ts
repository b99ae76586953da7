// The parts of a Kubernetes Node object the subnet manager reads (as the API server sends them: plain JSON).

export interface NodeCondition {
  type: string;
  status: string;
  lastHeartbeatTime?: string;
  lastTransitionTime?: string;
  reason?: string;
  message?: string;
}

export interface KubeNode {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    resourceVersion?: string;
    annotations?: Record<string, string>;
    [k: string]: unknown;
  };
  spec?: { podCIDR?: string; podCIDRs?: string[]; [k: string]: unknown };
  status?: { conditions?: NodeCondition[]; [k: string]: unknown };
}

export function annotationsOf(node: KubeNode): Record<string, string> {
  return node.metadata.annotations ?? {};
}
