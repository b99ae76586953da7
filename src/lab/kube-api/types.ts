// The fake API server's Node types, apart from the server so that its parts (node-create, patch) need not import it.

export interface ApiNode {
  apiVersion: 'v1';
  kind: 'Node';
  metadata: {
    name: string;
    resourceVersion: string;
    uid: string;
    creationTimestamp: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    [k: string]: unknown;
  };
  spec: { podCIDR?: string; podCIDRs?: string[]; [k: string]: unknown };
  status: { conditions?: Array<Record<string, unknown>>; [k: string]: unknown };
}

export interface NodeInit {
  name: string;
  podCIDR?: string;
  podCIDRs?: string[];
  annotations?: Record<string, string>;
}
