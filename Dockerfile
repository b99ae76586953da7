# syntax=docker/dockerfile:1
# The flannel-ts image: flanneld (ENTRYPOINT), the flannel CNI plugin and flannelctl, laid out under /opt/flannel-ts.
# deploy/kube-flannel.yml runs /opt/flannel-ts/dist/{flanneld,flannelctl,flannel}.cjs from it.
#   docker build -t flannel-ts:$(node -p 'require("./package.json").version') .
#   docker build --build-arg IPTABLES_MODE=legacy ...   # for hosts whose rules live in iptables-legacy
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
# node-gyp needs a compiler and python for the addon (src/native).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the addon's sources are not copied yet; it is built below, once they are.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY binding.gyp tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
# Built after every source is in place, so it is newer than them and build.mjs does not rebuild it; build-native.mjs
# takes the headers from the running node's own prefix (/usr/local here), as it does everywhere.
RUN node scripts/build-native.mjs \
 && npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE}
# iptables/nftables: the masquerade and forward rules; iproute2: `ip` for debugging on the node.
ARG IPTABLES_MODE=nft
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends iptables nftables iproute2 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && case "${IPTABLES_MODE}" in \
      nft|legacy) update-alternatives --set iptables "/usr/sbin/iptables-${IPTABLES_MODE}" \
                  && update-alternatives --set ip6tables "/usr/sbin/ip6tables-${IPTABLES_MODE}" ;; \
      *) echo "IPTABLES_MODE=${IPTABLES_MODE}: use nft or legacy" >&2; exit 1 ;; \
    esac
WORKDIR /opt/flannel-ts
COPY --from=build /src/package.json ./package.json
# Production dependencies only (netlink with its prebuilds, @kubernetes/client-node, prom-client); the bundles require them.
COPY --from=build /src/node_modules ./node_modules
# flanneld.cjs, flannelctl.cjs, flannel.cjs, flannel_native.node beside them, and bin/flannel (the CNI plugin that the
# init container installs on the host) and bin/flannelctl as single executables.
COPY --from=build /src/dist ./dist
COPY --from=build /src/build/Release/flannel_native.node ./build/Release/flannel_native.node
ENTRYPOINT ["/opt/flannel-ts/dist/flanneld.cjs"]
