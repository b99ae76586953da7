// @kubernetes/client-node's types reach 'ws' (via isomorphic-ws), which ships no types; flannel never uses
// websockets (exec/attach/port-forward), so the names it mentions are opaque here.
declare module 'ws' {
  class WebSocket {}
  namespace WebSocket {
    type ClientOptions = Record<string, unknown>;
    type WebSocket = unknown;
  }
  export = WebSocket;
}
